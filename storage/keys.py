"""Master key handling: where the key comes from, how it is checked, how it is rotated.

Order: ``KK_MASTER_KEY`` if set, else ``KK_DATA_DIR/master.key``. The key file is created
(mode 0600) only when neither it nor the database exists yet. The database keeps a key
check value; a key that does not match it is refused before anything is read or written.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from storage.chat_keys import ChatKeys, convert_all, rewrap_all
from storage.crypto import Vault, generate_master_key
from storage.db import SCHEMA_VERSION, Database, immediate
from storage.otp_repo import OtpRepo

KEY_CHECK = "key_check"
#: The key of the rate records, wrapped under the master key; it survives rotations.
RATE_KEY = "rate_key"


class KeyError_(Exception):
    """The master key is missing, malformed or does not open this database."""


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode(text: str, origin: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise KeyError_(f"{origin} is not valid base64") from None
    if len(raw) != 32:
        raise KeyError_(f"{origin} must decode to 32 bytes")
    return raw


def write_key_file(path: Path, raw: bytes, *, exclusive: bool = True) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encode_key(raw) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)


def resolve_master_key(data_dir: Path, db_path: Path, env_key: str | None) -> bytes:
    """Find the master key, creating the key file only for a brand-new installation."""
    if env_key:
        return _decode(env_key, "KK_MASTER_KEY")
    key_path = data_dir / "master.key"
    if key_path.exists():
        return _decode(key_path.read_text(encoding="ascii"), str(key_path))
    if db_path.exists():
        raise KeyError_(
            f"the database {db_path} exists but no master key was given: set KK_MASTER_KEY "
            f"or restore {key_path}; nothing was changed")
    raw = generate_master_key()
    write_key_file(key_path, raw)
    return raw


async def check_key(db: Database, vault: Vault, key_path: Path | None = None) -> Vault:
    """Accept the key if it matches the database (recording it on a new database).

    If a rotation was interrupted after its commit, the new key waits in
    ``master.key.new``: it is recognised, moved into place and used.
    """
    stored = await db.get_meta(KEY_CHECK)
    if stored is None:
        await db.set_meta(KEY_CHECK, vault.check_value())
        return await _with_rate_key(db, vault)
    if vault.matches(stored):
        if key_path is not None:  # a rotation that died before its commit: never used
            with contextlib.suppress(FileNotFoundError):
                key_path.with_name(key_path.name + ".new").unlink()
            adopt_legacy_old_key(key_path)
        return await _with_rate_key(db, vault)
    if key_path is not None:
        pending = key_path.with_name(key_path.name + ".new")
        if pending.exists():
            candidate = Vault(_decode(pending.read_text(encoding="ascii"), str(pending)))
            if candidate.matches(stored):
                _finish_rotation(key_path)
                return await _with_rate_key(db, candidate)
    raise KeyError_("the master key does not match this database (wrong KK_MASTER_KEY or "
                    "master.key?); refusing to start, nothing was changed")


async def _with_rate_key(db: Database, vault: Vault) -> Vault:
    """Adopt the database's rate key, recording the current one if it has none yet (a
    database from before rate keys: its records were keyed exactly so, nothing is lost)."""
    wrapped = await db.get_meta(RATE_KEY)
    if wrapped is None:
        await db.set_meta(RATE_KEY, vault.wrap_rate_key())
    else:
        vault.adopt_rate_key(wrapped)
    return vault


async def open_existing(data_dir: Path, db_path: Path, env_key: str | None) -> Database:
    """Open an existing, current database to copy it: the key must match, and nothing is
    created, migrated or recorded (safe beside a running bot)."""
    if not db_path.exists():  # noqa: ASYNC240 - one stat before any I/O starts
        raise KeyError_(f"there is no database at {db_path} to copy")
    vault = Vault(resolve_master_key(data_dir, db_path, env_key))
    db = await Database.open(db_path, migrate=False)
    try:
        if await db.user_version() != SCHEMA_VERSION:
            raise KeyError_("the database schema is not this program's; start the bot once "
                            "to bring it up to date, then copy it")
        stored = await db.get_meta(KEY_CHECK)
        if stored is None or not vault.matches(stored):
            raise KeyError_("the master key does not match this database (wrong "
                            "KK_MASTER_KEY or master.key?); nothing was copied")
    except BaseException:
        await db.close()
        raise
    return db


def retired_keys(key_path: Path) -> list[Path]:
    """The keys earlier rotations retired, oldest first: ``master.key.<UTC time>``."""
    found = [p for p in key_path.parent.glob(key_path.name + ".*")
             if _RETIRED.fullmatch(p.name[len(key_path.name) + 1:])]
    return sorted(found, key=lambda p: p.name)


_RETIRED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}Z(\.[0-9]+)?")


def adopt_legacy_old_key(key_path: Path) -> None:
    """Rotations before retired keys had names kept the last old key as ``master.key.old``:
    it becomes a retired key like the others, named by the time ``master.key`` was written
    (the rotation that retired it), so ``forget-keys`` sees it too."""
    legacy = key_path.with_name(key_path.name + ".old")
    if not legacy.exists() or not key_path.exists():
        return
    _retire(legacy, datetime.fromtimestamp(key_path.stat().st_mtime, UTC), key_path)
    legacy.unlink()


def _retire(key_file: Path, when: datetime | None = None, key_path: Path | None = None
            ) -> None:
    """Keep ``key_file`` (the current key) as ``master.key.<UTC time>``, never
    overwriting one kept before (``os.link`` fails on an existing name), and only once
    however often an interrupted rotation is finished."""
    key_path = key_path or key_file
    current = key_file.read_bytes()
    if any(p.read_bytes() == current for p in retired_keys(key_path)):
        return
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H-%M-%SZ")
    for n in itertools.count(1):
        name = f"{key_path.name}.{stamp}" + (f".{n}" if n > 1 else "")
        with contextlib.suppress(FileExistsError):
            os.link(key_file, key_path.with_name(name))
            return


def _finish_rotation(key_path: Path) -> None:
    """Retire the old key and put the new one in place, so that at every instant (a crash
    can come between any two steps) ``master.key`` exists and a key that opens the
    database is on disk: the old one is hard-linked first, the new one then replaces
    ``master.key`` in one atomic rename."""
    pending = key_path.with_name(key_path.name + ".new")
    if key_path.exists():
        _retire(key_path)
    os.replace(pending, key_path)


def backup_key_check(backup: Path) -> bytes | None:
    """The key check value of a backup (or any copy of the database), read-only; None if
    it is not a readable database of this bot."""
    uri = backup.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (KEY_CHECK,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return bytes(row[0]) if row else None


def opens(key_file: Path, check: bytes) -> bool:
    try:
        return Vault(_decode(key_file.read_text(encoding="ascii"), str(key_file))).matches(check)
    except (KeyError_, OSError, UnicodeDecodeError):
        return False


def forget_retired(key_path: Path, keep_for: list[Path]) -> tuple[list[Path], list[Path]]:
    """Remove every retired key that opens none of the backups in ``keep_for`` (the ones
    the operator still keeps); returns (removed, kept). A backup that cannot be read
    raises :class:`KeyError_` before anything is removed."""
    checks = []
    for backup in keep_for:
        check = backup_key_check(backup) if backup.is_file() else None
        if check is None:
            raise KeyError_(f"{backup} is not a readable Asisten KK database; nothing was "
                            "removed")
        checks.append(check)
    adopt_legacy_old_key(key_path)
    removed, kept = [], []
    for key_file in retired_keys(key_path):
        if any(opens(key_file, check) for check in checks):
            kept.append(key_file)
        else:
            key_file.unlink()
            removed.append(key_file)
    return removed, kept


def describe_keys(key_path: Path) -> list[str]:
    """Which key opens which backups, from the names of the retired keys (each retired
    at the time in its name)."""
    lines, since = [], "the first start"
    for key_file in retired_keys(key_path):
        until = key_file.name[len(key_path.name) + 1:].split(".")[0]
        lines.append(f"{key_file} opens backups made from {since} until {until}")
        since = until
    lines.append(f"{key_path} opens the database and backups made from {since} on")
    return lines


async def rotate_key(db: Database, old: Vault, key_path: Path | None) -> tuple[bytes, int]:
    """Re-wrap every chat's data key (and the rate key) under a new master key in one
    transaction, then swap the key file. The rows themselves are under the chat keys and
    stay as they are; any still under the master key (from before per-chat keys) are moved
    to their chat's key first, in the same transaction (:func:`storage.chat_keys.convert_all`).

    The new key is written to ``master.key.new`` before the commit, so a crash at any point
    leaves either the old state or a key file that opens the database.
    Returns the new raw key and the number of chat keys re-wrapped.
    """
    raw = generate_master_key()
    new = Vault(raw)
    old.carry_rate_key(new)  # rate records keep counting: a rotation resets no cap
    pending = key_path.with_name(key_path.name + ".new") if key_path else None
    if pending is not None:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
        write_key_file(pending, raw)
    legacy = ChatKeys.of(db, old)

    def unit(conn: sqlite3.Connection) -> int:
        with immediate(conn):
            convert_all(conn, legacy)  # nothing may stay under the key that goes
            done = rewrap_all(conn, old, new)
            OtpRepo.reencrypt_all(conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = ?",
                         (new.check_value(), KEY_CHECK))
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (RATE_KEY, new.wrap_rate_key()))
        return done

    try:
        count = await db.run(unit)
    except BaseException:
        if pending is not None:
            with contextlib.suppress(FileNotFoundError):
                pending.unlink()
        raise
    if key_path is not None:
        _finish_rotation(key_path)
    return raw, count
