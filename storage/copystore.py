"""Move a stopped deployment between SQLite and PostgreSQL (``python -m bot copy-store``).

The source is opened read-only and must be stopped (SQLite: the caller holds the
data-directory instance lock; PostgreSQL: the leader lock is taken here for the copy);
the target must be empty. The target's schema is made by the program's own migrations
(so the source must be at this program's schema version), then every table is copied
with its bytes unchanged: a ciphertext is bound to its table, chat, row and field, never
to the engine. SQLite's implicit ``rowid`` of ``accounts`` and ``rate_events`` (an
explicit column on PostgreSQL, storage/pg.py) is carried over both ways.

Verified on the target before this returns: the row count of every table, a digest of
every table's rows (an order-free SHA-256 over a canonical encoding of each row) equal to
the source's, and every ciphertext decrypted: each chat's data key (``chat_keys``, copied
unchanged like every table) unwrapped with the master key, and the chat's ciphertexts
with it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pg_sql

from storage.chat_keys import open_blob, unwrap
from storage.crypto import Vault, VaultError
from storage.db import SCHEMA_VERSION, Database, DatabaseError
from storage.keys import KEY_CHECK
from storage.pg import LEADER_LOCK_KEY as LOCK_KEY
from storage.pg import PgDatabase, redact

#: Tables whose SQLite ``rowid`` is a column on PostgreSQL (storage.pg.PG_AFTER).
ROWID_TABLES = ("accounts", "rate_events")
#: Meta keys one engine keeps and the other does not.
ENGINE_META = ("schema_version",)
BATCH = 5000
SENSITIVE = ("nik", "card", "name", "phone", "label")


class CopyRefused(Exception):
    """The copy cannot start (source running, target not empty, schema) or did not
    verify; nothing in the source was changed."""


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    decrypted: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        total = sum(self.rows.values())
        return [*(f"{table}: {n} rows" for table, n in sorted(self.rows.items())),
                f"{total} rows copied and verified (counts, digests); {self.decrypted} "
                f"ciphertexts decrypted (chat keys with the master key, the rest with "
                f"their chat's key); {self.seconds:.1f} s"]


def _canonical(value: Any) -> bytes:
    if value is None:
        return b"N"
    if isinstance(value, bool | int):
        return b"I" + str(int(value)).encode()
    if isinstance(value, float):
        return b"F" + value.hex().encode()
    if isinstance(value, bytes | memoryview | bytearray):
        return b"B" + bytes(value).hex().encode()
    return b"T" + str(value).encode()


class _Side:
    """One end of the copy: a raw connection plus what differs between the engines."""

    def __init__(self, sqlite_path: Path | None = None, url: str | None = None) -> None:
        self.path, self.url = sqlite_path, url
        self.lite: sqlite3.Connection | None = None
        self.pg: psycopg.Connection[Any] | None = None
        self._cursors = 0

    @property
    def name(self) -> str:
        return str(self.path) if self.path else redact(str(self.url))

    def open(self, *, readonly: bool) -> None:
        if self.path is not None:
            uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
            self.lite = sqlite3.connect(uri, uri=readonly, isolation_level=None)
        elif readonly:  # one snapshot for the whole copy, and no write possible
            self.pg = psycopg.connect(str(self.url))
            self.pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.pg.read_only = True
        else:
            self.pg = psycopg.connect(str(self.url), autocommit=True)

    def close(self) -> None:
        if self.lite is not None:
            self.lite.close()
        if self.pg is not None:
            self.pg.close()

    def tables(self) -> list[str]:
        if self.lite is not None:
            return [r[0] for r in self.lite.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                "'sqlite_%' ORDER BY name")]
        assert self.pg is not None
        return [r[0] for r in self.pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")]

    def columns(self, table: str) -> list[str]:
        if self.lite is not None:
            names = [r[1] for r in self.lite.execute(f"PRAGMA table_info({table})")]
        else:
            assert self.pg is not None
            names = [r[0] for r in self.pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = %s ORDER BY ordinal_position", (table,))]
        if table in ROWID_TABLES and "rowid" not in names:
            names.append("rowid")
        return names

    def version(self) -> int:
        if self.lite is not None:
            return int(self.lite.execute("PRAGMA user_version").fetchone()[0])
        assert self.pg is not None
        if self.pg.execute("SELECT to_regclass('meta')").fetchone()[0] is None:  # type: ignore[index]
            return 0
        row = self.pg.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(bytes(row[0]).decode()) if row else 0

    def select(self, table: str, columns: list[str]) -> Iterator[tuple[Any, ...]]:
        sql = f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 - names from the schema
        if table == "meta":
            sql += " WHERE key NOT IN ('schema_version')"
        if self.lite is not None:
            cur: Any = self.lite.execute(sql)
        else:
            assert self.pg is not None
            self._cursors += 1  # server-side: constant memory
            cur = self.pg.cursor(name=f"copy_{self._cursors}", withhold=True)
            cur.execute(sql)
        try:
            while batch := cur.fetchmany(BATCH):
                yield from (tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                            for row in batch)
        finally:
            cur.close()

    def digest(self, table: str, columns: list[str]) -> tuple[int, str]:
        hashes = sorted(hashlib.sha256(b"|".join(_canonical(v) for v in row)).digest()
                        for row in self.select(table, columns))
        return len(hashes), hashlib.sha256(b"".join(hashes)).hexdigest()

    def insert(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
        names = ", ".join(columns)
        if self.lite is not None:
            marks = ", ".join("?" for _ in columns)
            self.lite.execute("BEGIN")
            cur = self.lite.cursor()
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH:
                    cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)  # noqa: S608
                    batch.clear()
            if batch:
                cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)  # noqa: S608
            self.lite.execute("COMMIT")
            return
        assert self.pg is not None
        with self.pg.transaction(), self.pg.cursor() as pgcur:
            with pgcur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if table in ROWID_TABLES:
                pgcur.execute(pg_sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({name}, 'rowid'), "
                    "coalesce((SELECT max(rowid) FROM {table}), 0) + 1, false)").format(
                        name=pg_sql.Literal(table), table=pg_sql.Identifier(table)))


def _lead_or_refuse(side: _Side) -> None:
    """PostgreSQL: hold the leader lock for the copy, so no bot serves from it."""
    if side.pg is None:
        return
    row = side.pg.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        raise CopyRefused(f"a bot is running on {side.name} (it holds the leader lock): "
                          "stop every instance first; nothing was changed")


def _decrypt_all(target: _Side, vault: Vault) -> int:
    """Every ciphertext of the target decrypted (raises if one does not): each chat's data
    key unwrapped with the master key, then every ciphertext with the key its header names
    (the chat's; the master key's for a row from before per-chat keys not converted yet).
    The AADs are the repositories' own (storage/accounts_repo.py, otp_repo.py,
    chat_keys.py)."""
    chats: dict[int, Vault] = {}
    for chat_id, wrapped in target.select("chat_keys", ["chat_id", "wrapped"]):
        chats[int(chat_id)] = Vault(unwrap(vault, int(chat_id), bytes(wrapped)))
    done = len(chats)
    for chat_id, slot, *blobs, status in target.select(
            "accounts", ["chat_id", "slot", *(f"{f}_ct" for f in SENSITIVE), "status_ct"]):
        for name, blob in zip((*SENSITIVE, "status"), (*blobs, status), strict=True):
            if blob is not None:
                open_blob(vault, chats.get(int(chat_id)), bytes(blob),
                          Vault.aad("accounts", chat_id, slot, name))
                done += 1
    for chat_id, blob in target.select("challenges", ["chat_id", "payload_ct"]):
        open_blob(vault, chats.get(int(chat_id)), bytes(blob),
                  Vault.aad("challenges", chat_id, "live", "payload"))
        done += 1
    return done


async def _make_schema(target: _Side) -> None:
    db: Database = (await PgDatabase.open_url(str(target.url)) if target.url
                    else await Database.open(str(target.path)))
    await db.close()


async def copy_store(source: _Side, target: _Side, raw_key: bytes) -> CopyReport:
    started = time.monotonic()
    report = CopyReport()
    source.open(readonly=True)
    try:
        _lead_or_refuse(source)
        if source.version() != SCHEMA_VERSION:
            raise CopyRefused(f"the source {source.name} is at schema {source.version()}, "
                              f"this program at {SCHEMA_VERSION}: start this version on it "
                              "once (it migrates), stop it, then copy")
        if target.path is not None and target.path.exists() and target.path.stat().st_size:
            raise CopyRefused(f"the target {target.name} exists: move it away first")
        target.open(readonly=False)
        try:
            _lead_or_refuse(target)
            if target.tables():
                raise CopyRefused(f"the target {target.name} is not empty: copy only into an "
                                  "empty database; nothing was changed")
            target.close()
            await _make_schema(target)
            target.open(readonly=False)
            _lead_or_refuse(target)
            stored = [r for r in source.select("meta", ["key", "value"]) if r[0] == KEY_CHECK]
            vault = Vault(raw_key)
            if not stored or not vault.matches(bytes(stored[0][1])):
                raise CopyRefused("the master key does not match the source; nothing copied")
            for table in source.tables():
                columns = source.columns(table)
                missing = set(columns) - set(target.columns(table))
                if missing:
                    raise DatabaseError(f"{table}: the target lacks {sorted(missing)}")
                target.insert(table, columns, source.select(table, columns))
                expected = source.digest(table, columns)
                got = target.digest(table, columns)
                if expected != got:
                    raise CopyRefused(f"{table}: the copy differs from the source "
                                      f"({expected[0]} rows, {got[0]} copied); the source is "
                                      "unchanged, drop the target's partial copy")
                report.rows[table] = got[0]
            try:
                report.decrypted = _decrypt_all(target, vault)
            except VaultError as exc:
                raise CopyRefused(f"a ciphertext does not decrypt on the target ({exc}); "
                                  "the source is unchanged, drop the target's partial copy "
                                  "before trying again") from None
        finally:
            target.close()
    finally:
        source.close()
    report.seconds = time.monotonic() - started
    return report


async def to_postgres(sqlite_path: Path, url: str, raw_key: bytes) -> CopyReport:
    return await copy_store(_Side(sqlite_path=sqlite_path), _Side(url=url), raw_key)


async def from_postgres(url: str, sqlite_path: Path, raw_key: bytes) -> CopyReport:
    return await copy_store(_Side(url=url), _Side(sqlite_path=sqlite_path), raw_key)


def describe(report: CopyReport) -> str:
    return json.dumps({"rows": report.rows, "decrypted": report.decrypted,
                       "seconds": round(report.seconds, 2)})
