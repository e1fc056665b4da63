"""PTB persistence over the bot's own database.

Conversation states and chat data are written when they change: the update processor
calls ``Application.update_persistence()`` after every update, and PTB then hands over only
what that update touched, so each write is O(1) in the number of chats. Empty chat data is
never stored, so a chat that never consented leaves no row.

When polling, the processor wraps that call in :meth:`SqlitePersistence.update_done`: the
writes PTB hands over are collected (a context variable, which PTB's gathered tasks
inherit) and committed in *one* transaction together with the update's row in
``handled_updates``. So an update is recorded as handled exactly when its conversation
state is committed (its other effects were committed by its handler before), and an
update Telegram sends again after a SIGKILL is skipped (bot/polling.py, docs/decisions.md
44). Writes from elsewhere (housekeeping, PTB's own flush at stop) run at once, as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from storage.db import Database, immediate
from storage.db import rows as db_rows

#: Telegram keeps an unconfirmed update for 24 hours (Bot API, getUpdates).
RESEND_WINDOW = 24 * 3600.0

ChatData = dict[Any, Any]
# The shapes BasePersistence's methods take, as PTB 22 documents them (its own aliases live
# in the private telegram.ext._utils.types).
ConversationKey = tuple[int | str, ...]
ConversationDict = MutableMapping[ConversationKey, object]
CDCData = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]
#: One write: the statements, run inside a transaction the caller holds.
Write = Callable[[sqlite3.Connection], None]
#: The writes of the update being persisted, with what to forget if they fail.
_BATCH: contextvars.ContextVar[list[tuple[Write, Callable[[], None]]] | None] = (
    contextvars.ContextVar("kk_persistence_batch", default=None))
#: What the caches hold for a row whose write failed: equal to no value, so it is written.
_UNKNOWN = "\x00unknown"


class SqlitePersistence(BasePersistence[dict[Any, Any], ChatData, dict[Any, Any]]):
    """Stores conversations and chat data; user, bot and callback data are not kept."""

    def __init__(self, db: Database) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=True, user_data=False,
                                        callback_data=False),
            update_interval=3600,
        )
        self.db = db
        # What each chat's row holds now (chats without a row are absent): PTB marks chat
        # data dirty on every update, so unchanged data must not cost a write.
        self._written: dict[int, str] = {}
        self._states: dict[tuple[str, str], str] = {}  # likewise for conversation states
        self._names: set[str] = set()

    # -- writing ---------------------------------------------------------------------------

    async def _write(self, write: Write, forget: Callable[[], None]) -> None:
        """Run ``write`` in a transaction of its own, or add it to the update's batch."""
        batch = _BATCH.get()
        if batch is not None:
            batch.append((write, forget))
            return

        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                write(conn)
        await self.db.run(unit)

    @contextlib.asynccontextmanager
    async def update_done(self, update_id: int | None,
                          fingerprint: str = "") -> AsyncIterator[None]:
        """Collect the writes made inside (``Application.update_persistence()``), then
        commit them and ``update_id``'s row in ``handled_updates`` (with its
        ``fingerprint``, bot/processor.py) in one transaction."""
        batch: list[tuple[Write, Callable[[], None]]] = []
        token = _BATCH.set(batch)
        try:
            yield
        except BaseException:
            self._forget(batch)
            raise
        finally:
            _BATCH.reset(token)
        if not batch and update_id is None:
            return
        now = self.db.clock()

        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                for write, _ in batch:
                    write(conn)
                if update_id is not None:
                    conn.execute("INSERT INTO handled_updates (update_id, fingerprint, "
                                 "done_at) VALUES (?, ?, ?) ON CONFLICT (update_id) DO UPDATE "
                                 "SET fingerprint = excluded.fingerprint, "
                                 "done_at = excluded.done_at", (update_id, fingerprint, now))
        try:
            await self.db.run(unit)
        except BaseException:
            self._forget(batch)
            raise

    @staticmethod
    def _forget(batch: list[tuple[Write, Callable[[], None]]]) -> None:
        for _, forget in batch:
            forget()

    async def handled_ids(self) -> dict[int, str]:
        """The updates recorded as handled and not yet pruned, with their fingerprints
        (read once at start). Telegram keeps an update a day at most: older rows cannot
        be of an update sent again, and are not read."""
        since = self.db.clock() - RESEND_WINDOW
        rows = await self.db.run(db_rows, "SELECT update_id, fingerprint FROM handled_updates "
                                 "WHERE done_at >= ?", since)
        return {int(row["update_id"]): str(row["fingerprint"]) for row in rows}

    async def prune_handled(self, below: int) -> None:
        """Forget the updates below the confirmed offset: Telegram never sends them again."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("DELETE FROM handled_updates WHERE update_id < ?", (below,))
        await self.db.run(unit)

    # -- conversations --------------------------------------------------------------------

    async def get_conversations(self, name: str) -> ConversationDict:
        rows = await self.db.run(db_rows, "SELECT key, state FROM conversations WHERE name = ?",
                                 name)
        self._names.add(name)
        self._states.update({(name, str(row["key"])): str(row["state"]) for row in rows})
        return {tuple(json.loads(row["key"])): json.loads(row["state"]) for row in rows}

    async def update_conversation(self, name: str, key: ConversationKey,
                                  new_state: object | None) -> None:
        encoded_key = json.dumps(list(key))
        encoded = None if new_state is None else json.dumps(new_state)
        if self._states.get((name, encoded_key)) == encoded:
            return
        chat_id = key[0] if key and isinstance(key[0], int) else None

        def write(conn: sqlite3.Connection) -> None:
            if encoded is None:
                conn.execute("DELETE FROM conversations WHERE name = ? AND key = ?",
                             (name, encoded_key))
            else:
                conn.execute(
                    "INSERT INTO conversations (name, key, chat_id, state) "
                    "VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name, key) DO UPDATE SET state = excluded.state",
                    (name, encoded_key, chat_id, encoded))

        def forget() -> None:
            self._states[(name, encoded_key)] = _UNKNOWN
        await self._write(write, forget)
        if encoded is None:
            self._states.pop((name, encoded_key), None)
        else:
            self._states[(name, encoded_key)] = encoded

    def state_of(self, chat_id: int) -> str:
        """The chat's conversation states as ``name=state`` (for a log line: it names no
        one), or "idle"."""
        key = json.dumps([chat_id])
        found = [f"{name}={self._states[(name, key)]}" for name in sorted(self._names)
                 if (name, key) in self._states]
        return ",".join(found) or "idle"

    # -- chat data ------------------------------------------------------------------------

    async def get_chat_data(self) -> dict[int, ChatData]:
        rows = await self.db.run(db_rows, "SELECT chat_id, data FROM chat_data")
        self._written = {int(row["chat_id"]): str(row["data"]) for row in rows}
        return {chat_id: json.loads(data) for chat_id, data in self._written.items()}

    async def update_chat_data(self, chat_id: int, data: ChatData) -> None:
        encoded = json.dumps(data, sort_keys=True) if data else None
        if encoded == self._written.get(chat_id):
            return
        def write(conn: sqlite3.Connection) -> None:
            if encoded is None:
                conn.execute("DELETE FROM chat_data WHERE chat_id = ?", (chat_id,))
            else:
                conn.execute("INSERT INTO chat_data (chat_id, data) VALUES (?, ?) "
                             "ON CONFLICT (chat_id) DO UPDATE SET data = excluded.data",
                             (chat_id, encoded))
        await self._write(write, lambda: self._written.__setitem__(chat_id, _UNKNOWN))
        if encoded is None:
            self._written.pop(chat_id, None)
        else:
            self._written[chat_id] = encoded

    async def drop_chat_data(self, chat_id: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM chat_data WHERE chat_id = ?", (chat_id,))
        await self._write(write, lambda: self._written.__setitem__(chat_id, _UNKNOWN))
        self._written.pop(chat_id, None)

    async def refresh_chat_data(self, chat_id: int, chat_data: ChatData) -> None:
        """Chat data in memory is always current: every write goes through this process."""

    # -- kinds we do not store ------------------------------------------------------------

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        """User data is not stored."""

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Bot data is not stored."""

    async def update_callback_data(self, data: CDCData) -> None:
        """Arbitrary callback data is not used."""

    async def drop_user_data(self, user_id: int) -> None:
        """User data is not stored."""

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """User data is not stored."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Bot data is not stored."""

    async def flush(self) -> None:
        """Every change is already written when it happens."""
