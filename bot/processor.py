"""Updates run concurrently across chats and strictly in order within a chat.

PTB's base class wraps :meth:`do_process_update` in a semaphore. Taking a per-chat lock
inside it would let one chat's flood hold every slot while it waits; instead each chat
has a queue and at most one worker: the first update of an idle chat becomes that chat's
worker and drains its queue, later updates of the same chat are appended and return at
once, freeing their slot. So a busy chat occupies one slot, and its backlog is bounded.

After each update the processor asks the application to write the persistence, so a
conversation state is on disk as soon as the update that changed it is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import Application, BaseUpdateProcessor

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
        self._queues: dict[int, deque[Awaitable[Any]]] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.completed = 0  # handled or dropped: what the harness waits for
        self.dropped = 0

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Queues drain through their workers, which Application.stop() awaits."""

    @property
    def active_chats(self) -> int:
        return len(self._queues)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def _done(self) -> None:
        self._pending -= 1
        self.completed += 1
        if self._pending == 0:
            self._idle.set()

    async def _run(self, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        except Exception:  # Application.process_update reports handler errors itself
            _LOGGER.exception("update processing failed")
        finally:
            await self._persist()
            self._done()

    async def _persist(self) -> None:
        app = self.application
        if app is None or app.persistence is None:
            return
        try:
            await app.update_persistence()
        except Exception:
            _LOGGER.exception("writing the persistence failed")

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        self._pending += 1
        self._idle.clear()
        key = chat_key(update)
        if key is None:
            await self._run(coroutine)
            return
        queue = self._queues.get(key)
        if queue is not None:
            if len(queue) >= self.max_backlog:
                self.dropped += 1
                _LOGGER.warning("chat backlog full, dropping an update")
                if isinstance(coroutine, Coroutine):
                    coroutine.close()
                self._done()
                return
            queue.append(coroutine)
            return
        queue = deque([coroutine])
        self._queues[key] = queue
        try:
            while queue:
                await self._run(queue.popleft())
        finally:
            del self._queues[key]
            while queue:  # only if this worker was cancelled: release what it held
                leftover = queue.popleft()
                if isinstance(leftover, Coroutine):
                    leftover.close()
                self._done()
