"""Storage: the vault, the account cache, OTP challenges, persistence, keys, erase."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from bot.services import Services
from storage.accounts_repo import AccountsRepo, CacheFullError, DuplicateAccountError
from storage.consent_repo import ConsentRepo
from storage.crypto import Vault, VaultError, generate_master_key
from storage.db import CHAT_TABLES, SCHEMA_VERSION, Database, DatabaseError
from storage.keys import KeyError_, check_key, resolve_master_key, retired_keys, rotate_key
from storage.otp_repo import Caps, Keys, OtpRepo, SendBlock, VerifyOutcome
from storage.persistence import SqlitePersistence
from tests.conftest import (
    NIK_A,
    NIK_B,
    NIK_C,
    NIK_D,
    PHONE,
    ServicesFactory,
    assert_a_row_in_every_table,
    both_stores,
    chat_rows,
    fill_every_table,
    new,
)
from tests.dbsql import execute, query, query_one, total_changes

store = both_stores  # every test here runs on SQLite and on PostgreSQL, except:
#: Properties of SQLite's files (their bytes, WAL, backup API, modes): PostgreSQL's
#: counterparts are in tests/test_pg_store.py.
SQLITE_FILES = pytest.mark.parametrize("store", ["sqlite"])

NAME = "SITI RAHMAWATI"


# -- vault ------------------------------------------------------------------------------

def test_vault_round_trip_and_fresh_nonce() -> None:
    vault = Vault(generate_master_key())
    aad = Vault.aad("accounts", 1, "slot", "nik")
    one, two = vault.encrypt(NIK_A, aad), vault.encrypt(NIK_A, aad)
    assert one != two, "a fresh nonce per write"
    assert vault.decrypt(one, aad) == NIK_A
    assert NIK_A.encode() not in one


@pytest.mark.parametrize("other", [
    ("accounts", 2, "slot", "nik"),  # another chat
    ("accounts", 1, "other", "nik"),  # another row
    ("accounts", 1, "slot", "name"),  # another field
    ("challenges", 1, "slot", "nik"),  # another table
])
def test_a_ciphertext_moved_elsewhere_fails_clearly(other: tuple[str, int, str, str]) -> None:
    vault = Vault(generate_master_key())
    blob = vault.encrypt(NIK_A, Vault.aad("accounts", 1, "slot", "nik"))
    with pytest.raises(VaultError, match="does not belong here"):
        vault.decrypt(blob, Vault.aad(*other))


def test_tampered_or_foreign_ciphertexts_fail_clearly() -> None:
    vault = Vault(generate_master_key())
    aad = Vault.aad("accounts", 1, "s", "nik")
    blob = bytearray(vault.encrypt(NIK_A, aad))
    blob[-1] ^= 1
    with pytest.raises(VaultError):
        vault.decrypt(bytes(blob), aad)
    with pytest.raises(VaultError, match="another key"):
        Vault(generate_master_key()).decrypt(vault.encrypt(NIK_A, aad), aad)
    with pytest.raises(VaultError, match="format"):
        vault.decrypt(b"\x02" + bytes(40), aad)


def test_blind_index_is_per_chat_and_deterministic() -> None:
    vault = Vault(generate_master_key())
    assert vault.blind_index(1, NIK_A) == vault.blind_index(1, NIK_A)
    assert vault.blind_index(1, NIK_A) != vault.blind_index(2, NIK_A)
    assert vault.blind_index(1, NIK_A) != vault.blind_index(1, NIK_B)


# -- accounts ---------------------------------------------------------------------------

async def open_repo(tmp_path: Path) -> tuple[Database, AccountsRepo, Vault]:
    db = await Database.open(tmp_path / "kk.sqlite3")
    vault = Vault(generate_master_key())
    return db, AccountsRepo(db, vault), vault


async def test_add_evicts_in_the_same_transaction_and_never_exceeds_the_bound(tmp_path: Path
                                                                               ) -> None:
    db, repo, _ = await open_repo(tmp_path)
    try:
        slots = []
        for i, nik in enumerate((NIK_A, NIK_B, NIK_C)):
            account, evicted = await repo.add(7, new(nik), max_accounts=3, now=100.0 + i)
            slots.append(account.slot)
            assert evicted is None
        with pytest.raises(CacheFullError):
            await repo.add(7, new(NIK_D), max_accounts=3, now=200.0)
        with pytest.raises(CacheFullError):
            await repo.add(7, new(NIK_D), max_accounts=3, now=200.0, evict_slot="missing")
        assert len(await repo.list(7)) == 3
        account, evicted = await repo.add(7, new(NIK_D), max_accounts=3, now=201.0,
                                          evict_slot=slots[0])
        assert evicted == slots[0]
        assert [a.nik for a in await repo.list(7)] == [NIK_B, NIK_C, NIK_D]
        assert [a.active for a in await repo.list(7)] == [False, False, True]
        with pytest.raises(DuplicateAccountError):
            await repo.add(7, new(NIK_B), max_accounts=3, now=202.0, evict_slot=slots[1])
        assert len(await repo.list(7)) == 3
    finally:
        await db.close()


async def test_concurrent_adds_never_leave_more_than_the_bound(tmp_path: Path) -> None:
    db, repo, _ = await open_repo(tmp_path)
    try:
        first, _ = await repo.add(9, new(NIK_A), max_accounts=2, now=1.0)
        await repo.add(9, new(NIK_B), max_accounts=2, now=2.0)
        results = await asyncio.gather(
            *(repo.add(9, new(nik), max_accounts=2, now=3.0, evict_slot=first.slot)
              for nik in (NIK_C, NIK_D)), return_exceptions=True)
        assert sum(isinstance(r, CacheFullError) for r in results) == 1
        assert len(await repo.list(9)) == 2
    finally:
        await db.close()


async def test_switch_remove_and_active_fallback(tmp_path: Path) -> None:
    db, repo, _ = await open_repo(tmp_path)
    try:
        a, _ = await repo.add(1, new(NIK_A), max_accounts=3, now=1.0)
        b, _ = await repo.add(1, new(NIK_B), max_accounts=3, now=2.0)
        assert await repo.switch(1, a.slot, now=3.0)
        assert not await repo.switch(2, a.slot, now=3.0), "another chat cannot switch it"
        assert [x.active for x in await repo.list(1)] == [True, False]
        assert await repo.remove(1, a.slot)
        assert [(x.slot, x.active) for x in await repo.list(1)] == [(b.slot, True)]
        assert not await repo.remove(1, a.slot)
    finally:
        await db.close()


async def test_a_row_copied_into_another_chat_does_not_decrypt(tmp_path: Path) -> None:
    db, repo, _ = await open_repo(tmp_path)
    try:
        await repo.add(1, new(NIK_A), max_accounts=3, now=1.0)
        await execute(db, "UPDATE accounts SET chat_id = 2")
        with pytest.raises(VaultError):
            await repo.list(2)
    finally:
        await db.close()


async def test_a_field_swapped_between_two_accounts_of_one_chat_does_not_decrypt(
        tmp_path: Path) -> None:
    """The repositories bind each ciphertext to its row (slot), not only to its chat."""
    db, repo, _ = await open_repo(tmp_path)
    try:
        a, _ = await repo.add(1, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
        b, _ = await repo.add(1, new(NIK_B, "Ayah"), max_accounts=3, now=2.0)
        for column in ("nik_ct", "label_ct", "status_ct"):
            row = await query_one(db, f"SELECT {column} FROM accounts WHERE slot = ?", a.slot)
            assert row is not None
            await execute(db, (f"UPDATE accounts SET {column} = ? WHERE slot = ?",
                               (row[column], b.slot)))
            with pytest.raises(VaultError):
                await repo.get(1, b.slot)
            with pytest.raises(VaultError):
                await repo.list(1)
            await repo.remove(1, b.slot)
            b, _ = await repo.add(1, new(NIK_B, "Ayah"), max_accounts=3, now=2.0)
    finally:
        await db.close()


# -- OTP challenges ---------------------------------------------------------------------

def keys_for(vault: Vault, chat: int, nik: str = NIK_A, phone: str = PHONE) -> Keys:
    return Keys(vault.chat_key(chat), vault.participant_key(nik), vault.phone_key(phone))


async def open_otp(tmp_path: Path, caps: Caps | None = None
                   ) -> tuple[Database, OtpRepo, Vault]:
    db = await Database.open(tmp_path / "kk.sqlite3")
    vault = Vault(generate_master_key())
    return db, OtpRepo(db, vault, caps), vault


async def test_a_code_succeeds_exactly_once_even_under_concurrent_tries(tmp_path: Path
                                                                        ) -> None:
    db, repo, vault = await open_otp(tmp_path)
    try:
        await repo.put(5, purpose="add", keys=keys_for(vault, 5), code="123456",
                       payload={"kind": "nik"}, now=100.0, ttl=300)
        results = await asyncio.gather(*(repo.verify(5, "123456", now=101.0, max_attempts=5)
                                         for _ in range(10)))
        outcomes = [r.outcome for r in results]
        assert outcomes.count(VerifyOutcome.OK) == 1
        assert set(outcomes) == {VerifyOutcome.OK, VerifyOutcome.USED}
        assert results[outcomes.index(VerifyOutcome.OK)].payload == {"kind": "nik"}
    finally:
        await db.close()


async def test_chat_a_code_does_not_work_in_chat_b_even_when_the_codes_are_equal(
        tmp_path: Path) -> None:
    """Same participant, same code, two chats: each stored hash is bound to its chat, so a
    hash that ends up in another chat's challenge never verifies there."""
    db, repo, vault = await open_otp(tmp_path)
    try:
        for chat in (5, 6):
            await repo.put(chat, purpose="add", keys=keys_for(vault, chat), code="123456",
                           payload={}, now=100.0, ttl=300)
        hashes = {int(r["chat_id"]): bytes(r["code_hash"]) for r in await query(
            db, "SELECT chat_id, code_hash FROM challenges ORDER BY chat_id")}
        assert hashes[5] != hashes[6]
        # chat B's row now carries chat A's hash
        await execute(db, ("UPDATE challenges SET code_hash = ? WHERE chat_id = 6",
                           (hashes[5],)))
        assert (await repo.verify(6, "123456", now=101.0, max_attempts=5)).outcome \
            is VerifyOutcome.WRONG
        assert (await repo.verify(5, "123456", now=101.0, max_attempts=5)).outcome \
            is VerifyOutcome.OK
    finally:
        await db.close()


