"""PostgreSQL as the store (issue 24): what only that engine needs proved. Everything the
repositories do is proved on both stores by the suites that set ``store = both_stores``
(test_storage, test_trust, test_reminders, test_e2e_basics, test_e2e_flows)."""

from __future__ import annotations

import asyncio
import threading
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


def _dead_tuples(url: str, table: str) -> list[bytes]:
    """What ``pageinspect`` finds in every line pointer of every page of ``table``: the
    tuple data of live and dead row versions alike (what a dump of the table's pages
    gives whoever reads the data directory)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        pages = conn.execute("SELECT pg_relation_size(%s) / current_setting('block_size')"
                             "::int", (table,)).fetchone()
        assert pages is not None
        found = []
        for page in range(int(pages[0])):
            for (data,) in conn.execute("SELECT t_data FROM heap_page_items(get_raw_page("
                                        "%s, %s)) WHERE t_data IS NOT NULL", (table, page)):
                found.append(bytes(data))
        return found


def _raw_pages(url: str, table: str) -> bytes:
    """Every byte of every page of ``table`` (free space included)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        pages = conn.execute("SELECT pg_relation_size(%s) / current_setting('block_size')"
                             "::int", (table,)).fetchone()
        assert pages is not None
        out = b""
        for page in range(int(pages[0])):
            row = conn.execute("SELECT get_raw_page(%s, %s)", (table, page)).fetchone()
            assert row is not None
            out += bytes(row[0])
        return out


async def test_on_postgres_an_erased_chats_lingering_rows_need_its_destroyed_key(
        pg_db_url: str, tmp_path: Path) -> None:
    """What docs/security.md claims for PostgreSQL (issue 24 item 5). The erase deletes the
    chat's rows and its data key in one transaction and vacuums: no live row, no dead tuple
    of the key or the rows is left in the pages, and ``chat_keys`` is rewritten, so the
    key's bytes are not in its free space either (those of the rows may be: they need
    the key). Copies that linger elsewhere (WAL
    segments, replicas, base backups: here, the bytes read before the erase) are ciphertext
    under the chat's key: neither the master key nor any key the database still holds opens
    them; only a copy of the wrapped key from that same time, with the master key of that
    time, does; after a rotation, not even that with the new master key. Another chat's
    data is untouched."""
    from storage.chat_keys import ChatKeys, unwrap
    from storage.crypto import VaultError
    from storage.keys import check_key, rotate_key
    from storage.otp_repo import Keys, OtpRepo

    db = await PgDatabase.open_url(pg_db_url)
    db.vacuum_every = db.rewrite_every = 0.0  # the background vacuum at once, not coalesced
    try:
        old = await check_key(db, Vault(generate_master_key()))
        repo, otp = AccountsRepo(db, old), OtpRepo(db, old)
        await repo.add(6, new(NIK_A, "Other"), max_accounts=3, now=1.0)
        await repo.add(5, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)  # the last key
        keys = Keys(old.chat_key(5), old.participant_key(NIK_A), old.phone_key("+62811"))
        await otp.put(5, purpose="add", keys=keys, code="123456",
                      payload={"value": NIK_A}, now=1.0, ttl=300)
        lingering = await query_one(db, "SELECT slot, nik_ct, name_ct FROM accounts "
                                    "WHERE chat_id = 5")
        payload = await query_one(db, "SELECT payload_ct FROM challenges WHERE chat_id = 5")
        wrapped = await query_one(db, "SELECT wrapped FROM chat_keys WHERE chat_id = 5")
        assert lingering is not None and payload is not None and wrapped is not None
        nik_ct, name_ct = bytes(lingering["nik_ct"]), bytes(lingering["name_ct"])
        aad = Vault.aad("accounts", 5, lingering["slot"], "nik")
        payload_ct = bytes(payload["payload_ct"])
        payload_aad = Vault.aad("challenges", 5, "live", "payload")
        assert ChatKeys.of(db, old).cached(5)

        assert await db.erase_chat(5) is True
        await asyncio.wait_for(db.wait_clean(), 60)
        assert await query(db, "SELECT 1 FROM accounts WHERE chat_id = 5") == []
        assert await query(db, "SELECT 1 FROM chat_keys WHERE chat_id = 5") == [], \
            "the erase deleted the chat's key"
        assert not ChatKeys.of(db, old).cached(5), "no copy of it is left in the process"
        for table, secret in (("chat_keys", bytes(wrapped["wrapped"])),
                              ("accounts", nik_ct), ("challenges", payload_ct)):
            assert not [d for d in _dead_tuples(pg_db_url, table) if secret[17:] in d], \
                f"{table}: a dead tuple of the erased chat is still in the pages"
        assert bytes(wrapped["wrapped"])[17:] not in _raw_pages(pg_db_url, "chat_keys"), \
            "the key's bytes are not even in the free space of the table's pages"
        # What lingers elsewhere opens with no key the database still holds ...
        held = [old] + [Vault(unwrap(old, int(r["chat_id"]), r["wrapped"]))
                        for r in await query(db, "SELECT chat_id, wrapped FROM chat_keys")]
        for key in held:
            for blob, where in ((nik_ct, aad), (payload_ct, payload_aad)):
                with pytest.raises(VaultError):
                    key.decrypt(blob, where)
        # ... only with a lingering copy of its wrapped key and the master key of the time
        then = Vault(unwrap(old, 5, bytes(wrapped["wrapped"])))
        assert then.decrypt(nik_ct, aad) == NIK_A
        assert then.decrypt(name_ct, Vault.aad("accounts", 5, lingering["slot"], "name"))
        # Another chat's data is untouched, and survives the rotation that ends even that
        assert [a.label for a in await repo.list(6)] == ["Other"]
        raw, count = await rotate_key(db, old, tmp_path / "master.key")
        assert count == 1, "one chat key re-wrapped, no row re-encrypted"
        with pytest.raises(VaultError):
            unwrap(Vault(raw), 5, bytes(wrapped["wrapped"]))
        assert [a.label for a in await AccountsRepo(db, Vault(raw)).list(6)] == ["Other"]
    finally:
        await db.close()


async def test_on_postgres_a_removed_card_is_vacuumed_off_the_units_thread(
        pg_db_url: str) -> None:
    """/hapus_kk (any deletion, not only an erase): the dead tuple goes with the background
    vacuum, which runs on a connection of its own, never the units' one."""
    db = await PgDatabase.open_url(pg_db_url)
    db.vacuum_every = 0.0
    try:
        repo = AccountsRepo(db, Vault(generate_master_key()))
        await repo.add(8, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
        row = await query_one(db, "SELECT slot, name_ct FROM accounts WHERE chat_id = 8")
        assert row is not None
        name_ct = bytes(row["name_ct"])
        seen: list[str] = []
        vacuum_now = db._vacuum_now

        def watched(rewrite: bool) -> bool:
            seen.append(threading.current_thread().name)
            return vacuum_now(rewrite)

        db._vacuum_now = watched  # type: ignore[method-assign]
        assert await repo.remove(8, row["slot"]) is True
        await asyncio.wait_for(db.wait_clean(), 60)
        assert seen and "kk-db" not in seen, \
            "a deletion leads to a vacuum, not on the units' thread"
        assert not [d for d in _dead_tuples(pg_db_url, "accounts") if name_ct[17:] in d], \
            "the removed card's dead tuple is gone from the pages"
        assert await query(db, "SELECT 1 FROM accounts WHERE chat_id = 8") == []
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
    assert "re-wrapped 0 chat key(s)" in done.stderr


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
