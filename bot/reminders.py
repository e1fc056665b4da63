"""Reminder rounds (no Telegram here): contributions due and status changes, opted in per
account, at most one message per chat per day, never sent twice.

For every chat with an opted-in account, a round asks the backend once per such account
and collects what to say: from the 5th to the 10th of the month (Asia/Jakarta), unpaid
contributions (when the backend can know them); on any day, a change of status (AKTIF ↔
TIDAK AKTIF), class or FKTP since the status the bot last saw (when the account was added,
re-verified or refreshed, or at the last round). A backend failure says nothing for that
account and is tried again at the next round. Messages are paced under Telegram's limits
(about 30 a second for a bot), so ten thousand chats take minutes, not a burst of 429s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from bot import metrics
from bot.accounts import Account, AccountService
from bot.jkn.base import JknBackend, JknError, Participant
from bot.status import identifier_of, lookup
from bot.wib import jakarta_now
from storage.reminders_repo import RemindersRepo

_LOGGER = logging.getLogger(__name__)
DUE_DAY = 10
FIRST_ARREARS_DAY = 5
#: Messages a second the round sends at most, under Telegram's ~30 and leaving room for
#: the replies of the people using the bot at the same time.
SEND_RATE = 20.0
#: Chats whose statuses are fetched at the same time.
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Arrears:
    label: str
    months: int
    amount: int
    virtual_account: str
    due: date
    slot: str = ""  # the account it is about
    inactive: bool = False  # the card is already inactive: no due date to name


@dataclass(frozen=True, slots=True)
class Change:
    label: str
    what: str  # "status" | "class" | "fktp"
    before: str
    after: str
    active: bool  # the account's status now
    slot: str = ""  # the account it is about


@dataclass
class Notice:
    """What one chat is told on one day."""

    chat_id: int
    day: date
    arrears: list[Arrears] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    seen: dict[str, Participant] = field(default_factory=dict)  # slot → status fetched

    def __bool__(self) -> bool:
        return bool(self.arrears or self.changes)

    def keep(self, slots: list[str]) -> None:
        """Say nothing about accounts other than ``slots`` (those the chat still holds)."""
        self.arrears = [a for a in self.arrears if a.slot in slots]
        self.changes = [c for c in self.changes if c.slot in slots]
        self.seen = {slot: seen for slot, seen in self.seen.items() if slot in slots}


@dataclass
class RoundReport:
    day: date
    chats: int = 0
    sent: int = 0
    already: int = 0
    nothing: int = 0
    failed: int = 0
    backend_failures: int = 0


#: Delivers a notice; True when Telegram took it, False when it refused it outright.
Deliver = Callable[[Notice], Awaitable[bool]]


def changes_between(label: str, before: Participant, now: Participant, slot: str = ""
                    ) -> list[Change]:
    found = []
    if before.status_text != now.status_text or before.active != now.active:
        found.append(Change(label, "status", before.status_text, now.status_text, now.active,
                            slot))
    if before.class_text != now.class_text:
        found.append(Change(label, "class", before.class_text, now.class_text, now.active,
                            slot))
    if (before.fktp_code, before.fktp_name) != (now.fktp_code, now.fktp_name):
        found.append(Change(label, "fktp", before.fktp_name, now.fktp_name, now.active, slot))
    return found


class Pacer:
    """At most ``rate`` passes a second, in order, shared by every task of a round."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._next > now:
                await self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


