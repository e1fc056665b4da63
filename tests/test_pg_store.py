"""PostgreSQL as the store (issue 24): what only that engine needs proved. Everything the
repositories do is proved on both stores by the suites that set ``store = both_stores``
(test_storage, test_trust, test_reminders, test_e2e_basics, test_e2e_flows)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.config import SettingsError, load_settings
from storage.accounts_repo import AccountsRepo, CacheFullError
from storage.crypto import Vault, generate_master_key
from storage.db import SCHEMA_VERSION, DatabaseError, immediate
from storage.keys import encode_key
from storage.pg import ConnectionLost, PgDatabase, open_database, redact, translate
from tests.conftest import NIK_A, new
from tests.dbsql import execute, query, query_one


def test_statements_are_translated_outside_literals_only() -> None:
    assert translate("SELECT 1 FROM t WHERE a = ? AND b = '?' AND c LIKE 'x%'") == (
        "SELECT 1 FROM t WHERE a = %s AND b = '?' AND c LIKE 'x%%'")
    assert translate("BEGIN IMMEDIATE") == "BEGIN ISOLATION LEVEL SERIALIZABLE"
    with pytest.raises(DatabaseError, match="PRAGMA"):
        translate("PRAGMA user_version")


def test_the_setting_takes_only_a_postgresql_url_and_never_shows_its_password() -> None:
    with pytest.raises(SettingsError, match="KK_DATABASE_URL"):
        load_settings(env_file=None, kk_database_url="mysql://u:p@h/db")
    settings = load_settings(env_file=None, kk_database_url="postgresql://u:hush@h/db")
    assert settings.database_url == "postgresql://u:hush@h/db"
    assert "hush" not in repr(settings)
    assert redact("postgresql://u:hush@h:5432/db") == "postgresql://u:***@h:5432/db"


async def test_the_schema_version_is_a_meta_row_and_a_newer_one_is_refused(
        pg_db_url: str, tmp_path: Path) -> None:
    db = await open_database(pg_db_url, tmp_path / "unused.sqlite3")
    assert isinstance(db, PgDatabase)
    assert await db.user_version() == SCHEMA_VERSION
    await execute(db, ("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                       (str(SCHEMA_VERSION + 1).encode(),)))
    await db.close()
    assert not (tmp_path / "unused.sqlite3").exists(), "PostgreSQL chosen: no SQLite file"
    with pytest.raises(DatabaseError, match="newer"):
        await PgDatabase.open_url(pg_db_url)


async def test_two_instances_starting_together_migrate_once(pg_db_url: str) -> None:
    first, second = await asyncio.gather(PgDatabase.open_url(pg_db_url),
                                         PgDatabase.open_url(pg_db_url))
    try:
        row = await query_one(first, "SELECT value FROM meta WHERE key = 'schema_version'")
        assert row is not None and bytes(row["value"]) == str(SCHEMA_VERSION).encode()
        assert await second.user_version() == SCHEMA_VERSION
    finally:
        await first.close()
        await second.close()


async def test_chat_ids_past_two_to_the_31_and_bytes_round_trip(pg_db_url: str) -> None:
    db = await PgDatabase.open_url(pg_db_url)
    try:
        vault = Vault(generate_master_key())
        repo = AccountsRepo(db, vault)
        chat = -1_001_234_567_890  # a supergroup id
        await repo.add(chat, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
        [account] = await repo.list(chat)
        assert account.nik == NIK_A and account.label == "Ibu"
        row = await query_one(db, "SELECT nik_ct FROM accounts WHERE chat_id = ?", chat)
        assert row is not None and type(row["nik_ct"]) is bytes
    finally:
        await db.close()


async def test_a_cache_race_between_two_instances_never_passes_the_bound(
        pg_db_url: str) -> None:
    """Two connections (two instances) add to one chat at once: SERIALIZABLE plus the
    re-run on 40001 keep the three-slot bound and the eviction atomic."""
    vault = Vault(generate_master_key())
    dbs = [await PgDatabase.open_url(pg_db_url) for _ in range(2)]
    try:
        repos = [AccountsRepo(db, vault) for db in dbs]
        niks = [NIK_A[:-3] + f"{i:03d}" for i in range(12)]
        results = await asyncio.gather(
            *(repos[i % 2].add(7, new(nik, f"K{i}"), max_accounts=3, now=float(i))
              for i, nik in enumerate(niks)), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) == 3
        assert all(isinstance(r, CacheFullError) for r in results
                   if isinstance(r, BaseException)), results
        rows = await query(dbs[0], "SELECT slot FROM accounts WHERE chat_id = 7")
        assert len(rows) == 3
        active = await query(dbs[0], "SELECT slot FROM accounts WHERE chat_id = 7 AND "
                                     "active = 1")
        assert len(active) == 1
    finally:
        for db in dbs:
            await db.close()


def test_the_throwaway_database_is_postgresql(pg_db_url: str) -> None:
    with psycopg.connect(pg_db_url) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None and str(row[0]).startswith("PostgreSQL")


async def test_on_postgres_an_erased_chats_old_rows_are_unreadable_after_a_rotation(
        pg_db_url: str, tmp_path: Path) -> None:
    """What docs/security.md claims for PostgreSQL: the erase leaves no live row; the old
    row versions that may linger (dead tuples, WAL, replicas, backups: here, the bytes
    read before the erase) are ciphertext that the master key still opens, until a
    rotation re-encrypts the live rows under a new key and the old key is forgotten."""
    from storage.crypto import VaultError
    from storage.keys import rotate_key

    db = await PgDatabase.open_url(pg_db_url)
    try:
        old = Vault(generate_master_key())
        repo = AccountsRepo(db, old)
        await repo.add(5, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
        await repo.add(6, new(NIK_A, "Other"), max_accounts=3, now=1.0)
        lingering = await query_one(db, "SELECT slot, nik_ct FROM accounts WHERE chat_id = 5")
        assert lingering is not None
        assert await db.erase_chat(5) is True
        assert await query(db, "SELECT 1 FROM accounts WHERE chat_id = 5") == []
        aad = Vault.aad("accounts", 5, lingering["slot"], "nik")
        assert old.decrypt(bytes(lingering["nik_ct"]), aad) == NIK_A  # what lingers, opens
        from storage.keys import check_key
        await check_key(db, old)
        raw, count = await rotate_key(db, old, tmp_path / "master.key")
        assert count == 1
        with pytest.raises(VaultError):
            Vault(raw).decrypt(bytes(lingering["nik_ct"]), aad)
    finally:
        await db.close()


async def test_rotate_key_is_refused_while_a_bot_serves_from_the_database(
        pg_db_url: str, tmp_path: Path) -> None:
    """On SQLite the data-directory lock keeps a rotation from running beside the bot; on
    PostgreSQL the leader lock does (a bot elsewhere would go on with the old key)."""
    from bot.leader import LOCK_KEY
    from tests.process import acli

    key = encode_key(generate_master_key())
    with psycopg.connect(pg_db_url, autocommit=True) as leader:
        leader.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        refused = await acli(tmp_path, "rotate-key", KK_DATABASE_URL=pg_db_url,
                             KK_MASTER_KEY=key)
    assert refused.returncode != 0 and "running" in refused.stderr
    done = await acli(tmp_path, "rotate-key", KK_DATABASE_URL=pg_db_url, KK_MASTER_KEY=key)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 0 account(s)" in done.stderr


def _terminate(url: str, pid: int) -> None:
    """What a server restart or an operator's pg_terminate_backend does to one session
    (waiting until it has ended)."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


