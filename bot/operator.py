"""The operator's own chats (OPERATOR_CHAT_IDS): counts, maintenance notices and alerts.
No Telegram here (handlers/operator.py is the thin layer).

- :meth:`OperatorService.stats`: counts only, from the database and the metrics registry;
  never an identifier.
- Notices (/pengumuman): a draft the operator confirms, then one message to every
  consented chat, paced with the reminder rounds' :class:`~bot.reminders.Pacer` (one pacer
  for both, under Telegram's ~30 a second), each delivery claimed in the database before
  it is sent (storage/notices_repo.py). A restart resumes a confirmed notice; a delivery
  whose outcome was lost is never sent again (docs/decisions.md 29 and 47).
- :class:`Alerts`: a full disk, BPJS refusing the credentials, the SMS budget spent,
  Telegram unreachable for long. Each is logged at once and queued for the operator chats,
  at most once an hour per kind; the text names the trouble, never a chat or a person.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.metrics import MetricWrapperBase

from bot import metrics
from bot.reminders import Pacer
from bot.wib import WIB_ZONE, jakarta_now
from storage.db import Database, count
from storage.notices_repo import NoticesRepo, Tally

_LOGGER = logging.getLogger(__name__)
#: The longest notice body (Telegram's limit is 4096 characters with the heading).
MAX_NOTICE_CHARS = 3500
#: Each kind of alert reaches the operators at most once in this many seconds.
ALERT_INTERVAL = 3600.0
#: Telegram unanswered this long (seconds) is an alert.
TELEGRAM_DOWN_SECONDS = 600.0
#: Alerts waiting for Telegram at most (the oldest are dropped; they are in the log).
MAX_QUEUED = 20


class Alert(enum.StrEnum):
    DISK_FULL = "disk_full"
    CREDENTIALS = "credentials_rejected"
    SMS_BUDGET = "sms_budget"
    TELEGRAM_DOWN = "telegram_down"


_LOG_LINES = {
    Alert.DISK_FULL: "operator alert: the disk is full (a write failed with SQLITE_FULL)",
    Alert.CREDENTIALS: "operator alert: BPJS rejected the consumer credentials",
    Alert.SMS_BUDGET: "operator alert: the SMS budget (SMS_MAX_PER_HOUR) is spent",
    Alert.TELEGRAM_DOWN: "operator alert: Telegram has not answered for a long time",
}


class Alerts:
    """Raised anywhere (synchronously), logged at once, queued for the operator chats."""

    def __init__(self, clock: Callable[[], float], interval: float = ALERT_INTERVAL) -> None:
        self.clock = clock
        self.interval = interval
        self._last: dict[Alert, float] = {}
        self.queue: deque[Alert] = deque(maxlen=MAX_QUEUED)

    def raise_(self, kind: Alert) -> bool:
        """Log and queue ``kind`` unless it was raised within the interval; True if so."""
        now = self.clock()
        if now - self._last.get(kind, float("-inf")) < self.interval:
            return False
        self._last[kind] = now
        _LOGGER.error("%s", _LOG_LINES[kind])
        self.queue.append(kind)
        return True


@dataclass(frozen=True, slots=True)
class Stats:
    """What /stats shows: counts only."""

    chats_consented: int
    accounts_cached: int
    codes_today: int
    reminders_today: int
    caps_hit: int
    backend_failures: int


@dataclass
class NoticeReport:
    notice_id: int
    tally: Tally
    finished: bool  # this run finished it (the report goes to the operators once)


class NotSent(Exception):
    """Raised by a :data:`Deliver` when the message certainly did not leave (Telegram
    unreachable): the claim is released and the notice stops, to be resumed later."""


#: Delivers a notice body to a chat; True when Telegram took it, False when it refused it
#: for good (blocked, chat gone); :class:`NotSent`; anything else raised is an unknown
#: outcome.
Deliver = Callable[[int, str], Awaitable[bool]]


def _total(metric: MetricWrapperBase, skip: Callable[[dict[str, str]], bool] | None = None
           ) -> int:
    """The sum of a counter's ``_total`` samples (over the labels ``skip`` keeps)."""
    total = 0.0
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and not (skip and skip(sample.labels)):
                total += sample.value
    return int(total)