class ReminderService:
    def __init__(self, accounts: AccountService, repo: RemindersRepo, backend: JknBackend,
                 *, at: clock_time, clock: Callable[[], float],
                 pacer: Pacer | None = None, concurrency: int = CONCURRENCY) -> None:
        self.accounts = accounts
        self.repo = repo
        self.backend = backend
        self.at = at
        self.clock = clock
        self.pacer = pacer or Pacer(SEND_RATE)
        self.concurrency = concurrency

    # -- when -----------------------------------------------------------------------------

    def today(self) -> date:
        return jakarta_now(self.clock()).date()

    def next_round(self) -> datetime:
        """The next round, in Jakarta time (naive)."""
        now = jakarta_now(self.clock())
        at = datetime.combine(now.date(), self.at)
        return at if at > now else at + timedelta(days=1)

    async def missed_today(self) -> bool:
        """Today's round is due and has not run (the bot was down at its time)."""
        return self.due_now() and not await self.repo.round_done(self.today())

    def due_now(self) -> bool:
        """Past today's reminder time (a round missed while the bot was down is run)."""
        now = jakarta_now(self.clock())
        return now >= datetime.combine(now.date(), self.at)

    # -- one chat -------------------------------------------------------------------------

    async def notice_for(self, chat_id: int, slots: list[str], day: date,
                         report: RoundReport) -> Notice:
        """Ask the backend about each opted-in account of the chat whose session has not
        run out (an account marked ⏳ shows nothing until it is re-verified, reminders
        included); what to say."""
        notice = Notice(chat_id, day)
        arrears_days = FIRST_ARREARS_DAY <= day.day <= DUE_DAY
        for account in [a for a in await self.accounts.list(chat_id)
                        if a.slot in slots and self.accounts.is_fresh(a)]:
            try:
                now = await lookup(self.backend, identifier_of(account))
            except JknError as exc:
                report.backend_failures += 1
                _LOGGER.warning("reminder: a status could not be fetched (%s)",
                                type(exc).__name__)
                continue
            notice.seen[account.slot] = now
            if account.status is not None:
                notice.changes += changes_between(account.label,
                                                  Participant.from_dict(account.status), now,
                                                  account.slot)
            if arrears_days and now.arrears_known and now.unpaid_amount > 0:
                notice.arrears.append(_arrears(account, now, day))
        return notice

    async def _one_chat(self, chat_id: int, slots: list[str], day: date, deliver: Deliver,
                        report: RoundReport) -> None:
        notice = await self.notice_for(chat_id, slots, day, report)
        if not notice:
            report.nothing += 1
            return
        await self.pacer.wait()
        sending = False
        try:
            # Right before sending, in the claim's own transaction: which of these accounts
            # the chat still holds, opted in and verified (one removed or the chat erased
            # while the round ran gets nothing, and an erased chat gets no claim row).
            held = await self.repo.claim_held(chat_id, day, self.clock(), list(notice.seen),
                                              fresh_since=self.accounts.fresh_since())
            if held is None:
                report.already += 1
                return
            notice.keep(held)
            if not notice:
                if held:
                    await self.repo.release(chat_id, day)
                report.nothing += 1
                return
            sending = True
            delivered = await deliver(notice)
        except asyncio.CancelledError:  # the bot is stopping
            if not sending:  # claimed but never sent: the next round may send it today
                await asyncio.shield(self.repo.release(chat_id, day))
            raise  # (mid-send it may have gone out: the claim stays, nothing twice)
        except Exception:  # the answer was lost: do not send again today (module docstring)
            _LOGGER.exception("reminder: sending failed with an unknown outcome")
            report.failed += 1
            return
        if not delivered:
            await self.repo.release(chat_id, day)
            report.failed += 1
            return
        statuses = [(slot, seen.to_dict()) for slot, seen in notice.seen.items()]
        await self.repo.sent(chat_id, day, self.clock(), statuses, self.accounts.status_blob)
        report.sent += 1

    # -- a round --------------------------------------------------------------------------

    async def run_round(self, day: date, deliver: Deliver) -> RoundReport:
        """One round for ``day``: every opted-in chat, at most one message each."""
        report = RoundReport(day)
        gate = asyncio.Semaphore(self.concurrency)

        async def guarded(chat_id: int, slots: list[str]) -> None:
            async with gate:
                await self._one_chat(chat_id, slots, day, deliver, report)

        after: int | None = None
        while page := await self.repo.opted_in(after):
            report.chats += len(page)
            await asyncio.gather(*(guarded(chat_id, slots) for chat_id, slots in page))
            after = page[-1][0]
        await self.repo.prune(day)
        await self.repo.mark_round_done(day)
        _LOGGER.info("reminder round %s: %d chat(s), %d sent, %d with nothing to say, "
                     "%d already sent, %d failed, %d backend failure(s)", day.isoformat(),
                     report.chats, report.sent, report.nothing, report.already,
                     report.failed, report.backend_failures)
        metrics.reminder_round(report.sent, report.nothing, report.already, report.failed,
                               report.backend_failures)
        return report


def _arrears(account: Account, now: Participant, day: date) -> Arrears:
    return Arrears(account.label, now.unpaid_months, now.unpaid_amount, now.virtual_account,
                   day.replace(day=DUE_DAY), account.slot, not now.active)
