"""Backups an operator can trust: verify one, restore one, and one taken before a migration.

A backup is a plain SQLite file written by SQLite's online backup API (``python -m bot
backup``); its sensitive fields stay encrypted under the master key, which is never in it.

- :func:`inspect_backup` opens a backup read-only and reports its schema, the rows of each
  table, SQLite's integrity check and whether the key opens it.
- :func:`restore` puts a checked backup in place of the data directory's database: the
  key is checked first, an existing database is replaced only when forced, and then it is
  first copied aside (``kk.sqlite3.before-restore-<time>``): nothing saved is lost.
- :func:`backup_before_migration` copies the database to ``KK_DATA_DIR/backups/`` before
  a migration changes its schema, so an upgrade can be rolled back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.config import decode_master_key
from storage.crypto import Vault
from storage.db import SCHEMA_VERSION, Database
from storage.keys import KEY_CHECK, KeyError_

_LOGGER = logging.getLogger(__name__)
BACKUP_DIR = "backups"


class BackupError(Exception):
    """The backup cannot be used; ``str(exc)`` is the one line for the operator."""


@dataclass
class BackupReport:
    path: Path
    schema: int
    integrity: str
    key_matches: bool
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.integrity == "ok" and self.key_matches and self.schema <= SCHEMA_VERSION

    def lines(self) -> list[str]:
        newer = " (newer than this program: upgrade it first)" \
            if self.schema > SCHEMA_VERSION else ""
        return [
            f"backup {self.path}",
            f"schema {self.schema} (this program: {SCHEMA_VERSION}){newer}",
            f"integrity {self.integrity}",
            "key matches" if self.key_matches else "key does NOT match this backup",
            "rows " + ", ".join(f"{name} {n}" for name, n in sorted(self.rows.items())),
            "usable" if self.usable else "NOT usable",
        ]


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    # immutable: nothing writes a backup, and nothing (no -wal, no -shm) is created beside it
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise BackupError(f"{path} is not an SQLite database ({exc})") from None
    return conn


def inspect_backup(path: Path, key: bytes) -> BackupReport:
    conn = _open_readonly(path)
    try:
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        integrity = "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
        tables = [str(r[0]) for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        rows = {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # noqa: S608
                for name in tables}
        stored = None
        if "meta" in tables:
            found = conn.execute("SELECT value FROM meta WHERE key = ?",
                                 (KEY_CHECK,)).fetchone()
            stored = bytes(found[0]) if found else None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read ({exc})") from None
    finally:
        conn.close()
    matches = stored is not None and Vault(key).matches(stored)
    return BackupReport(path, schema, integrity, matches, rows)


def _copy(source: Path, target: Path, *, source_immutable: bool) -> None:
    """SQLite backup API from one file to a new one (mode 0600), synced to disk."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    uri = f"{source.resolve().as_uri()}?mode=ro" + ("&immutable=1" if source_immutable else "")
    src = sqlite3.connect(uri, uri=True)
    dest = sqlite3.connect(str(target))
    try:
        src.backup(dest)
        dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dest.close()
        src.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def restore(backup: Path, db_path: Path, key: bytes, *, force: bool) -> tuple[BackupReport,
                                                                              Path | None]:
    """Put ``backup`` in place of ``db_path``. The caller holds the data directory's locks
    (no bot runs). Returns the report and where the replaced database was kept."""
    report = inspect_backup(backup, key)
    if not report.key_matches:
        raise BackupError(f"the master key does not open {backup} (wrong KK_MASTER_KEY, "
                          "master.key or --key-file?); nothing was changed")
    if report.integrity != "ok":
        raise BackupError(f"{backup} fails SQLite's integrity check ({report.integrity[:80]}); "
                          "nothing was changed")
    if report.schema > SCHEMA_VERSION:
        raise BackupError(f"{backup} has schema {report.schema}, newer than this program "
                          f"({SCHEMA_VERSION}); upgrade first; nothing was changed")
    kept: Path | None = None
    if db_path.exists():
        if not force:
            raise BackupError(f"{db_path} already exists; stop the bot and add --force to "
                              "replace it (it is kept beside as a copy); nothing was changed")
        kept = db_path.with_name(f"{db_path.name}.before-restore-{stamp()}")
        _copy(db_path, kept, source_immutable=False)  # its WAL is read in too
    temp = db_path.with_name(db_path.name + ".restoring")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    try:
        _copy(backup, temp, source_immutable=True)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                db_path.with_name(db_path.name + suffix).unlink()
        os.replace(temp, db_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return report, kept


async def backup_before_migration(db: Database, data_dir: Path) -> Path | None:
    """A copy of a database whose schema is about to change (None when none will)."""
    current = await db.user_version()
    if current == 0 or current >= SCHEMA_VERSION:
        return None
    if db.engine == "postgres":  # the migration is one transaction
        _LOGGER.warning("PostgreSQL schema %d will be migrated to %d (one transaction); "
                        "take a pg_dump first if you want a copy", current, SCHEMA_VERSION)
        return None
    folder = data_dir / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"kk-schema{current}-before-migration-{stamp()}.sqlite3"
    await db.backup_to(target)
    _LOGGER.warning("database schema %d will be migrated to %d; a copy of it was written "
                    "first to %s", current, SCHEMA_VERSION, target)
    return target


def _decode(text: str, origin: str) -> bytes:
    try:
        return decode_master_key(text)
    except ValueError as exc:
        raise KeyError_(f"{origin}: {exc}") from None


def read_key(data_dir: Path, env_key: str | None, key_file: Path | None) -> bytes:
    """The key to check a backup with: --key-file, else KK_MASTER_KEY, else master.key.
    Never creates one."""
    if key_file is not None:
        if not key_file.is_file():
            raise KeyError_(f"--key-file {key_file} does not exist")
        return _decode(key_file.read_text(encoding="ascii"), str(key_file))
    if env_key:
        return _decode(env_key, "KK_MASTER_KEY")
    path = data_dir / "master.key"
    if not path.is_file():
        raise KeyError_(f"no master key: give --key-file, set KK_MASTER_KEY or put "
                        f"master.key in {data_dir}")
    return _decode(path.read_text(encoding="ascii"), str(path))