async def test_a_code_for_one_participant_does_not_confirm_another(tmp_path: Path) -> None:
    """One chat, two participants, one code: the hash is bound to the participant, so a
    challenge whose participant changed under it (a mix-up of rows) refuses the code."""
    db, repo, vault = await open_otp(tmp_path)
    try:
        await repo.put(5, purpose="add", keys=keys_for(vault, 5, NIK_A), code="123456",
                       payload={}, now=100.0, ttl=300)
        row = await query_one(db, "SELECT code_hash FROM challenges")
        assert row is not None
        first = bytes(row["code_hash"])
        await repo.put(5, purpose="add", keys=keys_for(vault, 5, NIK_B), code="123456",
                       payload={}, now=100.0, ttl=300)
        row = await query_one(db, "SELECT code_hash FROM challenges")
        assert row is not None and bytes(row["code_hash"]) != first
        await execute(db, ("UPDATE challenges SET code_hash = ?", (first,)))
        assert (await repo.verify(5, "123456", now=101.0, max_attempts=5)).outcome \
            is VerifyOutcome.WRONG
    finally:
        await db.close()


async def test_a_code_expires_and_dies_after_max_attempts(tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path)
    try:
        for chat in (5, 6):
            await repo.put(chat, purpose="add", keys=keys_for(vault, chat), code="654321",
                           payload={}, now=100.0, ttl=300)
        assert (await repo.verify(5, "654321", now=401.0, max_attempts=3)).outcome \
            is VerifyOutcome.EXPIRED
        results = [await repo.verify(6, "000000", now=102.0, max_attempts=3) for _ in range(3)]
        assert [r.outcome for r in results] == [VerifyOutcome.WRONG, VerifyOutcome.WRONG,
                                                VerifyOutcome.EXHAUSTED]
        assert [r.attempts_left for r in results[:2]] == [2, 1]
        assert (await repo.verify(6, "654321", now=103.0, max_attempts=3)).outcome \
            is VerifyOutcome.EXHAUSTED, "the right code no longer works after the last try"
        stored = await repo.get(6)
        assert stored is not None and stored.attempts == 3
        hashes = [bytes(r["code_hash"])
                  for r in await query(db, "SELECT code_hash FROM challenges")]
        assert len(hashes) == 2 and all(b"654321" not in h for h in hashes)
    finally:
        await db.close()


