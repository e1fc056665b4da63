"""The code store at its edges (issue 19, found by mutation testing of storage/otp_repo.py):
what a row of ``challenges`` and ``rate_events`` holds, which label its payload is sealed
under, and what each outcome of a check leaves behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.otp import SendOutcome
from bot.services import Services
from storage.crypto import Vault, VaultError
from tests.conftest import NIK_A, PHONE, FakeClock, Phone
from tests.dbsql import execute, query, query_one
from tests.test_cleanup import readable

CHAT = 41
#: The label a challenge's payload is sealed under. A database written today must open
#: under every later version: a change to it is a migration, not a refactoring.
CHALLENGE_AAD = b"challenges|41|live|payload"


async def _issue(services: Services, chat: int = CHAT, *, owner: bool = False,
                 nik: str = NIK_A, phone: str = PHONE) -> None:
    result = await services.otp.issue(chat, purpose="add", nik=nik, phone=phone,
                                      payload={"kind": "nik", "value": NIK_A}, owner=owner)
    assert result.outcome is SendOutcome.SENT


async def test_a_challenge_payload_is_sealed_under_its_fixed_label(services: Services) -> None:
    await _issue(services)
    row = await query_one(services.db, "SELECT payload_ct FROM challenges WHERE chat_id = ?",
                          CHAT)
    assert row is not None
    plain = json.loads(await services.otp.repo.unseal(CHAT, bytes(row["payload_ct"]),
                                                      CHALLENGE_AAD))
    with pytest.raises(VaultError):  # under the chat's key, not the master key
        services.vault.decrypt(bytes(row["payload_ct"]), CHALLENGE_AAD)
    assert plain == {"kind": "nik", "value": NIK_A, "phone": PHONE}
    assert Vault.aad("challenges", CHAT, "live", "payload") == CHALLENGE_AAD


async def test_a_challenge_written_under_the_fixed_label_opens_and_its_code_works(
        services: Services, phone: Phone) -> None:
    await _issue(services)  # as the release before per-chat keys wrote it: the master key
    sealed = services.vault.encrypt(json.dumps({"kind": "nik", "value": "x", "phone": PHONE}),
                                    CHALLENGE_AAD)
    await execute(services.db, ("UPDATE challenges SET payload_ct = ? WHERE chat_id = ?",
                                (sealed, CHAT)))
    challenge = await services.otp.challenge(CHAT)
    assert challenge is not None and challenge.payload["value"] == "x"
    result = await services.otp.verify(CHAT, phone.last_code())
    assert result.outcome.value == "ok" and result.payload is not None
    assert result.payload["value"] == "x"


# -- what a challenge holds ----------------------------------------------------------------

async def test_a_challenge_holds_its_times_counters_and_flags(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    clock.now = 1_800_000_000.0
    otp = services.otp
    await _issue(services)
    challenge = await otp.challenge(CHAT)
    assert challenge is not None
    t0 = clock.now
    assert (challenge.chat_id, challenge.purpose, challenge.created_at, challenge.expires_at,
            challenge.last_sent_at, challenge.attempts, challenge.resends,
            challenge.consumed_at, challenge.owner) == (
        CHAT, "add", t0, t0 + otp.ttl, t0, 0, 0, None, False)
    assert (await otp.verify(CHAT, "000000" if phone.last_code() != "000000" else "111111")
            ).outcome.value == "wrong"
    clock.advance(otp.resend_seconds)
    assert (await otp.resend(CHAT)).outcome is SendOutcome.SENT
    t1 = clock.now
    challenge = await otp.challenge(CHAT)
    assert challenge is not None
    assert (challenge.created_at, challenge.expires_at, challenge.last_sent_at,
            challenge.attempts, challenge.resends, challenge.consumed_at) == (
        t0, t1 + otp.ttl, t1, 1, 1, None)
    clock.advance(2)
    assert (await otp.verify(CHAT, phone.last_code())).outcome.value == "ok"
    challenge = await otp.challenge(CHAT)
    assert challenge is not None and challenge.consumed_at == t1 + 2
    await _issue(services, CHAT + 1, owner=True)
    owned = await otp.challenge(CHAT + 1)
    assert owned is not None and owned.owner is True


async def test_the_rate_records_hold_keyed_hashes_of_chat_participant_and_phone(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    clock.now = 1_800_000_000.0
    vault = services.vault
    await _issue(services, owner=True)
    wrong = "000000" if phone.last_code() != "000000" else "111111"
    clock.advance(5)
    assert (await services.otp.verify(CHAT, wrong)).outcome.value == "wrong"
    assert await services.otp.allow_lookup(CHAT)
    assert await services.otp.allow_backend_call(CHAT)
    rows = await query(services.db, "SELECT kind, chat_key, subject_key, phone_key, owner, at "
                                    "FROM rate_events ORDER BY rowid")
    chat, subject, phone_key = (vault.chat_key(CHAT), vault.participant_key(NIK_A),
                                vault.phone_key(PHONE))
    t0 = 1_800_000_000.0
    assert [tuple(row) for row in rows] == [
        ("sms", chat, subject, phone_key, 1, t0),
        ("wrong", chat, subject, phone_key, 1, t0 + 5),
        ("lookup", chat, None, None, 0, t0 + 5),
        ("backend", chat, None, None, 0, t0 + 5),
    ]


# -- the outcomes of a check ---------------------------------------------------------------

async def test_a_code_typed_at_its_expiry_second_is_expired_and_a_second_before_is_not(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    clock.now = 1_800_000_000.0
    await _issue(services)
    await _issue(services, CHAT + 1, phone="+6281200000042")
    clock.advance(services.otp.ttl - 1)
    assert (await services.otp.verify(CHAT + 1, phone.last_code())).outcome.value == "ok"
    clock.advance(1)
    result = await services.otp.verify(CHAT, _code(phone, 0))
    assert (result.outcome.value, result.attempts_left) == ("expired", 0)


async def test_wrong_codes_count_down_and_the_last_one_exhausts_the_challenge(
        services: Services, phone: Phone) -> None:
    await _issue(services)
    right = phone.last_code()
    wrong = "000000" if right != "000000" else "111111"
    left = []
    for _ in range(services.otp.max_attempts):
        result = await services.otp.verify(CHAT, wrong)
        left.append((result.outcome.value, result.attempts_left))
    n = services.otp.max_attempts
    assert left == [("wrong", n - i) for i in range(1, n)] + [("exhausted", 0)]
    result = await services.otp.verify(CHAT, right)
    assert (result.outcome.value, result.attempts_left, result.payload) == ("exhausted", 0, None)
    challenge = await services.otp.challenge(CHAT)
    assert challenge is not None and challenge.attempts == n and challenge.consumed_at is None


def _code(phone: Phone, index: int) -> str:
    found = re.search(r"\b([0-9]{6})\b", phone.inbox[index][1])
    assert found
    return found.group(1)


def _wrong(phone: Phone) -> str:
    return "000000" if phone.last_code() != "000000" else "111111"


@pytest.mark.parametrize("by", ["participant", "phone"])
async def test_a_participant_locked_across_chats_loses_every_challenge(
        services: Services, clock: FakeClock, phone: Phone, by: str) -> None:
    """Ten wrong codes in a day for one participant (or one phone), one in each of ten
    chats: the tenth says LOCKED, and every other chat's challenge for them dies at its next
    check, even with the right code; a new code is refused."""
    cap = services.caps.participant_wrong_daily
    chats = [100 + i for i in range(cap)]
    outcomes = []
    for i, chat in enumerate(chats):
        if by == "phone" and i == services.caps.phone_hourly:
            clock.advance(3601)  # the phone's hour is full, its day is not
        nik, to = ((NIK_A, f"+62812000001{i:02d}") if by == "participant"
                   else (f"31740145069001{i:02d}", PHONE))
        await _issue(services, chat, nik=nik, phone=to)
        outcomes.append((await services.otp.verify(chat, _wrong(phone))).outcome.value)
    assert outcomes == ["wrong"] * (cap - 1) + ["locked"]
    assert await services.otp.challenge(chats[-1]) is None
    result = await services.otp.verify(chats[-2], _code(phone, cap - 2))
    assert (result.outcome.value, result.payload) == ("locked", None)
    assert await services.otp.challenge(chats[-2]) is None
    blocked = await services.otp.issue(7, purpose="add", nik=NIK_A if by == "participant"
                                       else "3174014506900199", phone=PHONE if by == "phone"
                                       else "+6281200000777", payload={})
    assert blocked.outcome is SendOutcome.CAP_PARTICIPANT


async def test_strangers_wrong_codes_do_not_lock_the_owner_out(
        services: Services, phone: Phone) -> None:
    cap = services.caps.participant_wrong_daily
    for i in range(cap):
        await _issue(services, 100 + i, phone=f"+62812000001{i:02d}")
        await services.otp.verify(100 + i, _wrong(phone))
    await _issue(services, CHAT, owner=True, phone="+6281200000777")
    assert (await services.otp.verify(CHAT, phone.last_code())).outcome.value == "ok"
    stranger = await services.otp.issue(CHAT + 1, purpose="add", nik=NIK_A,
                                        phone="+6281200000778", payload={})
    assert stranger.outcome is SendOutcome.CAP_PARTICIPANT


async def test_a_locked_challenge_leaves_no_copy_of_its_payload(
        services: Services, phone: Phone, data_dir: Path) -> None:
    cap = services.caps.participant_wrong_daily
    for i in range(cap - 1):
        await _issue(services, 100 + i, phone=f"+62812000001{i:02d}")
        assert (await services.otp.verify(100 + i, _wrong(phone))).outcome.value == "wrong"
    await _issue(services, CHAT, phone="+6281200000999")
    row = await query_one(services.db, "SELECT payload_ct FROM challenges WHERE chat_id = ?",
                          CHAT)
    assert row is not None
    blob = bytes(row["payload_ct"])
    assert readable([blob], data_dir) == [blob], "the payload is in a file before"
    assert (await services.otp.verify(CHAT, _wrong(phone))).outcome.value == "locked"
    assert readable([blob], data_dir) == [], "the locked challenge's payload is still there"


async def test_no_challenge_is_none_with_no_attempts_left(services: Services) -> None:
    result = await services.otp.verify(CHAT, "123456")
    assert (result.outcome.value, result.attempts_left, result.payload) == ("none", 0, None)
    result = await services.otp.verify_contact(CHAT, PHONE)
    assert (result.outcome.value, result.attempts_left, result.payload) == ("none", 0, None)


@pytest.mark.parametrize("kind", ["lookup", "backend"])
async def test_a_look_up_or_backend_call_prunes_records_past_their_day(
        services: Services, clock: FakeClock, kind: str) -> None:
    allow = services.otp.allow_lookup if kind == "lookup" else services.otp.allow_backend_call
    assert await allow(CHAT)
    clock.advance(86400 + 1)
    assert await allow(CHAT + 1)
    rows = await query(services.db, "SELECT kind, at FROM rate_events ORDER BY at")
    assert [(r["kind"], r["at"]) for r in rows] == [(kind, clock.now)], \
        "the record past its day is gone without waiting for the janitor"


# -- a resend counts under the challenge's own keys ----------------------------------------

async def test_a_resend_is_refused_once_the_participant_is_locked_elsewhere(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    await _issue(services, CHAT, phone="+6281200000999")
    for i in range(services.caps.participant_wrong_daily):
        await _issue(services, 100 + i, phone=f"+62812000001{i:02d}")
        await services.otp.verify(100 + i, _wrong(phone))
    clock.advance(services.otp.resend_seconds)
    sent = len(phone.inbox)
    assert (await services.otp.resend(CHAT)).outcome is SendOutcome.CAP_PARTICIPANT
    assert len(phone.inbox) == sent


async def test_a_resend_counts_against_the_chat_day(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    for i in range(services.caps.chat_daily - 1):
        await _issue(services, CHAT, phone=f"+62812000002{i:02d}")
    clock.advance(services.otp.resend_seconds)
    assert (await services.otp.resend(CHAT)).outcome is SendOutcome.SENT
    clock.advance(services.otp.resend_seconds)
    assert (await services.otp.resend(CHAT)).outcome is SendOutcome.CAP_CHAT
    rows = await query(services.db, "SELECT DISTINCT chat_key FROM rate_events")
    assert [bytes(r["chat_key"]) for r in rows] == [services.vault.chat_key(CHAT)]


async def test_a_replaced_challenge_leaves_no_copy_of_its_payload(
        services: Services, clock: FakeClock, data_dir: Path) -> None:
    await _issue(services, CHAT)
    row = await query_one(services.db, "SELECT payload_ct FROM challenges WHERE chat_id = ?",
                          CHAT)
    assert row is not None
    blob = bytes(row["payload_ct"])
    assert readable([blob], data_dir) == [blob], "the payload is in a file before"
    await _issue(services, CHAT, phone="+6281200000999")  # a new code for another person
    assert readable([blob], data_dir) == [], "the replaced challenge's payload is still there"


async def test_a_code_sent_prunes_codes_and_wrong_codes_past_their_day(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    await _issue(services, CHAT)
    assert (await services.otp.verify(CHAT, _wrong(phone))).outcome.value == "wrong"
    clock.advance(86400 + 1)
    await _issue(services, CHAT + 1, phone="+6281200000999")
    rows = await query(services.db, "SELECT kind, at FROM rate_events ORDER BY at")
    assert [(r["kind"], r["at"]) for r in rows] == [("sms", clock.now)], \
        "the records past their day are gone without waiting for the janitor"


@pytest.mark.parametrize("window", ["hour", "day"])
async def test_strangers_codes_to_a_phone_do_not_stop_the_owner(
        services: Services, clock: FakeClock, window: str) -> None:
    caps = services.caps
    for i in range(caps.phone_hourly if window == "hour" else caps.phone_daily):
        if i == caps.phone_hourly:
            clock.advance(3601)
        await _issue(services, 100 + i, nik=f"31740145069002{i:02d}")
    stranger = await services.otp.issue(CHAT + 1, purpose="add", nik=NIK_A, phone=PHONE,
                                        payload={})
    assert stranger.outcome is SendOutcome.CAP_PHONE
    await _issue(services, CHAT, owner=True)


async def test_an_owner_wrong_code_is_not_locked_by_strangers_wrong_codes(
        services: Services, phone: Phone) -> None:
    for i in range(services.caps.participant_wrong_daily):
        await _issue(services, 100 + i, phone=f"+62812000001{i:02d}")
        await services.otp.verify(100 + i, _wrong(phone))
    await _issue(services, CHAT, owner=True, phone="+6281200000777")
    result = await services.otp.verify(CHAT, _wrong(phone))
    assert (result.outcome.value, result.attempts_left) == (
        "wrong", services.otp.max_attempts - 1)
    assert (await services.otp.verify(CHAT, phone.last_code())).outcome.value == "ok"


async def test_only_a_wrong_code_says_how_many_attempts_are_left(
        services: Services, phone: Phone) -> None:
    """OK, USED and LOCKED (before and after the attempt is counted) carry no count."""
    await _issue(services, CHAT)
    ok = await services.otp.verify(CHAT, phone.last_code())
    assert (ok.outcome.value, ok.attempts_left) == ("ok", 0) and ok.payload is not None
    used = await services.otp.verify(CHAT, phone.last_code())
    assert (used.outcome.value, used.attempts_left, used.payload) == ("used", 0, None)
    cap = services.caps.participant_wrong_daily
    chats = [100 + i for i in range(cap)]
    for i, chat in enumerate(chats):
        await _issue(services, chat, phone=f"+62812000001{i:02d}")
    outcomes = [await services.otp.verify(chat, _wrong(phone)) for chat in chats]
    assert [(r.outcome.value, r.attempts_left) for r in outcomes[-2:]] == [
        ("wrong", services.otp.max_attempts - 1), ("locked", 0)], \
        "locked as the tenth is counted"
    first = await services.otp.verify(chats[0], _wrong(phone))
    assert (first.outcome.value, first.attempts_left) == ("locked", 0), \
        "locked before anything is counted"
