"""The one SQLite database: connection, WAL, migrations and units of work.

One stdlib ``sqlite3`` connection lives on one worker thread (:class:`DatabaseThread`, a
one-thread executor owned by :class:`Database`). A unit of work is a plain function of a
``sqlite3.Connection`` that :meth:`Database.run` executes on that thread in one hop: its
statements (and its transaction, see :func:`immediate`) run back to back, nothing else can
interleave with them, and a cancelled caller cannot leave a transaction half done
(docs/decisions.md 11 and 43). Rows are ``sqlite3.Row``: repositories read columns by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

_LOGGER = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
D = TypeVar("D", bound="Database")

#: Tables that hold a chat's own rows, keyed by ``chat_id`` (erased by ``erase_chat``).
CHAT_TABLES = ("accounts", "challenges", "conversations", "chat_data", "consent",
               "reminder_log", "notice_deliveries", "chat_activity", "chat_keys")

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
    # 4: every rate record (SMS sent, look-up, wrong code, backend call) in one table keyed by
    #    keyed hashes only: of the chat (so an erased chat leaves no chat id behind), of the
    #    participant's NIK and of the phone (caps across chats). The old logs held chat ids;
    #    they are dropped (at most a day of caps is forgotten, once). Live challenges are
    #    dropped too: their subject becomes the participant's cross-chat key.
    """
    DROP TABLE sms_log;
    DROP TABLE lookup_log;
    CREATE TABLE rate_events (
        kind TEXT NOT NULL CHECK (kind IN ('sms', 'lookup', 'wrong', 'backend')),
        chat_key BLOB NOT NULL,
        subject_key BLOB,
        phone_key BLOB,
        owner INTEGER NOT NULL DEFAULT 0 CHECK (owner IN (0, 1)),
        at REAL NOT NULL
    );
    CREATE INDEX rate_events_chat ON rate_events (kind, chat_key, at);
    CREATE INDEX rate_events_subject ON rate_events (kind, subject_key, at)
        WHERE subject_key IS NOT NULL;
    CREATE INDEX rate_events_phone ON rate_events (kind, phone_key, at)
        WHERE phone_key IS NOT NULL;
    CREATE INDEX rate_events_time ON rate_events (kind, at);
    DELETE FROM challenges;
    ALTER TABLE challenges ADD COLUMN owner INTEGER NOT NULL DEFAULT 0 CHECK (owner IN (0, 1));
    """,
    # 5: reminders, opt-in per account; one row per chat and day says a reminder was (being)
    #    sent, so neither a restart nor a second run sends it twice
    """
    ALTER TABLE accounts ADD COLUMN remind INTEGER NOT NULL DEFAULT 0 CHECK (remind IN (0, 1));
    CREATE INDEX accounts_remind ON accounts (chat_id) WHERE remind = 1;
    CREATE TABLE reminder_log (
        chat_id INTEGER NOT NULL,
        day TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
        at REAL NOT NULL,
        PRIMARY KEY (chat_id, day)
    );
    CREATE INDEX reminder_log_day ON reminder_log (day);
    """,
    # 6: the operator's notices (/pengumuman), one delivery row per notice and chat claimed
    #    before the send, so a restart resumes without messaging anyone twice; and the last
    #    day a chat was active (RETENTION_DAYS), with the day it was warned of the erase
    """
    CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        body TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('draft', 'sending', 'done', 'cancelled')),
        created_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE TABLE notice_deliveries (
        notice_id INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'refused')),
        at REAL NOT NULL,
        PRIMARY KEY (notice_id, chat_id)
    );
    CREATE INDEX notice_deliveries_chat ON notice_deliveries (chat_id);
    CREATE TABLE chat_activity (
        chat_id INTEGER PRIMARY KEY,
        day TEXT NOT NULL,
        warned_on TEXT
    );
    CREATE INDEX chat_activity_day ON chat_activity (day);
    """,
    # 7: the hash of the code a resend replaced, so that code typed late is answered "it
    #    was replaced" instead of costing a try (issue 22)
    """
    ALTER TABLE challenges ADD COLUMN prior_hash BLOB;
    """,
    # 8: each chat's data key, wrapped under the master key (storage/chat_keys.py); an
    #    erase deletes it with the chat's rows, so old copies of them cannot be read
    """
    CREATE TABLE chat_keys (
        chat_id INTEGER PRIMARY KEY,
        wrapped BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # 9: the Telegram updates whose effects and conversation state are committed, written in
    #    the same transaction as the update's persistence write, so that one Telegram sends
    #    again after a SIGKILL is skipped instead of answered twice (docs/decisions.md 44);
    #    no chat id, nothing personal; pruned below the confirmed polling offset. The
    #    fingerprint (message id and date, or the callback query's id) tells a resent update
    #    from another that has the same id: another bot's, or Telegram's random ids after a
    #    week without updates, or a database restored elsewhere
    """
    CREATE TABLE handled_updates (
        update_id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        done_at REAL NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 5000
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
#: A cleanup a reader held up is tried again after this long, doubling up to the maximum.
CLEANUP_RETRY_SECONDS = 0.25
CLEANUP_RETRY_MAX_SECONDS = 2.0


def _create_private(path: Path) -> None:
    """Create the file owner-only before SQLite opens it; its -wal and -shm files inherit
    the database file's permissions."""
    if str(path) == ":memory:" or path.exists():
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class DatabaseError(Exception):
    """The database cannot be used (newer schema, not a database, corrupt)."""


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` inside a unit of work; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full) may leave it open
            conn.execute("ROLLBACK")
        raise


def count(conn: sqlite3.Connection, sql: str, *params: object) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0  # the one column of a count


def checkpoint_truncate(conn: sqlite3.Connection) -> bool:
    """One attempt, without waiting, to copy the WAL into the database and truncate it to
    zero bytes, so that pages holding deleted rows (already zeroed by ``secure_delete``)
    leave no older copy in either file. A reader of another process (``backup`` copying)
    keeps older frames alive: then this returns False at once, having copied what it could,
    and :class:`Database` tries again in the background (never by holding the connection,
    which every chat shares)."""
    waits = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError:  # busy or locked: a reader or another writer
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {waits}")
    return row is not None and int(row[0]) == 0


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled; the unit ran all the same
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class DatabaseThread:
    """A one-thread executor: functions handed over run one at a time, in order, on its
    thread; each caller awaits an asyncio future settled from there. A cancelled caller
    does not take its function back: once handed over it runs (the result is dropped).

    ``concurrent.futures.ThreadPoolExecutor(max_workers=1)`` gives the same order, but each
    call then goes through a ``concurrent.futures.Future``, ``asyncio.wrap_future`` and, to
    keep a queued unit from being cancelled, ``asyncio.shield``: 1.5 times aiosqlite's cost
    per hop, where this is level with it (docs/decisions.md 43)."""

    def __init__(self, name: str = "kk-db") -> None:
        self._queue: queue.SimpleQueue[
            tuple[asyncio.Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((future, fn))
        return future

    def stop(self) -> None:
        """The thread ends after what was handed over before this."""
        self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, who decides
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                future.get_loop().call_soon_threadsafe(_settle, future, result, error)
            del future, fn, result, error, item


class Database:
    """An open database: one ``sqlite3`` connection owned by one worker thread.

    Every statement runs on that thread, inside a unit of work handed to :meth:`run`; the
    event loop never touches the connection. The public surface is what a PostgreSQL
    implementation would offer too: :meth:`open`, :meth:`run`, :meth:`close`,
    :meth:`migrate`, :meth:`backup_to` and the small chat-wide operations below.

    Forgetting something (an erase, a removed or evicted account, a dropped or used code)
    ends with :meth:`scrub` inside its unit: one checkpoint attempt that never waits. If a
    reader holds it up, :attr:`cleanup_pending` says so (the reply tells the user) and a
    background task tries again until the WAL is empty, each try holding the connection
    for one non-waiting checkpoint only, so no other chat is held up.
    """

    #: ``sqlite`` here, ``postgres`` for :class:`storage.pg.PgDatabase`.
    engine = "sqlite"

    def __init__(self, conn: sqlite3.Connection, worker: DatabaseThread,
                 path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._worker = worker
        self._closed = False
        self.path = path
        self.clock = clock
        self._residue = False
        self._cleaner: asyncio.Task[None] | None = None
        #: The chat-key caches of this database, one per master key (storage/chat_keys.py).
        self.key_caches: dict[bytes, Any] = {}

    @property
    def cleanup_pending(self) -> bool:
        """Bytes of rows forgotten earlier may still be in the files (a reader held up
        their cleanup); a background task is removing them."""
        return self._residue

    def scrub(self, conn: sqlite3.Connection) -> bool:
        """Inside a unit of work, after a deletion committed: empty the WAL now if no
        reader is in the way, else leave it to the background task. True if done now."""
        done = checkpoint_truncate(conn)
        self._residue = not done
        return done

    def erased(self, chat_id: int) -> None:
        """After an erase committed: no cache keeps the chat's data key."""
        for keys in list(self.key_caches.values()):
            keys.forget(chat_id)

    def _ensure_cleaner(self) -> None:
        if self._cleaner is None or self._cleaner.done():
            _LOGGER.warning("a reader holds the database: the cleanup after a deletion is "
                            "retried in the background")
            self._cleaner = asyncio.get_running_loop().create_task(self._clean_later())

    async def _clean_later(self) -> None:
        delay = CLEANUP_RETRY_SECONDS
        while self._residue:
            await asyncio.sleep(delay)
            delay = min(delay * 2, CLEANUP_RETRY_MAX_SECONDS)
            with contextlib.suppress(sqlite3.Error):
                await self.run(self.scrub)
        _LOGGER.info("the cleanup after a deletion has finished")

    async def wait_clean(self) -> None:
        """Return once no cleanup is pending (tests: put a timeout around it)."""
        if self._cleaner is not None:
            await asyncio.shield(self._cleaner)

    @classmethod
    async def open(cls, path: Path | str, *, clock: Callable[[], float] = time.time,
                   migrate: bool = True) -> Database:
        """Open (creating the file owner-only if new). A file that is not an SQLite
        database, or is damaged, raises :class:`DatabaseError` and is left as it was."""
        _create_private(Path(path))
        return await started(functools.partial(_connect, str(path)),
                             lambda conn, worker: cls(conn, worker, path, clock), migrate)

    async def close(self) -> None:
        """Optimise (best effort) and close; waits for units already handed over. A second
        call does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._cleaner is not None:
            self._cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleaner

        def unit(conn: sqlite3.Connection) -> None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()
        try:
            await self.run(unit)
        finally:
            self._worker.stop()

    async def run(self, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                  *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(connection, *args, **kwargs)`` on the database thread, in one hop.

        Units run one at a time in the order they were handed over (one worker thread), so
        nothing interleaves with a unit's statements. A caller cancelled after handing its
        unit over does not stop it: the unit still runs to its COMMIT or ROLLBACK."""
        result = await self._worker.submit(functools.partial(fn, self._conn, *args, **kwargs))
        if self._residue:
            self._ensure_cleaner()
        return result

    async def user_version(self) -> int:
        return await self.run(_user_version)

    async def migrate(self) -> None:
        def unit(conn: sqlite3.Connection) -> list[int]:
            current = _user_version(conn)
            if current > SCHEMA_VERSION:
                raise DatabaseError(
                    f"database schema {current} is newer than this program ({SCHEMA_VERSION})")
            applied = []
            for number in range(current, SCHEMA_VERSION):
                with immediate(conn):
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {number + 1}")
                applied.append(number + 1)
            return applied
        for number in await self.run(unit):
            _LOGGER.info("database migrated to schema %d", number)

    async def get_meta(self, key: str) -> bytes | None:
        def unit(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return bytes(row["value"]) if row else None
        return await self.run(unit)

    async def set_meta(self, key: str, value: bytes) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (key, value))
        await self.run(unit)

    async def erase_chat(self, chat_id: int) -> bool:
        """Delete every row of the chat in one transaction, then truncate the WAL.

        ``secure_delete`` zeroes the deleted cells in the pages; the checkpoint copies those
        pages into the database file and empties the WAL, so no earlier copy of the rows is
        left in either file. Returns True if that is so when this returns; False if a reader
        of another process held the checkpoint up (then it is retried in the background
        until it succeeds, see :meth:`scrub`). Rate records are kept (keyed by an HMAC of
        the chat, never its id) so that an erase cannot reset the caps."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                for table in CHAT_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE chat_id = ?",  # noqa: S608
                                 (chat_id,))
                conn.execute("DELETE FROM user_data WHERE user_id = ?", (chat_id,))
            self.erased(chat_id)
            return self.scrub(conn)
        return await self.run(unit)

    async def checkpoint(self) -> bool:
        """Empty the WAL into the database (after forgetting something outside a unit, and
        at start); retried in the background if a reader holds it up."""
        return await self.run(self.scrub)

    async def backup_to(self, target: Path) -> None:
        """A consistent online copy through SQLite's backup API (mode 0600)."""
        _create_private(target)

        def unit(conn: sqlite3.Connection) -> None:
            dest = sqlite3.connect(str(target))
            try:
                conn.backup(dest)
            finally:
                dest.close()
        await self.run(unit)


async def started(connect: Callable[[], Any], build: Callable[[Any, DatabaseThread], D],
                  migrate: bool) -> D:
    """Connect on a new database thread, build the store around the connection, migrate:
    the one opening sequence of both stores (a failure at any step closes what it opened)."""
    worker = DatabaseThread()
    try:
        conn = await worker.submit(connect)
    except BaseException:
        worker.stop()
        raise
    db = build(conn, worker)
    try:
        if migrate:
            await db.migrate()
    except BaseException:
        await db.close()
        raise
    return db


def rows(conn: sqlite3.Connection, sql: str, *params: object) -> list[sqlite3.Row]:
    """Every row of a query, each read by column name."""
    return conn.execute(sql, params).fetchall()


def _connect(path: str) -> sqlite3.Connection:
    """Open on the database thread (the connection stays there) with rows read by name.
    A file that is not a database, or is damaged, raises :class:`DatabaseError`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        for pragma in (f"busy_timeout={BUSY_TIMEOUT_MS}", "journal_mode=WAL",
                       f"journal_size_limit={JOURNAL_SIZE_LIMIT}", "foreign_keys=ON",
                       "synchronous=NORMAL", "secure_delete=ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # reads page 1: a
        # damaged header fails here
    except sqlite3.OperationalError as exc:
        conn.close()
        raise DatabaseError(f"{path} cannot be opened ({exc}); is another process "
                            "holding it? Nothing was changed") from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(f"{path} is not a usable SQLite database ({exc}); it was "
                            "left untouched: restore a backup or move it away") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row["user_version"]) if row else 0