async def test_send_caps_per_phone_per_chat_and_overall(tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path, Caps(global_hourly=30))
    try:
        phone = keys_for(vault, 0)

        def chat(i: int) -> Keys:  # a different chat each time: only the phone repeats
            return Keys(vault.chat_key(i), phone.subject, phone.phone)

        for i in range(5):
            assert isinstance(await repo.reserve_send(chat(i), 1000.0 + i), int)
        assert await repo.reserve_send(chat(5), 1010.0) is SendBlock.PHONE_HOURLY
        for i in range(5):  # an hour later: five more, ten in the day
            assert isinstance(await repo.reserve_send(chat(10 + i), 4601.0 + i), int)
        assert await repo.reserve_send(chat(20), 8202.0) is SendBlock.PHONE_DAILY
        assert isinstance(await repo.reserve_send(chat(21), 1004.0 + 86401), int)
        for i in range(10):  # one chat, ten different phones: ten per chat per day
            assert isinstance(await repo.reserve_send(
                keys_for(vault, 42, phone=f"+62812345678{i:02d}"), 50000.0 + i), int)
        assert await repo.reserve_send(keys_for(vault, 42, phone="+6281299999999"),
                                       50020.0) is SendBlock.CHAT_DAILY
    finally:
        await db.close()


async def test_a_released_send_does_not_count(tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path)
    try:
        keys = keys_for(vault, 43)
        for i in range(10):
            record = await repo.reserve_send(keys, 5030.0 + i)
            assert isinstance(record, int)
            await repo.release_send(record)
        assert isinstance(await repo.reserve_send(keys, 5041.0), int), \
            "ten failed SMS left the chat and the phone their whole allowance"
        row = await query_one(db, "SELECT count(*) AS n FROM rate_events")
        assert row is not None and row["n"] == 1
    finally:
        await db.close()


