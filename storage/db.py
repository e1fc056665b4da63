"""The one SQLite database: connection, WAL, migrations and transactions.

aiosqlite runs one connection on its own thread. Because statements of two tasks would
otherwise interleave inside one transaction, every unit of work takes :attr:`Database.lock`:
:meth:`transaction` for writes (``BEGIN IMMEDIATE``), :meth:`read` for consistent reads.
Each unit is a handful of indexed statements, so the lock is held for microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

_LOGGER = logging.getLogger(__name__)

#: Forward migrations; the database's ``PRAGMA user_version`` is the number applied.
MIGRATIONS: list[str] = [
    # 1: consent
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE consent (
        chat_id INTEGER PRIMARY KEY,
        consented_at REAL NOT NULL
    );
    """,
    # 2: accounts, OTP challenges, SMS log, PTB persistence
    """
    CREATE TABLE accounts (
        chat_id INTEGER NOT NULL,
        slot TEXT NOT NULL,
        nik_index BLOB NOT NULL,
        nik_ct BLOB NOT NULL,
        card_ct BLOB NOT NULL,
        name_ct BLOB NOT NULL,
        phone_ct BLOB NOT NULL,
        label_ct BLOB NOT NULL,
        lookup_kind TEXT NOT NULL DEFAULT 'nik' CHECK (lookup_kind IN ('nik', 'card')),
        status_ct BLOB,
        status_at REAL,
        verified_at REAL NOT NULL,
        last_used_at REAL NOT NULL,
        created_at REAL NOT NULL,
        active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
        PRIMARY KEY (chat_id, slot),
        UNIQUE (chat_id, nik_index)
    );
    CREATE UNIQUE INDEX accounts_slot ON accounts (slot);
    CREATE UNIQUE INDEX accounts_one_active ON accounts (chat_id) WHERE active = 1;
    CREATE TABLE challenges (
        chat_id INTEGER PRIMARY KEY,
        purpose TEXT NOT NULL,
        subject BLOB NOT NULL,
        phone_index BLOB NOT NULL,
        code_hash BLOB NOT NULL,
        payload_ct BLOB NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        last_sent_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        resends INTEGER NOT NULL DEFAULT 0,
        consumed_at REAL
    );
    CREATE TABLE sms_log (
        chat_id INTEGER NOT NULL,
        phone_index BLOB NOT NULL,
        sent_at REAL NOT NULL
    );
    CREATE INDEX sms_log_phone ON sms_log (phone_index, sent_at);
    CREATE INDEX sms_log_chat ON sms_log (chat_id, sent_at);
    CREATE INDEX sms_log_time ON sms_log (sent_at);
    CREATE TABLE conversations (
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        chat_id INTEGER,
        state TEXT NOT NULL,
        PRIMARY KEY (name, key)
    );
    CREATE INDEX conversations_chat ON conversations (chat_id);
    CREATE TABLE chat_data (chat_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE user_data (user_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE bot_data (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL);
    """,
    # 3: participant look-ups per chat (no identifier), against NIK enumeration
    """
    CREATE TABLE lookup_log (chat_id INTEGER NOT NULL, at REAL NOT NULL);
    CREATE INDEX lookup_log_chat ON lookup_log (chat_id, at);
    CREATE INDEX lookup_log_time ON lookup_log (at);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def _create_private(path: Path) -> None:
    """Create the file owner-only before SQLite opens it; its -wal and -shm files inherit
    the database file's permissions."""
    if str(path) == ":memory:" or path.exists():
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DatabaseError(Exception):
    """The database cannot be used (newer schema, unreadable file)."""


class Database:
    """An open database with a lock that serialises units of work on its one connection."""

    def __init__(self, conn: aiosqlite.Connection, path: Path | str,
                 clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.path = path
        self.lock = asyncio.Lock()
        self.clock = clock

    @classmethod
    async def open(cls, path: Path | str, *, clock: Callable[[], float] = time.time,
                   migrate: bool = True) -> Database:
        _create_private(Path(path))
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA secure_delete=ON")
            db = cls(conn, path, clock)
            if migrate:
                await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        async with self.lock:
            with contextlib.suppress(sqlite3.Error):  # best effort
                await self.conn.execute("PRAGMA optimize")
            await self.conn.close()

    async def user_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        async with self.lock:
            current = await self.user_version()
            if current > SCHEMA_VERSION:
                raise DatabaseError(
                    f"database schema {current} is newer than this program ({SCHEMA_VERSION})")
            for number in range(current, SCHEMA_VERSION):
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            await self.conn.execute(statement)
                    await self.conn.execute(f"PRAGMA user_version = {number + 1}")
                    await self.conn.execute("COMMIT")
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
                _LOGGER.info("database migrated to schema %d", number + 1)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception or cancellation."""
        async with self.lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await asyncio.shield(self.conn.execute("ROLLBACK"))
                raise
            await asyncio.shield(self.conn.execute("COMMIT"))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection for reads that must see one consistent state."""
        async with self.lock:
            yield self.conn

    async def get_meta(self, key: str) -> bytes | None:
        async with self.read() as conn, conn.execute(
                "SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def set_meta(self, key: str, value: bytes) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # -- consent --------------------------------------------------------------------------

    async def record_consent(self, chat_id: int) -> float:
        """Record (or keep) the chat's consent; returns its timestamp."""
        now = self.clock()
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO consent (chat_id, consented_at) VALUES (?, ?) "
                "ON CONFLICT (chat_id) DO NOTHING", (chat_id, now))
            async with conn.execute(
                    "SELECT consented_at FROM consent WHERE chat_id = ?", (chat_id,)) as cur:
                row = await cur.fetchone()
        assert row is not None
        return float(row[0])

    async def consented_at(self, chat_id: int) -> float | None:
        async with self.read() as conn, conn.execute(
                "SELECT consented_at FROM consent WHERE chat_id = ?", (chat_id,)) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row else None

    async def erase_chat(self, chat_id: int) -> None:
        """Delete every row of the chat in one transaction (secure_delete is on)."""
        async with self.transaction() as conn:
            # sms_log is kept: it holds no identifier, only a keyed phone hash and a time,
            # expires after a day and keeps the SMS caps from being reset by an erase.
            # lookup_log likewise (no identifier, a day long): an erase cannot reset the cap.
            for table in ("accounts", "challenges", "conversations", "chat_data", "consent"):
                await conn.execute(f"DELETE FROM {table} WHERE chat_id = ?",  # noqa: S608
                                   (chat_id,))
            await conn.execute("DELETE FROM user_data WHERE user_id = ?", (chat_id,))

    async def backup_to(self, target: Path) -> None:
        """A consistent online copy through SQLite's backup API (mode 0600)."""
        _create_private(target)
        async with self.read():
            dest = await aiosqlite.connect(str(target))
            try:
                await self.conn.backup(dest)
            finally:
                await dest.close()
