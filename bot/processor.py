"""Updates run concurrently across chats and strictly in order within a chat.

PTB's base class wraps :meth:`do_process_update` in a semaphore. Taking a per-chat lock
inside it would let one chat's flood hold every slot while it waits; instead each chat
has a queue and at most one worker: the first update of an idle chat becomes that chat's
worker and drains its queue, later updates of the same chat are appended and return at
once, freeing their slot. So a busy chat occupies one slot, and its backlog is bounded.

After each update the processor asks the application to write the persistence, so a
conversation state is on disk as soon as the update that changed it is done; only then is
the update reported done to :attr:`on_complete` (bot/polling.py confirms the getUpdates
offset past it no earlier). With :attr:`record_handled` (set by the polling), that write
and the update's ``handled_updates`` row are one transaction (storage/persistence.py
``update_done``), so an update Telegram sends again after a crash is known to be done.

When a chat's backlog is full (a burst of taps), an update is dropped, but never silently
for the user: a dropped tap's callback query is still answered with a short "too fast"
toast (so no button spins), a dropped message is counted, and the burst is logged once,
as one line, when the chat's queue has drained. A dropped message that may carry a NIK, a
card number, a code or a contact is still deleted (the scrubber's own rule, bot/scrub.py):
the backlog never lets one stay in the chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, BaseUpdateProcessor

from bot import metrics, texts
from bot.scrub import must_scrub, user_message

_LOGGER = logging.getLogger(__name__)


def chat_key(update: object) -> int | None:
    """The ordering key: the chat (or, lacking one, the user) an update belongs to."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None



def fingerprint(update: object) -> str:
    """What tells an update Telegram sends again from another with the same id (another
    bot's, Telegram's random ids after a week without updates, a database restored
    elsewhere): the callback query's id, or the message's id and date. Nothing personal."""
    if not isinstance(update, Update):
        return ""
    if update.callback_query is not None:
        return f"q:{update.callback_query.id}"
    message = update.effective_message
    if message is not None:
        edited = message.edit_date or message.date
        return f"m:{message.message_id}:{int(message.date.timestamp())}:{int(edited.timestamp())}"
    return f"u:{update.update_id}"

class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256, max_backlog: int = 50) -> None:
        super().__init__(max_concurrent_updates)
        self.max_backlog = max_backlog
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._queues: dict[int, deque[tuple[object, Awaitable[Any], str]]] = {}
        self.completed = 0  # handled or dropped: what the harness waits for
        self.dropped = 0
        self.dropped_taps = 0  # answered with the "too fast" toast
        self.dropped_messages = 0
        self.dropped_scrubbed = 0  # dropped, but deleted since they may carry an identifier
        self._bursts: dict[int, list[int]] = {}  # chat -> [taps, messages] dropped
        self._answers: set[asyncio.Task[None]] = set()
        #: Called with each update once it is handled and its persistence written (or
        #: dropped over the backlog): the polling confirms offsets from this.
        self.on_complete: Callable[[object], None] | None = None
        #: Record each handled update in the persistence transaction (bot/polling.py).
        self.record_handled = False

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

    def _done(self, update: object, *, handled: bool = True) -> None:
        self.completed += 1
        if handled and self.on_complete is not None:
            self.on_complete(update)

    async def _run(self, update: object, coroutine: Awaitable[Any], kind: str = "other",
                   key: int | None = None) -> None:
        started = time.monotonic()
        outcome = "handled"
        try:
            await coroutine
        except Exception:  # Application.process_update reports handler errors itself
            outcome = "failed"
            _LOGGER.exception("update processing failed")
        finally:
            try:
                await self._persist(update)
                elapsed = time.monotonic() - started
                metrics.observe_update(kind, elapsed)
                if _LOGGER.isEnabledFor(logging.DEBUG):
                    _LOGGER.debug("update %s: kind=%s state=%s took %.1f ms", outcome, kind,
                                  self._state(key), elapsed * 1000)
            finally:
                self._done(update)

    def _state(self, key: int | None) -> str:
        """The chat's conversation state after the update ("idle" outside one)."""
        persistence = self.application.persistence if self.application else None
        state_of = getattr(persistence, "state_of", None)
        if key is None or state_of is None:
            return "idle"
        return str(state_of(key))

    async def _persist(self, update: object) -> None:
        app = self.application
        if app is None or app.persistence is None:
            return
        update_done = getattr(app.persistence, "update_done", None)
        try:
            if update_done is None or not self.record_handled:
                await app.update_persistence()
                return
            update_id = update.update_id if isinstance(update, Update) else None
            async with update_done(update_id, fingerprint(update)):
                await app.update_persistence()
        except Exception:
            _LOGGER.exception("writing the persistence failed")

    def _drop(self, key: int, update: object, coroutine: Awaitable[Any]) -> None:
        """Over the backlog: the update is not handled, but a tap is still answered."""
        self.dropped += 1
        metrics.UPDATES_DROPPED.inc()
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
            message = user_message(update)
            if message is not None and self.application is not None and must_scrub(message):
                self.dropped_scrubbed += 1
                task = asyncio.create_task(self._delete(message.chat_id, message.message_id))
                self._answers.add(task)
                task.add_done_callback(self._answers.discard)
        self._done(update)

    async def _delete(self, chat_id: int, message_id: int) -> None:
        assert self.application is not None
        try:
            await self.application.bot.delete_message(chat_id, message_id)
        except TelegramError as exc:
            _LOGGER.warning("could not delete a sensitive dropped message: %s",
                            type(exc).__name__)

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
        key = chat_key(update)
        kind = metrics.update_kind(update)
        if key is None:
            await self._run(update, coroutine, kind)
            return
        queue = self._queues.get(key)
        if queue is not None:
            if len(queue) >= self.max_backlog:
                self._drop(key, update, coroutine)
                return
            queue.append((update, coroutine, kind))
            return
        queue = deque([(update, coroutine, kind)])
        self._queues[key] = queue
        try:
            while queue:
                next_update, next_coroutine, next_kind = queue.popleft()
                await self._run(next_update, next_coroutine, next_kind, key)
        finally:
            del self._queues[key]
            self._end_burst(key)
            while queue:  # only if this worker was cancelled: release what it held
                leftover_update, leftover, _ = queue.popleft()
                if isinstance(leftover, Coroutine):
                    leftover.close()
                self._done(leftover_update, handled=False)  # not handled: never confirmed