async def test_the_global_budget_blocks_strangers_but_not_an_owner(tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path, Caps(global_hourly=3))
    try:
        for i in range(3):
            assert isinstance(await repo.reserve_send(
                keys_for(vault, i, phone=f"+62812000000{i:02d}"), 100.0 + i), int)
        stranger = keys_for(vault, 7, phone="+6281200000099")
        assert await repo.reserve_send(stranger, 110.0) is SendBlock.GLOBAL_BUDGET
        assert isinstance(await repo.reserve_send(stranger, 110.0, owner=True), int)
        assert isinstance(await repo.reserve_send(stranger, 100.0 + 3601), int), \
            "the budget frees up after an hour"
    finally:
        await db.close()


async def test_ten_wrong_codes_across_chats_lock_the_participant_for_a_day(
        tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path)
    try:
        for chat in range(1, 4):  # three strangers, five, five and one guesses
            await repo.put(chat, purpose="add", keys=keys_for(vault, chat), code="123456",
                           payload={}, now=100.0, ttl=300)
        outcomes = [(await repo.verify(chat, "000000", now=101.0, max_attempts=5)).outcome
                    for chat in (1, 1, 1, 1, 1, 2, 2, 2, 2, 2)]
        assert outcomes[:4] == [VerifyOutcome.WRONG] * 4
        assert outcomes[4] is VerifyOutcome.EXHAUSTED
        assert outcomes[-1] is VerifyOutcome.LOCKED, "the tenth wrong code locks"
        assert (await repo.verify(3, "123456", now=102.0, max_attempts=5)).outcome \
            is VerifyOutcome.LOCKED, "even the right code, in a third chat"
        assert await repo.get(3) is None, "the locked challenge is gone"
        assert await repo.reserve_send(keys_for(vault, 4), 103.0) \
            is SendBlock.PARTICIPANT_LOCKED, "no code for them, whoever asks"
        same_phone = keys_for(vault, 4, nik=NIK_C)  # another NIK on the same phone
        assert await repo.reserve_send(same_phone, 103.0) is SendBlock.PARTICIPANT_LOCKED
        owner = keys_for(vault, 9)
        assert isinstance(await repo.reserve_send(owner, 104.0, owner=True), int)
        await repo.put(9, purpose="reverify", keys=owner, code="777777", payload={},
                       now=104.0, ttl=300, owner=True)
        assert (await repo.verify(9, "777777", now=105.0, max_attempts=5)).outcome \
            is VerifyOutcome.OK, "the owner's chat is held back only by its own tries"
        assert isinstance(await repo.reserve_send(keys_for(vault, 4), 100.0 + 86401), int)
    finally:
        await db.close()


