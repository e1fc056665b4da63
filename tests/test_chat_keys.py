"""Per-chat data keys (issue 24 item 5, docs/decisions.md 52), on SQLite and PostgreSQL.

An erase deletes the chat's key with its rows: ciphertexts of the chat captured before it
(what dead tuples, WAL segments, replicas and backups keep) open with no key the database
still holds. Another chat is untouched; two chats' keys differ; rows written under the
master key by the release before (tests/fixtures/legacy_v7.sqlite3) are converted once."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.otp import _pending_aad
from bot.services import Services
from storage import chat_keys
from storage.accounts_repo import AccountsRepo, DuplicateAccountError
from storage.chat_keys import CONVERTED, ChatKeys, convert_legacy, is_master, unwrap
from storage.copystore import to_postgres
from storage.crypto import Vault, VaultError
from storage.db import Database
from storage.keys import encode_key, rotate_key, write_key_file
from tests.conftest import NIK_A, NIK_B, ServicesFactory, both_stores, fill_every_table, new
from tests.dbsql import execute, query, query_one

store = both_stores

ACCOUNT_CT = ("nik", "card", "name", "phone", "label", "status")
FIXTURE = Path(__file__).parent / "fixtures" / "legacy_v7.sqlite3"
#: The master key the fixture was written under (tests/fixtures/make_legacy_v7.py).
FIXTURE_KEY = bytes(range(32))
FIXTURE_NOW = 1_780_000_000.0


def keys_of(services: Services) -> ChatKeys:
    return services.accounts.repo.keys


async def held_keys(services: Services) -> list[Vault]:
    """Every key the database can still give its master-key holder: the master key and
    every chat key it keeps."""
    master = services.vault
    return [master, *(Vault(unwrap(master, int(r["chat_id"]), r["wrapped"]))
                      for r in await query(services.db, "SELECT chat_id, wrapped FROM chat_keys"))]


async def ciphertexts(services: Services, chat: int) -> list[tuple[bytes, bytes]]:
    """Every ciphertext of the chat with its associated data: account fields, the
    challenge payload, the sealed step in its chat data."""
    found: list[tuple[bytes, bytes]] = []
    for row in await query(services.db, "SELECT * FROM accounts WHERE chat_id = ?", chat):
        for field in ACCOUNT_CT:
            if row[f"{field}_ct"] is not None:
                found.append((bytes(row[f"{field}_ct"]),
                              Vault.aad("accounts", chat, row["slot"], field)))
    for row in await query(services.db, "SELECT payload_ct FROM challenges WHERE chat_id = ?",
                           chat):
        found.append((bytes(row["payload_ct"]), Vault.aad("challenges", chat, "live",
                                                          "payload")))
    row = await query_one(services.db, "SELECT data FROM chat_data WHERE chat_id = ?", chat)
    sealed = json.loads(row["data"]).get("pending") if row is not None else None
    if sealed is not None:
        found.append((base64.b64decode(sealed), _pending_aad(chat)))
    return found


async def fill_with_step(services: Services, chat: int) -> None:
    await fill_every_table(services, chat)
    await services.accounts.save_status(chat, (await services.accounts.list(chat))[0].slot,
                                        {"status_text": "AKTIF"})
    from bot.enrolment import PendingStep, Purpose
    from bot.identity import IdKind
    from storage.persistence import SqlitePersistence
    data: dict[str, Any] = {}
    await services.enrolment.keep(data, chat, PendingStep(Purpose.ADD, IdKind.NIK, NIK_A))
    await SqlitePersistence(services.db).update_chat_data(chat, data)


async def test_after_an_erase_the_chats_old_ciphertexts_open_with_no_key_left(
        services: Services) -> None:
    """(a) and (c): captured before the erase, every ciphertext of the chat (account
    fields, challenge payload, sealed step) opened with its chat's key; after it, neither
    the master key nor any key the database still holds opens one. Chat 2 reads as
    before; the process keeps no copy of chat 1's key."""
    await fill_with_step(services, 1)
    await fill_with_step(services, 2)
    captured = await ciphertexts(services, 1)
    assert len(captured) == 2 * 6 + 1 + 1, "two accounts (with statuses), a code, a step"
    chat_key = await keys_of(services).get(services.db, 1)
    assert chat_key is not None and keys_of(services).cached(1)
    assert [chat_key.decrypt(blob, aad) for blob, aad in captured]  # all open before
    for blob, aad in captured:
        with pytest.raises(VaultError):
            services.vault.decrypt(blob, aad)  # never the master key alone
    before_2 = [(a.nik, a.label, a.status) for a in await services.accounts.list(2)]

    await services.db.erase_chat(1)
    assert await query(services.db, "SELECT 1 FROM chat_keys WHERE chat_id = 1") == []
    assert not keys_of(services).cached(1), "the erase dropped the cached key"
    held = await held_keys(services)
    assert len(held) == 2, "the master key and chat 2's"
    for blob, aad in captured:
        for key in held:
            with pytest.raises(VaultError):
                key.decrypt(blob, aad)
    assert await services.accounts.list(1) == []
    assert [(a.nik, a.label, a.status) for a in await services.accounts.list(2)] == before_2
    assert (await services.otp.challenge(2)) is not None
    assert await services.accounts.find_by_nik(2, NIK_A) is not None


