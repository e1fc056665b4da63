"""Service history (/riwayat): the visits of the last 90 days, newest first (no Telegram).

It is the owner's own data, verified by OTP; it is not cached (a backend that is down or
slow is said to be so, never shown as "no visits"), and each look counts against the
chat's hourly budget of backend calls, like a status refresh.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.accounts import Account
from bot.jkn.base import (
    Capability,
    JknBackend,
    JknError,
    JknInvalidRequest,
    JknUnsupported,
    Visit,
)
from bot.status import bounded
from bot.wib import jakarta_now

_LOGGER = logging.getLogger(__name__)
DAYS = 90


class HistoryOutcome(enum.StrEnum):
    VISITS = "visits"  # (possibly none)
    UNSUPPORTED = "unsupported"  # the backend cannot tell (PCare)
    UNAVAILABLE = "unavailable"  # the backend failed or was too slow
    REFUSED = "refused"  # BPJS refused the request itself (never read as "no visits")
    CAPPED = "capped"  # the chat is over its hourly budget of backend calls


@dataclass(frozen=True, slots=True)
class History:
    outcome: HistoryOutcome
    start: date
    end: date
    visits: list[Visit] = field(default_factory=list)


class HistoryService:
    def __init__(self, backend: JknBackend, *, allow_call: Callable[[int], Awaitable[bool]],
                 clock: Callable[[], float]) -> None:
        self.backend = backend
        self.allow_call = allow_call
        self.clock = clock

    @property
    def supported(self) -> bool:
        return Capability.HISTORY in self.backend.capabilities

    async def visits(self, account: Account) -> History:
        end = jakarta_now(self.clock()).date()
        start = end - timedelta(days=DAYS)
        if not self.supported:
            return History(HistoryOutcome.UNSUPPORTED, start, end)
        if not await self.allow_call(account.chat_id):
            return History(HistoryOutcome.CAPPED, start, end)
        try:
            found = await bounded(self.backend.history(account.card, start, end))
        except JknUnsupported:
            return History(HistoryOutcome.UNSUPPORTED, start, end)
        except JknInvalidRequest:
            _LOGGER.warning("history refused by BPJS (invalid request)")
            return History(HistoryOutcome.REFUSED, start, end)
        except JknError as exc:
            _LOGGER.warning("history failed: %s", type(exc).__name__)
            return History(HistoryOutcome.UNAVAILABLE, start, end)
        visits = sorted((v for v in found if start.isoformat() <= v.date <= end.isoformat()),
                        key=lambda v: v.date, reverse=True)
        return History(HistoryOutcome.VISITS, start, end, visits)