async def test_owners_in_many_chats_share_one_cap(tmp_path: Path) -> None:
    """Someone who once held the phone and added the participant in three chats does not
    get three allowances when the sessions run out: owners share one."""
    db, repo, vault = await open_otp(tmp_path)
    try:
        outcomes = []
        for chat in (1, 2, 3):
            keys = keys_for(vault, chat)
            assert isinstance(await repo.reserve_send(keys, 100.0, owner=True), int)
            await repo.put(chat, purpose="reverify", keys=keys, code="123456", payload={},
                           now=100.0, ttl=300, owner=True)
            outcomes += [(await repo.verify(chat, "000000", now=101.0, max_attempts=5)).outcome
                         for _ in range(4)]
        assert outcomes.count(VerifyOutcome.WRONG) == 9 and outcomes[9] is VerifyOutcome.LOCKED
        assert await repo.reserve_send(keys_for(vault, 4), 102.0, owner=True) \
            is SendBlock.PARTICIPANT_LOCKED, "a fourth owner chat gets nothing more"
    finally:
        await db.close()


async def test_rate_records_hold_no_chat_id_and_expire(tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path)
    chat = 987654321
    try:
        await repo.reserve_send(keys_for(vault, chat), 100.0)
        assert await repo.reserve_lookup(vault.chat_key(chat), 100.0)
        assert await repo.reserve_backend_call(vault.chat_key(chat), 100.0)
        dump = repr([tuple(r) for r in await query(db, "SELECT * FROM rate_events")])
        assert str(chat) not in dump
        assert await repo.prune(100.0 + 86401) == 3
    finally:
        await db.close()


async def test_expired_and_finished_challenges_are_purged(tmp_path: Path) -> None:
    db, repo, vault = await open_otp(tmp_path)
    try:
        for chat, at in ((1, 0.0), (2, 1000.0)):
            await repo.put(chat, purpose="add", keys=keys_for(vault, chat), code="123456",
                           payload={}, now=at, ttl=300)
        await repo.put(3, purpose="add", keys=keys_for(vault, 3), code="123456", payload={},
                       now=1000.0, ttl=300)
        await repo.verify(3, "123456", now=1001.0, max_attempts=5)
        assert await repo.purge_expired(1250.0, grace=900, verified_for=1800) == 1
        assert [await repo.get(c) is not None for c in (1, 2, 3)] == [False, True, True]
        assert await repo.purge_expired(1000.0 + 300 + 901, grace=900, verified_for=1800) == 1
        assert await repo.purge_expired(1001.0 + 1801, grace=900, verified_for=1800) == 1
        assert await repo.get(3) is None
    finally:
        await db.close()


# -- persistence ------------------------------------------------------------------------

async def test_persistence_round_trip_and_empty_chat_data_is_not_stored(tmp_path: Path
                                                                        ) -> None:
    db = await Database.open(tmp_path / "kk.sqlite3")
    try:
        persistence = SqlitePersistence(db)
        await persistence.update_conversation("tambah_kk", (11,), 2)
        await persistence.update_conversation("tambah_kk", (12,), 1)
        await persistence.update_conversation("tambah_kk", (12,), None)
        assert await persistence.get_conversations("tambah_kk") == {(11,): 2}
        await persistence.update_chat_data(11, {"bad_inputs": 2})
        await persistence.update_chat_data(12, {})
        assert await persistence.get_chat_data() == {11: {"bad_inputs": 2}}
        await persistence.drop_chat_data(11)
        assert await persistence.get_chat_data() == {}
    finally:
        await db.close()


# -- keys, migrations, rotation, backup, erase ------------------------------------------

async def test_key_file_created_0600_only_for_a_new_installation(tmp_path: Path) -> None:
    raw = resolve_master_key(tmp_path, tmp_path / "kk.sqlite3", None)
    key_file = tmp_path / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert resolve_master_key(tmp_path, tmp_path / "kk.sqlite3", None) == raw
    key_file.unlink()
    (tmp_path / "kk.sqlite3").write_bytes(b"")
    with pytest.raises(KeyError_, match="no master key"):
        resolve_master_key(tmp_path, tmp_path / "kk.sqlite3", None)
    assert not key_file.exists(), "never creates a key for an existing database"