async def test_the_retention_erase_deletes_the_chats_key_too(services: Services) -> None:
    await fill_with_step(services, 1)
    await fill_with_step(services, 2)
    captured = await ciphertexts(services, 1)
    await execute(services.db, "UPDATE chat_activity SET day = '2020-01-01', "
                  "warned_on = '2020-01-01' WHERE chat_id = 1")
    assert await services.retention.repo.erase_if_due(1, "2020-01-02", "2020-01-02") \
        is not None
    assert await query(services.db, "SELECT 1 FROM chat_keys WHERE chat_id = 1") == []
    assert not keys_of(services).cached(1)
    for blob, aad in captured:
        for key in await held_keys(services):
            with pytest.raises(VaultError):
                key.decrypt(blob, aad)
    assert len(await services.accounts.list(2)) == 2


async def test_removing_one_account_keeps_the_chats_key(services: Services) -> None:
    await fill_with_step(services, 1)
    first, second = await services.accounts.list(1)
    assert await services.accounts.repo.remove(1, first.slot)
    assert [a.label for a in await services.accounts.list(1)] == [second.label]
    assert await query(services.db, "SELECT 1 FROM chat_keys WHERE chat_id = 1") != []


async def test_two_chats_have_different_keys_and_a_row_copied_across_does_not_open(
        services: Services) -> None:
    """(e) The same NIK in two chats: different keys (and key ids), different blind
    indexes; chat 1's row moved into chat 2 (its bytes, its slot) does not decrypt there,
    and chat 2's key does not open chat 1's ciphertext even with chat 1's own AAD."""
    one, _ = await services.accounts.repo.add(1, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    await services.accounts.repo.add(2, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    k1, k2 = [await keys_of(services).get(services.db, c) for c in (1, 2)]
    assert k1 is not None and k2 is not None and k1.key_id != k2.key_id
    wrapped = [bytes(r["wrapped"]) for r in await query(
        services.db, "SELECT wrapped FROM chat_keys ORDER BY chat_id")]
    assert unwrap(services.vault, 1, wrapped[0]) != unwrap(services.vault, 2, wrapped[1])
    with pytest.raises(VaultError):  # a key row moved to another chat does not unwrap
        unwrap(services.vault, 2, wrapped[0])
    rows = {r["chat_id"]: r for r in await query(
        services.db, "SELECT chat_id, nik_index, nik_ct FROM accounts")}
    assert rows[1]["nik_index"] != rows[2]["nik_index"]
    assert bytes(rows[1]["nik_index"]) == k1.blind_index(1, NIK_A), "keyed by the chat's key"
    assert bytes(rows[1]["nik_index"]) != services.vault.blind_index(1, NIK_A)
    with pytest.raises(VaultError):
        k2.decrypt(bytes(rows[1]["nik_ct"]), Vault.aad("accounts", 1, one.slot, "nik"))
    await execute(services.db, "DELETE FROM accounts WHERE chat_id = 2",
                  "UPDATE accounts SET chat_id = 2 WHERE chat_id = 1")
    with pytest.raises(VaultError):
        await services.accounts.list(2)


async def test_a_rotation_rewraps_the_chat_keys_and_leaves_the_rows(
        services_factory: ServicesFactory, data_dir: Path) -> None:
    """The rotation re-wraps each chat key under the new master key and rewrites no row;
    the old master key no longer unwraps any of them; everything reads after a restart."""
    svc: Services = await services_factory()
    await fill_with_step(svc, 1)
    await fill_with_step(svc, 2)
    rows = await query(svc.db, "SELECT chat_id, slot, nik_ct, status_ct FROM accounts "
                       "ORDER BY chat_id, slot")
    old = svc.vault
    raw, count = await rotate_key(svc.db, old, data_dir / "master.key")
    assert count == 2
    new_rows = await query(svc.db, "SELECT chat_id, slot, nik_ct, status_ct FROM accounts "
                           "ORDER BY chat_id, slot")
    assert [tuple(bytes(v) if isinstance(v, bytes | memoryview) else v for v in r)
            for r in new_rows] == [
        tuple(bytes(v) if isinstance(v, bytes | memoryview) else v for v in r) for r in rows]
    for row in await query(svc.db, "SELECT chat_id, wrapped FROM chat_keys"):
        with pytest.raises(VaultError):
            unwrap(old, int(row["chat_id"]), row["wrapped"])
        unwrap(Vault(raw), int(row["chat_id"]), row["wrapped"])
    await svc.close()
    reopened: Services = await services_factory()
    assert [a.label for a in await reopened.accounts.list(2)] == ["Ibu 2", "Ayah 2"]
    assert await reopened.accounts.find_by_nik(1, NIK_B) is not None


# -- the rows of the release before per-chat keys ------------------------------------------

def _legacy_data_dir(data_dir: Path) -> None:
    shutil.copyfile(FIXTURE, data_dir / "kk.sqlite3")
    (data_dir / "kk.sqlite3").chmod(0o600)
    write_key_file(data_dir / "master.key", FIXTURE_KEY)


async def _assert_converted(svc: Services) -> None:
    """No ciphertext of any chat table is under the master key; all of them read."""
    master = svc.vault
    assert master.key_id == Vault(FIXTURE_KEY).key_id
    for chat in (101, 102, 103):
        found = await ciphertexts(svc, chat)
        assert found, chat
        assert not [blob for blob, _ in found if is_master(master, blob)], chat
        key = await keys_of(svc).get(svc.db, chat)
        assert key is not None
        for blob, aad in found:
            key.decrypt(blob, aad)
    ibu, ayah = await svc.accounts.list(101)
    assert (ibu.label, ibu.nik, ibu.status, ayah.label) == (
        "Ibu", "3174014506900011", {"status_text": "AKTIF"}, "Ayah")
    assert (await svc.accounts.repo.find_by_nik(101, "3174014506900029") or ibu).label == "Ayah"
    assert (await svc.accounts.repo.find_by_card(102, "0009876543210") or ibu).label == "Nenek"
    with pytest.raises(DuplicateAccountError):  # the blind index, recomputed, still finds it
        await svc.accounts.repo.add(101, new("3174014506900011", "lagi"), max_accounts=3,
                                    now=FIXTURE_NOW)
    challenge = await svc.otp.challenge(101)
    assert challenge is not None and challenge.payload["value"] == "3174014506900037"
    row = await query_one(svc.db, "SELECT data FROM chat_data WHERE chat_id = 103")
    assert row is not None
    step = await svc.enrolment.kept(json.loads(row["data"]), 103)
    assert step is not None and step.value == "3174014506900045"
    assert await convert_legacy(svc.db, master) == 0, "once"


@pytest.mark.parametrize("store", ["sqlite"])
async def test_rows_of_the_release_before_are_converted_once_at_start(
        services_factory: ServicesFactory, data_dir: Path, clock: Any) -> None:
    """(d) A database written by the release before (every ciphertext under the master
    key; tests/fixtures/legacy_v7.sqlite3) opens, and at start every chat moves to its
    own key, the NIK blind index recomputed under it."""
    _legacy_data_dir(data_dir)
    clock.now = FIXTURE_NOW + 60  # the sealed step opens for 30 minutes
    svc: Services = await services_factory()
    await _assert_converted(svc)


@pytest.mark.parametrize("store", ["sqlite"])
async def test_a_converted_database_is_not_scanned_again_at_start(
        services_factory: ServicesFactory, data_dir: Path, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass that finds nothing left under the master key says so in ``meta``; later
    starts skip the scan, which read every row of the chat tables (O(chats) at every
    start: 1.5 s and 150 MB at 100 000 chats)."""
    _legacy_data_dir(data_dir)
    clock.now = FIXTURE_NOW + 60
    svc: Services = await services_factory()
    assert await svc.db.get_meta(CONVERTED) == b"1"
    await svc.close()

    def scan(*args: object) -> list[int]:
        raise AssertionError("a converted database was scanned again")

    monkeypatch.setattr(chat_keys, "_legacy_chats", scan)
    again: Services = await services_factory()
    await _assert_converted(again)

@pytest.mark.parametrize("store", ["postgres"])
async def test_rows_of_the_release_before_are_converted_on_postgres_too(
        services_factory: ServicesFactory, data_dir: Path, clock: Any, tmp_path: Path,
        pg_db_url: str) -> None:
    """The same database moved to PostgreSQL (copy-store, bytes unchanged) before it was
    ever converted: the start converts it there."""
    source = tmp_path / "legacy.sqlite3"
    shutil.copyfile(FIXTURE, source)
    db = await Database.open(source)  # schema 8, rows untouched: nothing converts them
    await db.close()
    await to_postgres(source, pg_db_url, FIXTURE_KEY)
    write_key_file(data_dir / "master.key", FIXTURE_KEY)
    clock.now = FIXTURE_NOW + 60
    svc: Services = await services_factory()
    await _assert_converted(svc)


@pytest.mark.parametrize("store", ["sqlite"])
async def test_a_conversion_stopped_midway_leaves_a_database_that_opens(
        services_factory: ServicesFactory, data_dir: Path, clock: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch per transaction: stopped after the first chat, the database reads (each
    ciphertext by the key its header names) and the next start finishes the job."""
    import storage.chat_keys as chat_keys

    _legacy_data_dir(data_dir)
    clock.now = FIXTURE_NOW + 60
    db = await Database.open(data_dir / "kk.sqlite3")
    master = Vault(FIXTURE_KEY)
    real = chat_keys.convert_batch
    calls = 0

    def dying(*args: Any) -> list[int]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("killed")
        return real(*args)

    monkeypatch.setattr(chat_keys, "convert_batch", dying)
    with pytest.raises(RuntimeError):
        await convert_legacy(db, master, batch=1)
    monkeypatch.undo()
    mixed = [bytes(r["nik_ct"]) for r in await query(db, "SELECT nik_ct FROM accounts")]
    assert any(is_master(master, b) for b in mixed), "chat 102 is not converted yet"
    assert not all(is_master(master, b) for b in mixed), "chat 101 is"
    repo = AccountsRepo(db, master)
    assert [a.label for a in await repo.list(101)] == ["Ibu", "Ayah"]
    assert [a.label for a in await repo.list(102)] == ["Nenek"]
    await db.close()
    finished: Services = await services_factory()  # converts the rest at start
    await _assert_converted(finished)


@pytest.mark.parametrize("store", ["sqlite"])
async def test_a_rotation_of_a_database_never_converted_carries_every_row(
        services_factory: ServicesFactory, data_dir: Path, clock: Any) -> None:
    """A rotation run on rows still under the master key (never started since the
    upgrade) moves them to their chats' keys in its transaction: nothing is left under
    the key that goes."""
    _legacy_data_dir(data_dir)
    clock.now = FIXTURE_NOW + 60
    db = await Database.open(data_dir / "kk.sqlite3")  # migrated, not converted
    from storage.keys import check_key
    await rotate_key(db, await check_key(db, Vault(FIXTURE_KEY)), data_dir / "master.key")
    await db.close()
    svc: Services = await services_factory()
    assert svc.vault.key_id != Vault(FIXTURE_KEY).key_id
    ibu, ayah = await svc.accounts.list(101)
    assert (ibu.nik, ayah.label) == ("3174014506900011", "Ayah")
    assert (await svc.accounts.repo.find_by_card(102, "0009876543210") or ibu).label == "Nenek"
    row = await query_one(svc.db, "SELECT data FROM chat_data WHERE chat_id = 103")
    assert row is not None and await svc.enrolment.kept(json.loads(row["data"]), 103)


def test_the_fixture_really_holds_master_key_ciphertexts() -> None:
    import sqlite3

    conn = sqlite3.connect(f"{FIXTURE.resolve().as_uri()}?mode=ro", uri=True)
    try:
        blobs = [bytes(b) for (b,) in conn.execute("SELECT nik_ct FROM accounts")]
        blobs += [bytes(b) for (b,) in conn.execute("SELECT payload_ct FROM challenges")]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    master = Vault(FIXTURE_KEY)
    assert version == 7 and len(blobs) == 4 and all(is_master(master, b) for b in blobs)
    assert encode_key(FIXTURE_KEY)


async def test_a_chat_that_holds_nothing_any_more_loses_its_key_at_housekeeping(
        services: Services, clock: Any) -> None:
    """A stranger's code expired and was purged: the chat's key (and so its chat id) is not
    kept for ever; a chat with an account keeps its key."""
    from storage.otp_repo import Keys

    vault = services.vault
    keys = Keys(vault.chat_key(9), vault.participant_key(NIK_A), vault.phone_key("+62811"))
    await services.otp.repo.put(9, purpose="add", keys=keys, code="123456",
                                payload={"value": NIK_A}, now=clock(), ttl=300)
    await services.accounts.repo.add(1, new(NIK_B, "Ibu"), max_accounts=3, now=clock())
    await services.otp.purge()
    assert {r["chat_id"] for r in await query(services.db, "SELECT chat_id FROM chat_keys")} \
        == {1, 9}, "the code still lives"
    clock.advance(3600)
    await services.otp.purge()
    assert [r["chat_id"] for r in await query(services.db, "SELECT chat_id FROM chat_keys")] \
        == [1]
    assert not keys_of(services).cached(9)
    assert [a.label for a in await services.accounts.list(1)] == ["Ibu"]
