"""Updates run concurrently across chats and strictly in order within a chat.

PTB's base class wraps :meth:`do_process_update` in a semaphore. Taking a per-chat lock
inside it would let one chat's flood hold every slot while it waits; instead each chat
has a queue and at most one worker: the first update of an idle chat becomes that chat's
worker and drains its queue, later updates of the same chat are appended and return at
once, freeing their slot. So a busy chat occupies one slot, and its backlog is bounded.

After each update the processor asks the application to write the persistence, so a
conversation state is on disk as soon as the update that changed it is done; only then is
the update reported done to :attr:`on_complete` (bot/polling.py confirms the getUpdates
offset past it no earlier).

When a chat's backlog is full (a burst of taps), an update is dropped, but never silently
for the user: a dropped tap's callback query is still answered with a short "too fast"
toast (so no button spins), a dropped message is counted, and the burst is logged once,
as one line, when the chat's queue has drained.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, BaseUpdateProcessor

from bot import texts

_LOGGER = logging.getLogger(__name__)


def chat_key(update: object) -> int | None:
    """The ordering key: the chat (or, lacking one, the user) an update belongs to."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None


class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256, max_backlog: int = 50) -> None:
        super().__init__(max_concurrent_updates)
        self.max_backlog = max_backlog
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._queues: dict[int, deque[tuple[object, Awaitable[Any]]]] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.completed = 0  # handled or dropped: what the harness waits for
        self.dropped = 0
        self.dropped_taps = 0  # answered with the "too fast" toast
        self.dropped_messages = 0
        self._bursts: dict[int, list[int]] = {}  # chat -> [taps, messages] dropped
        self._answers: set[asyncio.Task[None]] = set()
        #: Called with each update once it is handled and its persistence written (or
        #: dropped over the backlog): the polling confirms offsets from this.
        self.on_complete: Callable[[object], None] | None = None

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Queues drain through their workers, which Application.stop() awaits; the
        "too fast" answers still in flight are awaited here."""
        if self._answers:
            await asyncio.gather(*self._answers, return_exceptions=True)

    @property
    def active_chats(self) -> int:
        return len(self._queues)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def _done(self, update: object) -> None:
        self._pending -= 1
        self.completed += 1
        if self._pending == 0:
            self._idle.set()
        if self.on_complete is not None:
            self.on_complete(update)

    async def _run(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        except Exception:  # Application.process_update reports handler errors itself
            _LOGGER.exception("update processing failed")
        finally:
            await self._persist()
            self._done(update)

    async def _persist(self) -> None:
        app = self.application
        if app is None or app.persistence is None:
            return
        try:
            await app.update_persistence()
        except Exception:
            _LOGGER.exception("writing the persistence failed")

    def _drop(self, key: int, update: object, coroutine: Awaitable[Any]) -> None:
        """Over the backlog: the update is not handled, but a tap is still answered."""
        self.dropped += 1
        burst = self._bursts.setdefault(key, [0, 0])
        if isinstance(coroutine, Coroutine):
            coroutine.close()
        query = update.callback_query if isinstance(update, Update) else None
        if query is not None and self.application is not None:
            burst[0] += 1
            self.dropped_taps += 1
            task = asyncio.create_task(self._answer_too_fast(query.id))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
        else:
            burst[1] += 1
            self.dropped_messages += 1
        self._done(update)

    async def _answer_too_fast(self, query_id: str) -> None:
        assert self.application is not None
        try:
            await self.application.bot.answer_callback_query(query_id, texts.TOO_FAST)
        except TelegramError as exc:
            _LOGGER.debug("could not answer a dropped tap: %s", type(exc).__name__)

    def _end_burst(self, key: int) -> None:
        burst = self._bursts.pop(key, None)
        if burst is not None:
            _LOGGER.warning("a burst in one chat went over its backlog of %d: %d tap(s) "
                            "answered 'too fast', %d message(s) dropped", self.max_backlog,
                            burst[0], burst[1])

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        self._pending += 1
        self._idle.clear()
        key = chat_key(update)
        if key is None:
            await self._run(update, coroutine)
            return
        queue = self._queues.get(key)
        if queue is not None:
            if len(queue) >= self.max_backlog:
                self._drop(key, update, coroutine)
                return
            queue.append((update, coroutine))
            return
        queue = deque([(update, coroutine)])
        self._queues[key] = queue
        try:
            while queue:
                await self._run(*queue.popleft())
        finally:
            del self._queues[key]
            self._end_burst(key)
            while queue:  # only if this worker was cancelled: release what it held
                _, leftover = queue.popleft()  # not handled: never confirmed
                if isinstance(leftover, Coroutine):
                    leftover.close()
                self._pending -= 1
                self.completed += 1
                if self._pending == 0:
                    self._idle.set()