@SQLITE_FILES
async def test_wrong_key_is_refused_and_nothing_is_touched(services_factory: ServicesFactory,
                                                           data_dir: Path) -> None:
    svc: Services = await services_factory()
    await svc.accounts.repo.add(1, new(NIK_A), max_accounts=3, now=1.0)
    await svc.db.close()
    before = (data_dir / "kk.sqlite3").read_bytes()
    db = await Database.open(data_dir / "kk.sqlite3")
    try:
        with pytest.raises(KeyError_, match="does not match"):
            await check_key(db, Vault(generate_master_key()))
    finally:
        await db.close()
    assert (data_dir / "kk.sqlite3").read_bytes() == before


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "kk.sqlite3")
    await execute(db, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    await db.close()
    with pytest.raises(DatabaseError, match="newer"):
        await Database.open(tmp_path / "kk.sqlite3")


async def test_rotation_reencrypts_everything_and_keeps_the_old_key(
        services_factory: ServicesFactory, data_dir: Path) -> None:
    svc: Services = await services_factory()
    await svc.accounts.repo.add(1, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    await svc.accounts.repo.add(2, new(NIK_B, "Ayah"), max_accounts=3, now=1.0)
    old_key = (data_dir / "master.key").read_text()
    raw, count = await rotate_key(svc.db, svc.vault, data_dir / "master.key")
    assert count == 2
    assert [p.read_text() for p in retired_keys(data_dir / "master.key")] == [old_key]
    assert not (data_dir / "master.key.new").exists()
    with pytest.raises(VaultError):
        await svc.accounts.list(1)
    await svc.db.close()
    reopened: Services = await services_factory()
    assert [a.label for a in await reopened.accounts.list(1)] == ["Ibu"]
    assert (await reopened.accounts.find_by_nik(2, NIK_B)) is not None
    assert reopened.vault.key_id == Vault(raw).key_id


async def test_an_interrupted_rotation_is_finished_at_the_next_start(
        services_factory: ServicesFactory, data_dir: Path) -> None:
    svc: Services = await services_factory()
    await svc.accounts.repo.add(1, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    await rotate_key(svc.db, svc.vault, data_dir / "master.key")
    await svc.db.close()
    # Put the files back as a crash right after the commit would have left them.
    os.replace(data_dir / "master.key", data_dir / "master.key.new")
    (retired,) = retired_keys(data_dir / "master.key")
    os.replace(retired, data_dir / "master.key")
    reopened: Services = await services_factory()
    assert [a.label for a in await reopened.accounts.list(1)] == ["Ibu"]
    assert not (data_dir / "master.key.new").exists()
    assert len(retired_keys(data_dir / "master.key")) == 1


async def test_rotation_with_an_environment_key_prints_and_refuses_old_key(
        services_factory: ServicesFactory, data_dir: Path) -> None:
    svc: Services = await services_factory()
    await svc.accounts.repo.add(1, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    await rotate_key(svc.db, svc.vault, None)  # KK_MASTER_KEY: no file to swap
    await svc.db.close()
    with pytest.raises(KeyError_, match="does not match"):
        await services_factory()


@SQLITE_FILES
async def test_backup_is_a_consistent_copy(services: Services, tmp_path: Path) -> None:
    await services.accounts.repo.add(1, new(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    target = tmp_path / "backup.sqlite3"
    await services.db.backup_to(target)
    copy = await Database.open(target)
    try:
        assert [a.label for a in await AccountsRepo(copy, services.vault).list(1)] == ["Ibu"]
    finally:
        await copy.close()


async def test_erase_chat_removes_every_row_of_that_chat_only(services: Services) -> None:
    for chat in (1, 2):
        await fill_every_table(services, chat)
    assert_a_row_in_every_table(await chat_rows(services, 1))  # before
    await services.db.erase_chat(1)
    assert await chat_rows(services, 1) == {t: 0 for t in (*CHAT_TABLES, "user_data")}, \
        "no table with a chat id keeps a row of the erased chat"
    assert_a_row_in_every_table(await chat_rows(services, 2))  # chat 2 keeps every row
    assert [a.label for a in await services.accounts.list(2)] == ["Ibu 2", "Ayah 2"]
    assert await services.otp.challenge(2) is not None


@SQLITE_FILES
async def test_after_an_erase_no_byte_of_the_chat_is_left_in_the_files(
        services: Services, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ciphertext ever written for the chat, and its keyed hashes, are gone from the
    database file and the WAL the moment the erase returns (secure_delete + checkpoint)."""
    written: list[bytes] = []
    real_encrypt = Vault.encrypt

    def recording(vault: Vault, plaintext: str, aad: bytes) -> bytes:
        blob = real_encrypt(vault, plaintext, aad)
        if b"|1|" in aad:
            written.append(blob)
        return blob

    monkeypatch.setattr(Vault, "encrypt", recording)
    await fill_every_table(services, 1)
    await fill_every_table(services, 2)
    accounts = await services.accounts.list(1)
    await services.accounts.save_status(1, accounts[0].slot, {"status_text": "AKTIF"})
    one, two = [await services.accounts.repo.keys.get(services.db, c) for c in (1, 2)]
    assert one is not None and two is not None
    keyed = [one.blind_index(1, NIK_A), one.blind_index(1, NIK_B)]
    files = [data_dir / "kk.sqlite3", data_dir / "kk.sqlite3-wal"]
    before = b"".join(p.read_bytes() for p in files)
    assert len(written) >= 8 and all(blob[17:] in before for blob in written[-3:])
    await services.db.erase_chat(1)
    after = b"".join(p.read_bytes() for p in files if p.exists())
    assert (data_dir / "kk.sqlite3-wal").stat().st_size == 0, "the WAL was truncated"
    left = [blob for blob in written if blob[17:] in after]  # the sealed part of each
    assert left == [], f"{len(left)} of {len(written)} ciphertexts still readable"
    assert not [k for k in keyed if k in after]
    assert two.blind_index(2, NIK_A) in after, "chat 2's rows are still there"


@SQLITE_FILES
async def test_removing_or_evicting_one_account_leaves_no_copy_of_it(
        services: Services, data_dir: Path) -> None:
    repo = services.accounts.repo
    first, _ = await repo.add(1, new(NIK_A, "Satu"), max_accounts=2, now=1.0)
    second, _ = await repo.add(1, new(NIK_B, "Dua"), max_accounts=2, now=2.0)

    async def ciphertexts(slot: str) -> list[bytes]:
        row = await query_one(
            services.db, "SELECT nik_ct, card_ct, name_ct, phone_ct, label_ct, status_ct "
            "FROM accounts WHERE slot = ?", slot)
        assert row is not None
        return [bytes(v)[17:] for v in row]

    def files() -> bytes:
        return b"".join(p.read_bytes() for p in data_dir.glob("kk.sqlite3*"))

    removed, evicted = await ciphertexts(first.slot), await ciphertexts(second.slot)
    assert await repo.remove(1, first.slot)
    assert [b for b in removed if b in files()] == []
    await repo.add(1, new(NIK_C, "Tiga"), max_accounts=2, now=3.0)
    await repo.add(1, new(NIK_D, "Empat"), max_accounts=2, now=4.0, evict_slot=second.slot)
    assert [b for b in evicted if b in files()] == []


@SQLITE_FILES
async def test_database_and_wal_hold_no_plaintext_identifier(
        services_factory: ServicesFactory, data_dir: Path) -> None:
    svc: Services = await services_factory()
    from tests.conftest import Phone  # the recording phone of this services factory

    assert isinstance(svc.sms, Phone)
    await svc.consent.record(1)
    for nik, label in ((NIK_A, "Label Rahasia"), (NIK_B, "Ibu")):
        await svc.otp.issue(1, purpose="add", nik=nik, phone=PHONE,
                            payload={"nik": nik, "name": NAME, "phone": PHONE})
        await svc.otp.verify(1, svc.sms.last_code())
        await svc.accounts.add(1, new(nik, label), evict_slot=None)
    persistence = SqlitePersistence(svc.db)
    await persistence.update_chat_data(1, {"bad_inputs": 1})
    files = [p for p in data_dir.iterdir() if p.name.startswith("kk.sqlite3")]
    assert any(p.name.endswith("-wal") for p in files)
    blobs = b"".join(p.read_bytes() for p in files)
    for secret in (NIK_A, NIK_B, NAME, PHONE, PHONE[3:], "Label Rahasia", "0001" + NIK_A[-9:]):
        assert secret.encode() not in blobs, secret
        assert secret.encode("utf-16-le") not in blobs, secret
    assert os.path.getsize(data_dir / "kk.sqlite3") > 0


async def test_forward_migration_keeps_existing_rows(tmp_path: Path) -> None:
    import sqlite3

    from storage.db import MIGRATIONS

    path = tmp_path / "kk.sqlite3"
    conn = sqlite3.connect(str(path))
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute("INSERT INTO consent (chat_id, consented_at) VALUES (5, 123.0)")
    conn.commit()
    conn.close()
    db = await Database.open(path)
    try:
        assert await db.user_version() == SCHEMA_VERSION
        assert await ConsentRepo(db).consented_at(5) == 123.0
        row = await query_one(db, "PRAGMA journal_mode")
        assert row is not None and row["journal_mode"] == "wal"
    finally:
        await db.close()


async def test_unchanged_chat_data_costs_no_write(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "kk.sqlite3")
    try:
        persistence = SqlitePersistence(db)
        await persistence.get_chat_data()
        changes = await total_changes(db)
        for _ in range(5):
            await persistence.update_chat_data(1, {})  # a /bantuan: nothing to store
        assert await total_changes(db) == changes
        await persistence.update_chat_data(1, {"bad_inputs": 1})
        await persistence.update_chat_data(1, {"bad_inputs": 1})
        assert await total_changes(db) == changes + 1
        reloaded = SqlitePersistence(db)
        assert await reloaded.get_chat_data() == {1: {"bad_inputs": 1}}
        await reloaded.update_chat_data(1, {})
        assert await reloaded.get_chat_data() == {}
    finally:
        await db.close()


async def test_rate_log_pruning_uses_an_index(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "kk.sqlite3")
    try:
        for sql in ("DELETE FROM rate_events WHERE kind = 'sms' AND at < 1",
                    "SELECT count(*) FROM rate_events WHERE kind = 'sms' AND at > 1",
                    "SELECT count(*) FROM rate_events WHERE kind = 'wrong' "
                    "AND subject_key = x'00' AND at > 1",
                    "SELECT count(*) FROM rate_events WHERE kind = 'sms' "
                    "AND phone_key = x'00' AND at > 1",
                    "SELECT count(*) FROM rate_events WHERE kind = 'lookup' "
                    "AND chat_key = x'00' AND at > 1"):
            plan = " ".join(str(row["detail"])
                            for row in await query(db, f"EXPLAIN QUERY PLAN {sql}"))
            assert "USING" in plan and "INDEX" in plan, (sql, plan)
    finally:
        await db.close()


async def test_an_unchanged_conversation_state_costs_no_write(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "kk.sqlite3")
    try:
        persistence = SqlitePersistence(db)
        await persistence.get_conversations("tambah_kk")
        await persistence.update_conversation("tambah_kk", (1,), 2)
        changes = await total_changes(db)
        await persistence.update_conversation("tambah_kk", (1,), 2)
        await persistence.update_conversation("tambah_kk", (9,), None)
        assert await total_changes(db) == changes
        reloaded = SqlitePersistence(db)
        assert await reloaded.get_conversations("tambah_kk") == {(1,): 2}
        await reloaded.update_conversation("tambah_kk", (1,), None)
        assert await reloaded.get_conversations("tambah_kk") == {}
    finally:
        await db.close()


@SQLITE_FILES
async def test_database_files_are_private(services: Services, data_dir: Path,
                                          tmp_path: Path) -> None:
    await services.consent.record(1)
    for name in ("kk.sqlite3", "kk.sqlite3-wal", "master.key"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    await services.db.backup_to(tmp_path / "copy.sqlite3")
    assert stat.S_IMODE((tmp_path / "copy.sqlite3").stat().st_mode) == 0o600


async def test_units_run_one_at_a_time_in_order_and_a_cancelled_caller_s_unit_still_commits(
        tmp_path: Path) -> None:
    """Decisions 11 and 43: a unit is one hop to the database thread; nothing interleaves
    with it, and a caller cancelled after handing it over cannot take it back halfway."""
    import sqlite3
    import threading

    from storage.db import immediate

    db = await Database.open(tmp_path / "kk.sqlite3")
    release = threading.Event()
    trace: list[str] = []

    def slow(conn: sqlite3.Connection) -> None:
        trace.append("slow start")
        release.wait(5)
        trace.append("slow end")

    def insert(conn: sqlite3.Connection, key: str) -> None:
        trace.append(key)
        with immediate(conn):
            conn.execute("INSERT INTO meta (key, value) VALUES (?, x'01')", (key,))

    try:
        first = asyncio.create_task(db.run(slow))
        cancelled = asyncio.create_task(db.run(insert, "cancelled"))
        after = asyncio.create_task(db.run(insert, "after"))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        release.set()
        await first
        await after
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert trace == ["slow start", "slow end", "cancelled", "after"]
        assert await db.get_meta("cancelled") == b"\x01", "handed over, so it ran to COMMIT"

        def failing(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("INSERT INTO meta (key, value) VALUES ('half', x'02')")
                raise RuntimeError("boom")
        with pytest.raises(RuntimeError, match="boom"):
            await db.run(failing)
        assert await db.get_meta("half") is None, "rolled back whole"
        rows = await query(db, "SELECT key FROM meta WHERE key IN ('cancelled', 'after') "
                               "ORDER BY key")
        assert [row["key"] for row in rows] == ["after", "cancelled"]
    finally:
        release.set()
        await db.close()
        await db.close()  # a second close does nothing
