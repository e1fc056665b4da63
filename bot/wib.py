"""Asia/Jakarta time (WIB, UTC+7 all year, no daylight saving): what every date the bot
shows or decides on (reminder days, the 90 days of history) is counted in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

WIB = timedelta(hours=7)
WIB_ZONE = timezone(WIB, "WIB")


def jakarta_now(timestamp: float) -> datetime:
    """The Jakarta wall-clock time of a Unix timestamp (naive)."""
    return (datetime.fromtimestamp(timestamp, UTC) + WIB).replace(tzinfo=None)