async def test_a_dropped_connection_is_reopened_and_a_unit_it_broke_is_reported(
        pg_db_url: str) -> None:
    db = await PgDatabase.open_url(pg_db_url)
    try:
        repo = AccountsRepo(db, Vault(generate_master_key()))
        await repo.add(7, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
        first = await query_one(db, "SELECT pg_backend_pid() AS pid")
        assert first is not None
        _terminate(pg_db_url, int(first["pid"]))
        # between units: the next one meets the break at its first statement, so it
        # certainly did nothing; it runs on a new connection, and so do the ones after it
        [account] = await repo.list(7)
        assert account.label == "Ibu"
        second = await query_one(db, "SELECT pg_backend_pid() AS pid")
        assert second is not None and second["pid"] != first["pid"]
        await repo.add(7, new(NIK_A[:-1] + "9", "Ayah"), max_accounts=3, now=2.0)
        assert len(await repo.list(7)) == 2

        runs: list[int] = []

        def broken_midway(conn: Any) -> None:
            """A write sent, then the session ends before the COMMIT: it may or may not
            have committed as far as the caller can know, so it is not run again."""
            runs.append(1)
            with immediate(conn):
                conn.execute("INSERT INTO meta (key, value) VALUES ('midway', ?)", (b"1",))
                if len(runs) == 1:
                    pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
                    _terminate(pg_db_url, int(pid))
                conn.execute("UPDATE meta SET value = ? WHERE key = 'midway'", (b"2",))
        with pytest.raises(ConnectionLost, match="may or may not have committed"):
            await db.run(broken_midway)
        assert runs == [1] and await db.get_meta("midway") is None, "rolled back, not re-run"
        assert len(await repo.list(7)) == 2, "the next unit reopened the connection"
    finally:
        await db.close()
