"""Storage limitation (UU PDP): a chat that has not been active for RETENTION_DAYS is
told a week ahead, then erased as /hapus_data erases it. No Telegram here.

"Active" is any update from the chat (a message, a command, a tap). What is kept for it is
the last such day (Asia/Jakarta) per chat that holds data, written at most once a day per
chat (:meth:`RetentionService.touch` remembers today's chats in memory), and erased with
the chat. The daily run (handlers/jobs.py) first gives chats without a day today, then
warns those whose last day is ``RETENTION_DAYS - 7`` days back, then erases those whose
last day is ``RETENTION_DAYS`` back and who were warned at least a week ago. Activity after
the warning withdraws it. Each warning is claimed in the database before it is sent, and
each erase re-checks the chat in its own transaction, so two runs (or two instances) never
warn twice or erase a chat that just came back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

from bot import metrics
from bot.reminders import Pacer
from bot.wib import jakarta_now
from storage.retention_repo import RetentionRepo

_LOGGER = logging.getLogger(__name__)
#: The warning comes this many days before the erase.
WARN_DAYS = 7

#: Sends the warning; True when Telegram took it, False when it refused it for good.
#: (The day is the erase's: a chat warned today is erased a week later, unless it is active.)
Warn = Callable[[int, date], Awaitable[bool]]


@dataclass
class RetentionReport:
    warned: int = 0
    erased: int = 0
    refused: int = 0


class RetentionService:
    def __init__(self, repo: RetentionRepo, *, days: int, clock: Callable[[], float],
                 pacer: Pacer) -> None:
        self.repo = repo
        self.days = days
        self.clock = clock
        self.pacer = pacer
        self._seen_day = ""
        self._seen: set[int] = set()

    @property
    def enabled(self) -> bool:
        return self.days > 0

    def today(self) -> date:
        return jakarta_now(self.clock()).date()

    async def touch(self, chat_id: int) -> None:
        """The chat sent something: its last active day is today (one write a day)."""
        if not self.enabled:
            return
        day = self.today().isoformat()
        if day != self._seen_day:
            self._seen_day, self._seen = day, set()
        if chat_id in self._seen:
            return
        await self.repo.touch(chat_id, day)
        self._seen.add(chat_id)

    async def run(self, warn: Warn, erased: Callable[[int], None],
                  running: Callable[[], bool] = lambda: True) -> RetentionReport:
        """Warn, then erase (``erased`` is told each chat id, to drop what is in memory).
        When ``running`` turns false (the bot is stopping) it stops between two chats; the
        next run goes on where this one stopped."""
        report = RetentionReport()
        if not self.enabled:
            return report
        today = self.today()
        await self.repo.adopt(today.isoformat())
        warn_last = (today - timedelta(days=self.days - WARN_DAYS)).isoformat()
        while chats := await self.repo.to_warn(warn_last):
            for chat_id in chats:
                if not running():
                    return report
                await self._warn_one(chat_id, today, warn_last, warn, report)
        erase_last = (today - timedelta(days=self.days)).isoformat()
        warned_by = (today - timedelta(days=WARN_DAYS)).isoformat()
        while chats := await self.repo.due(erase_last, warned_by):
            for chat_id in chats:
                if not running():
                    return report
                clean = await self.repo.erase_if_due(chat_id, erase_last, warned_by)
                if clean is None:
                    continue
                report.erased += 1
                metrics.ERASES.labels("retention").inc()
                self._seen.discard(chat_id)
                erased(chat_id)
        if report.warned or report.erased or report.refused:
            _LOGGER.info("retention: %d chat(s) warned, %d erased, %d warning(s) refused",
                         report.warned, report.erased, report.refused)
        return report

    async def _warn_one(self, chat_id: int, today: date, warn_last: str, warn: Warn,
                        report: RetentionReport) -> None:
        await self.pacer.wait()
        if not await self.repo.claim_warning(chat_id, today.isoformat(), warn_last):
            return
        try:
            delivered = await warn(chat_id, today + timedelta(days=WARN_DAYS))
        except asyncio.CancelledError:
            raise  # mid-send it may have gone out: it counts as warned
        except Exception:  # the answer was lost: counted as warned, never sent twice
            _LOGGER.exception("retention: a warning was sent with an unknown outcome")
            report.warned += 1
            return
        if delivered:
            report.warned += 1
        else:  # blocked or gone: nobody can be told; the erase still comes after a week
            report.refused += 1
