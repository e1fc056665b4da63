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
  (0.25 s) first: a new update waits at most that long while others are in hand;
- on a graceful stop: fetching stops, the application finishes the updates in hand, and
  :meth:`ConfirmedPolling.confirm` makes one last getUpdates to confirm them.

After SIGKILL Telegram delivers again every update from the smallest in flight: the ones
in hand, and also the ones after it that had finished (at-least-once; docs/decisions.md
says what makes handling one twice harmless). Per-chat order holds: updates are queued in
update_id order and the processor keeps each chat's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.processor import ChatOrderedProcessor

_LOGGER = logging.getLogger(__name__)
FIRST_RETRY = 1.0
MAX_RETRY = 30.0


class ConfirmedPolling:
    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any],
                 processor: ChatOrderedProcessor, *, allowed_updates: Sequence[str],
                 timeout: int = 10, idle_wait: float = 0.25,
                 error_callback: Callable[[TelegramError], None] | None = None,
                 first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY) -> None:
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
        self._task: asyncio.Task[None] | None = None
        processor.on_complete = self._complete

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

    async def start(self) -> None:
        """Remove any webhook (as PTB's start_polling does), then fetch in the background."""
        await self.application.bot.delete_webhook(drop_pending_updates=False)
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="ConfirmedPolling")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _loop(self) -> None:
        delay = self.first_retry
        while not self._stopping.is_set():
            try:
                updates = await self.application.bot.get_updates(
                    offset=self.offset, timeout=self.timeout,
                    allowed_updates=self.allowed_updates)
            except TelegramError as exc:  # also a revoked token: retried, said once a minute
                if self.error_callback is not None:
                    self.error_callback(exc)
                await self._pause(delay)
                delay = min(delay * 2, self.max_retry)
                continue
            delay = self.first_retry
            if self._stopping.is_set():
                return  # not queued, not confirmed: Telegram sends them again
            fresh = [u for u in updates if u.update_id > self.highest]
            for update in fresh:
                self.in_flight.add(update.update_id)
                self.highest = update.update_id
                self.application.update_queue.put_nowait(update)
            if not fresh and self.in_flight:
                await self._pause(self.idle_wait)

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
        try:
            await self.application.bot.get_updates(
                offset=self.offset, timeout=0, limit=1, allowed_updates=self.allowed_updates)
        except TelegramError as exc:
            _LOGGER.warning("could not confirm the last updates (%s); the next start may "
                            "handle them again", type(exc).__name__)
