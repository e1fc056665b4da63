"""Long polling whose offset is confirmed only past updates that are done.

Telegram forgets an update when a getUpdates asks for a higher ``offset``. PTB's Updater
asks for ``last fetched + 1`` on its next call, right after putting the batch into the
application's queue, before any of it is handled: an update in hand when the process is
killed is lost. Here the offset is the low-water mark of the updates not yet done:

- every fetched update is *in flight* from when it is queued until the processor reports
  it done (handled, or dropped over a chat's backlog), which is after the update's effects
  and the persistence write are committed (bot/processor.py, ``on_complete``);
- the next getUpdates asks for ``offset = the smallest in-flight update_id`` (or, none in
  flight, ``the highest fetched + 1``); Telegram then sends the in-flight ones again, and
  they are skipped (anything at or below the highest fetched id is already queued);
- a batch with nothing new while updates are in flight would answer at once again and
  again (each answer up to 100 updates to parse), so the loop then pauses ``idle_wait``
  (0.25 s) first: a new update waits at most that long while others are in hand. The
  pause ends early when the last update in flight is done: the next getUpdates then
  confirms them all and waits for new ones, so a person who answers the bot's reply is
  read at once, not after the rest of the pause (one poll per busy spell, not one per
  completion, which made a burst crawl);
- on a graceful stop: fetching stops, the application finishes the updates in hand, and
  :meth:`ConfirmedPolling.confirm` makes one last getUpdates to confirm them.

After SIGKILL Telegram delivers again every update from the smallest in flight: the ones
in hand, and also the ones after it that had finished. With a ``handled`` log (the
persistence, storage/persistence.py), each update's row in ``handled_updates`` is committed
in the same transaction as its conversation state; the ids found there are read once at
start, and a resent update among them is skipped (not handled, not answered again). Those
rows are pruned below the confirmed offset every :data:`PRUNE_SECONDS` and at the last
confirm. What stays at-least-once: an update whose state commit had not happened (handled
again: docs/decisions.md 44 says why that is harmless). Per-chat order holds: updates are
queued in update_id order and the processor keeps each chat's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.processor import ChatOrderedProcessor, fingerprint

_LOGGER = logging.getLogger(__name__)
FIRST_RETRY = 1.0
MAX_RETRY = 30.0
#: Added to the long poll's timeout for the HTTP read (python-telegram-bot's default
#: read timeout, which its ``get_updates`` adds the same way).
READ_MARGIN = 5.0
#: How often the handled updates below the confirmed offset are forgotten.
PRUNE_SECONDS = 30.0


class HandledLog(Protocol):
    """Where handled updates are recorded (storage/persistence.py)."""

    async def handled_ids(self) -> dict[int, str]: ...

    async def prune_handled(self, below: int) -> None: ...


class ConfirmedPolling:
    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any],
                 processor: ChatOrderedProcessor, *, allowed_updates: Sequence[str],
                 timeout: int = 10, idle_wait: float = 0.25,
                 error_callback: Callable[[TelegramError], None] | None = None,
                 first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY,
                 handled: HandledLog | None = None) -> None:
        self.application = application
        self.allowed_updates = list(allowed_updates)
        self.timeout = timeout
        self.idle_wait = idle_wait
        self.error_callback = error_callback
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.in_flight: set[int] = set()
        self.highest = -1  # the highest update_id queued so far
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()  # set when the last update in flight is done
        self._task: asyncio.Task[None] | None = None
        processor.on_complete = self._complete
        self.handled = handled
        processor.record_handled = handled is not None
        #: Handled by an earlier run, not yet pruned: update id → fingerprint.
        self._done_before: dict[int, str] = {}
        self._pruned_at = 0.0
        self._pruned_below = 0
        self.skipped = 0

    @property
    def offset(self) -> int:
        """What the next getUpdates confirms up to (exclusive)."""
        if self.in_flight:
            return min(self.in_flight)
        return self.highest + 1 if self.highest >= 0 else 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _complete(self, update: object) -> None:
        if isinstance(update, Update):
            self.in_flight.discard(update.update_id)
            if not self.in_flight:
                self._drained.set()

    async def start(self) -> None:
        """Remove any webhook (as PTB's start_polling does), then fetch in the background."""
        await self.application.bot.delete_webhook(drop_pending_updates=False)
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="ConfirmedPolling")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _pause_while_busy(self) -> None:
        """``idle_wait``, or less: until nothing is in flight any more, or a stop."""
        if not self.in_flight:
            return
        waits = {asyncio.ensure_future(self._drained.wait()),
                 asyncio.ensure_future(self._stopping.wait())}
        try:
            await asyncio.wait(waits, timeout=self.idle_wait,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _load_handled(self) -> None:
        if self.handled is None:
            return
        try:
            self._done_before = await self.handled.handled_ids()
        except Exception as exc:  # then a resent update is handled again, as without it
            _LOGGER.warning("could not read the handled updates (%s); updates sent again "
                            "after a restart may be answered twice", type(exc).__name__)

    async def _prune(self, below: int, *, now: bool = False) -> None:
        if self.handled is None or below <= self._pruned_below:
            return
        if not now and asyncio.get_running_loop().time() - self._pruned_at < PRUNE_SECONDS:
            return
        self._pruned_at = asyncio.get_running_loop().time()
        try:
            await self.handled.prune_handled(below)
            self._pruned_below = below
        except Exception as exc:  # tried again at the next prune
            _LOGGER.warning("could not prune the handled updates (%s)", type(exc).__name__)

    async def _loop(self) -> None:
        delay = self.first_retry
        await self._load_handled()
        while not self._stopping.is_set():
            offset = self.offset
            try:
                answer = await self._fetch(offset)
            except TelegramError as exc:  # also a revoked token: retried, said once a minute
                if self.error_callback is not None:
                    self.error_callback(exc)
                await self._pause(delay)
                delay = min(delay * 2, self.max_retry)
                continue
            delay = self.first_retry
            if self._stopping.is_set():
                return  # not queued, not confirmed: Telegram sends them again
            fresh = self._new_updates(answer)
            skipped = 0
            for update in fresh:
                self.highest = max(self.highest, update.update_id)
                done = self._done_before.pop(update.update_id, None)
                if done is not None and done == fingerprint(update):  # its state is committed
                    skipped += 1
                    continue
                self.in_flight.add(update.update_id)
                self._drained.clear()
                self.application.update_queue.put_nowait(update)
            if skipped:
                self.skipped += skipped
                _LOGGER.info("%d update(s) sent again were already handled before the "
                             "restart: skipped", skipped)
            await self._prune(offset)  # Telegram has forgotten everything below it
            if len(fresh) == skipped and self.in_flight:
                await self._pause_while_busy()

    async def _fetch(self, offset: int) -> list[dict[str, Any]]:
        """getUpdates, its answer left unparsed: Telegram sends the updates in flight again
        with every answer (up to 100), and python-telegram-bot's ``get_updates`` would make
        objects of all of them before the loop drops the old ones; that was three quarters
        of a switch's CPU (docs/performance.md). ``_post`` is the call ``get_updates``
        itself makes, through the same getUpdates request and its observers."""
        data: dict[str, Any] = {"offset": offset, "timeout": self.timeout,
                                "allowed_updates": self.allowed_updates}
        answer = await self.application.bot._post(
            "getUpdates", data, read_timeout=self.timeout + READ_MARGIN)
        return list(answer or [])

    def _new_updates(self, answer: list[dict[str, Any]]) -> list[Update]:
        """The updates of an answer not queued yet, as objects; the others are not parsed.
        One that cannot be read is logged (by id) and passed over, as no handler could
        take it and it must not hold the offset back for good."""
        fresh: list[Update] = []
        for data in answer:
            update_id = int(data.get("update_id", -1))
            if update_id <= self.highest:
                continue
            try:
                update = Update.de_json(data, self.application.bot)
            except Exception:
                _LOGGER.error("update %d could not be read and is passed over", update_id)
                self.highest = update_id
                continue
            if update is not None:
                fresh.append(update)
        return fresh

    async def stop(self) -> None:
        """Stop fetching (a long poll in progress is abandoned; what it would have brought
        is not confirmed, so Telegram sends it again to the next fetcher)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def confirm(self) -> None:
        """After the application has finished the updates in hand: confirm them, so the
        next start does not handle them again."""
        if self.highest < 0:
            return
        offset = self.offset
        try:
            await self.application.bot.get_updates(
                offset=offset, timeout=0, limit=1, allowed_updates=self.allowed_updates)
        except TelegramError as exc:
            _LOGGER.warning("could not confirm the last updates (%s); the next start may "
                            "handle them again", type(exc).__name__)
            return
        await self._prune(offset, now=True)