class OperatorService:
    def __init__(self, operators: frozenset[int], db: Database, repo: NoticesRepo, *,
                 clock: Callable[[], float], pacer: Pacer, alerts: Alerts) -> None:
        self.operators = operators
        self.db = db
        self.repo = repo
        self.clock = clock
        self.pacer = pacer
        self.alerts = alerts

    def is_operator(self, chat_id: int) -> bool:
        return chat_id in self.operators

    # -- /stats ---------------------------------------------------------------------------

    async def stats(self) -> Stats:
        now = jakarta_now(self.clock())
        midnight = datetime.combine(now.date(), datetime.min.time(), WIB_ZONE).timestamp()
        day = now.date().isoformat()

        def unit(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
            return (count(conn, "SELECT count(*) FROM consent"),
                    count(conn, "SELECT count(*) FROM accounts"),
                    count(conn, "SELECT count(*) FROM rate_events WHERE kind = 'sms' "
                                "AND at >= ?", midnight),
                    count(conn, "SELECT count(*) FROM reminder_log WHERE day = ? AND "
                                "state = 'sent'", day))
        chats, accounts, codes, reminders = await self.db.run(unit)
        return Stats(chats, accounts, codes, reminders, _total(metrics.SMS_REFUSED),
                     _total(metrics.BACKEND_CALLS,
                            lambda labels: labels.get("outcome") in ("ok", "not_found")))

    # -- notices --------------------------------------------------------------------------

    @staticmethod
    def check_body(body: str) -> str | None:
        """The body as it will be sent, or None when it is empty or too long."""
        body = body.strip()
        return body if body and len(body) <= MAX_NOTICE_CHARS else None

    async def draft(self, body: str) -> int:
        return await self.repo.draft(body, self.clock())

    async def confirm(self, notice_id: int) -> bool:
        """[Kirim]: True for the one tap that starts the notice."""
        return await self.repo.confirm(notice_id)

    async def cancel(self, notice_id: int) -> bool:
        return await self.repo.cancel(notice_id)

    async def unfinished(self) -> list[int]:
        """Confirmed notices a stop or a crash interrupted."""
        return await self.repo.sending()

    async def prune(self) -> None:
        await self.repo.prune(self.clock())

    async def run_notice(self, notice_id: int, deliver: Deliver,
                         running: Callable[[], bool] = lambda: True) -> NoticeReport:
        """Send a confirmed notice to every consented chat that has no delivery row yet,
        one at a time under the pacer; then mark it done. When ``running`` turns false (the
        bot is stopping) it stops between two chats, unfinished: the next start resumes."""
        notice = await self.repo.get(notice_id)
        if notice is None or notice.state != "sending":
            return NoticeReport(notice_id, await self.repo.tally(notice_id), False)
        after: int | None = None
        while chats := await self.repo.waiting(notice_id, after):
            for chat_id in chats:
                if not running():
                    _LOGGER.info("notice %d paused: the bot is stopping; it resumes at the "
                                 "next start", notice_id)
                    return NoticeReport(notice_id, await self.repo.tally(notice_id), False)
                await self._one(notice_id, chat_id, notice.body, deliver)
            after = chats[-1]
        finished = await self.repo.finish(notice_id, self.clock())
        tally = await self.repo.tally(notice_id)
        if finished:
            _LOGGER.info("notice %d: %d sent, %d refused, %d unknown outcome(s)", notice_id,
                         tally.sent, tally.refused, tally.unknown)
        return NoticeReport(notice_id, tally, finished)

    async def _one(self, notice_id: int, chat_id: int, body: str, deliver: Deliver) -> None:
        await self.pacer.wait()
        if not await self.repo.claim(notice_id, chat_id, self.clock()):
            return
        try:
            delivered = await deliver(chat_id, body)
        except asyncio.CancelledError:
            raise  # mid-send it may have gone out: the claim stays, nothing twice
        except NotSent:
            await self.repo.release(notice_id, chat_id)
            raise
        except Exception:  # the answer was lost: it may have arrived; never sent again
            _LOGGER.exception("notice: a delivery ended with an unknown outcome")
            return
        await self.repo.settle(notice_id, chat_id, "sent" if delivered else "refused",
                               self.clock())
