"""The add / re-verify rules of bot/enrolment.py, without Telegram: the real services over
a real SQLite file, the sandbox BPJS (counting its look-ups) and the recording phone."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.enrolment import (
    AlreadyCached,
    AskEviction,
    AskLabel,
    BackendDown,
    Blocked,
    CannotSend,
    CodeSent,
    Enrolment,
    Expired,
    Gone,
    LabelProblem,
    PendingStep,
    Purpose,
    Refused,
    Reverified,
    Saved,
    SaveProblem,
    SendFailed,
    Switched,
    clean_label,
)
from bot.identity import Identifier, IdKind
from bot.jkn.sandbox import SandboxBackend
from bot.otp import SendOutcome, VerifyOutcome
from bot.services import Services
from storage.chat_keys import ChatKeys
from storage.crypto import Vault
from tests.conftest import (
    CARD_A,
    NIK_A,
    NIK_B,
    NIK_C,
    NIK_D,
    FakeClock,
    FastSandbox,
    Phone,
    new,
)
from tests.test_timing import Counter, block

CHAT = 501
NOT_FOUND = "3174014506900000"
NO_PHONE = "3174014506900002"
FIXTURE = Path(__file__).parent / "fixtures" / "pending_v1.json"


def nik(value: str) -> Identifier:
    return Identifier(IdKind.NIK, value)


async def fill(services: Services, *niks: str) -> list[Any]:
    for i, value in enumerate(niks):
        await services.accounts.repo.add(CHAT, new(value, f"KK {i}"), max_accounts=3,
                                         now=services.clock() - 100 + i)
    return await services.accounts.list(CHAT)


async def enrol(services: Services, phone: Phone, typed: Identifier) -> Saved:
    """The whole add, as the conversation drives it."""
    sent = await services.enrolment.begin(CHAT, typed)
    assert isinstance(sent, CodeSent), sent
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    saved = await services.enrolment.save(CHAT, "Ibu")
    assert isinstance(saved, Saved), saved
    return saved


# -- before the look-up -----------------------------------------------------------------

async def test_a_full_cache_asks_which_account_goes_before_any_look_up(
        services: Services, backend: FastSandbox, phone: Phone) -> None:
    accounts = await fill(services, NIK_A, NIK_B, NIK_C)
    asked = await services.enrolment.begin(CHAT, nik(NIK_D))
    assert isinstance(asked, AskEviction) and asked.step.evict is None
    assert [a.slot for a in asked.accounts] == [a.slot for a in accounts]
    assert backend.lookups == 0 and phone.inbox == []
    assert await services.enrolment.choose_eviction(CHAT, asked.step, "forged") is None
    chosen = await services.enrolment.choose_eviction(CHAT, asked.step, accounts[1].slot)
    assert chosen is not None and chosen.evict == accounts[1].slot
    assert backend.lookups == 0 and phone.inbox == []
    sent = await services.enrolment.send_code(CHAT, chosen)
    assert isinstance(sent, CodeSent) and backend.lookups == 1


async def test_a_held_nik_switches_without_asking_bpjs_and_an_expired_one_re_verifies(
        services: Services, backend: FastSandbox, clock: FakeClock) -> None:
    accounts = await fill(services, NIK_A, NIK_B)
    switched = await services.enrolment.begin(CHAT, nik(NIK_A))
    assert isinstance(switched, Switched) and switched.account.nik == NIK_A
    assert [a.active for a in await services.accounts.list(CHAT) if a.nik == NIK_A] == [True]
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_B))
    assert isinstance(expired, Expired)
    assert expired.step == PendingStep(Purpose.REVERIFY, IdKind.NIK, NIK_B,
                                       slot=accounts[1].slot)
    assert backend.lookups == 0


async def test_the_chat_caps_refuse_before_the_look_up(
        services_factory: Callable[..., Any], backend: FastSandbox, phone: Phone) -> None:
    services: Services = await services_factory(sms_max_per_hour=1)
    await enrol(services, phone, nik(NIK_A))  # the hour's one code
    lookups = backend.lookups
    refused = await services.enrolment.begin(CHAT, nik(NIK_B))
    assert refused == Blocked(SendOutcome.CAP_GLOBAL)
    assert backend.lookups == lookups and len(phone.inbox) == 1


async def test_the_daily_look_up_cap_refuses_before_the_look_up(
        services: Services, backend: FastSandbox) -> None:
    for _ in range(services.caps.lookups_daily):
        assert isinstance(await services.enrolment.begin(CHAT, nik(NOT_FOUND)), CannotSend)
    assert await services.enrolment.begin(CHAT, nik(NOT_FOUND)) == Blocked(None)
    assert backend.lookups == services.caps.lookups_daily


# -- what a stranger learns -------------------------------------------------------------

async def test_not_found_no_phone_locked_and_out_of_codes_read_alike_and_cost_the_same(
        services: Services, phone: Phone) -> None:
    await block(services)  # NIK_A locked (ten wrong codes), NIK_B's phone had ten codes
    counter = Counter(services)
    costs = {}
    for typed in (NOT_FOUND, NO_PHONE, NIK_A, NIK_B):
        before = counter.count
        assert isinstance(await services.enrolment.begin(CHAT, nik(typed)), CannotSend), typed
        costs[typed] = counter.count - before
    assert len(set(costs.values())) == 1, costs
    assert phone.inbox == []


async def test_a_failed_sms_reads_like_not_found_to_a_stranger_but_not_to_the_owner(
        services: Services, phone: Phone, clock: FakeClock) -> None:
    phone.fail_next = 1
    assert isinstance(await services.enrolment.begin(CHAT, nik(NIK_A)), CannotSend)
    await fill(services, NIK_B)
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_B))
    assert isinstance(expired, Expired)
    phone.fail_next = 1
    failed = await services.enrolment.send_code(CHAT, expired.step)
    assert failed == SendFailed(expired.step, None)
    assert isinstance(await services.enrolment.send_code(CHAT, expired.step), CodeSent)


async def test_a_backend_outage_asks_an_adder_again_and_ends_a_re_verification(
        services: Services, backend: FastSandbox, clock: FakeClock) -> None:
    backend.down = True
    down = await services.enrolment.begin(CHAT, nik(NIK_A))
    assert down == BackendDown(False, True, PendingStep(Purpose.ADD, IdKind.NIK, NIK_A)), (
        "an adder is asked again, with the step kept for 🔁 Coba lagi")
    await fill(services, NIK_B)
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_B))
    assert isinstance(expired, Expired)
    assert await services.enrolment.send_code(CHAT, expired.step) == BackendDown(False, False)


async def test_a_participant_without_a_nik_is_found_counted_and_saved_by_card(
        services: Services, backend: FastSandbox, phone: Phone,
        monkeypatch: pytest.MonkeyPatch) -> None:
    issued: list[str] = []
    issue = services.otp.issue

    async def spy(chat_id: int, **kwargs: Any) -> Any:
        issued.append(kwargs["nik"])
        return await issue(chat_id, **kwargs)

    monkeypatch.setattr(services.otp, "issue", spy)
    backend.changed[CARD_A] = {"nik": ""}
    saved = await enrol(services, phone, Identifier(IdKind.CARD, CARD_A))
    assert issued == [CARD_A], "the caps count them by their card"
    assert (saved.account.nik, saved.account.card) == ("", CARD_A)


# -- the owner's allowance ----------------------------------------------------------------

async def test_the_owner_allowance_is_re_checked_at_every_step(
        services: Services, backend: FastSandbox, phone: Phone, clock: FakeClock) -> None:
    accounts = await fill(services, NIK_A)
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_A))
    assert isinstance(expired, Expired)
    # removed before "Kirim kode": no look-up, no SMS
    await services.accounts.remove(CHAT, accounts[0].slot)
    assert await services.enrolment.send_code(CHAT, expired.step) == Gone()
    assert backend.lookups == 0 and phone.inbox == []
    # removed while BPJS answered: no SMS
    accounts = await fill(services, NIK_A)
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_A))
    assert isinstance(expired, Expired)

    async def remove_meanwhile() -> None:
        await services.accounts.remove(CHAT, accounts[0].slot)

    assert await services.enrolment.send_code(CHAT, expired.step, remove_meanwhile) == Gone()
    assert backend.lookups == 1 and phone.inbox == []
    # removed after the code went out: Kirim ulang sends nothing and drops the challenge
    accounts = await fill(services, NIK_A)
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_A))
    assert isinstance(expired, Expired)
    assert isinstance(await services.enrolment.send_code(CHAT, expired.step), CodeSent)
    await services.accounts.remove(CHAT, accounts[0].slot)
    clock.advance(services.otp.resend_seconds + 1)
    assert (await services.enrolment.resend(CHAT)).outcome is SendOutcome.NO_CHALLENGE
    assert len(phone.inbox) == 1 and await services.otp.challenge(CHAT) is None


async def test_a_re_verified_account_is_renewed_and_chosen(
        services: Services, phone: Phone, clock: FakeClock) -> None:
    accounts = await fill(services, NIK_A, NIK_B)
    clock.advance(31 * 86400)
    expired = await services.enrolment.begin(CHAT, nik(NIK_A))
    assert isinstance(expired, Expired)
    assert isinstance(await services.enrolment.send_code(CHAT, expired.step), CodeSent)
    done = await services.enrolment.verify_code(CHAT, phone.last_code())
    assert isinstance(done, Reverified) and done.account.slot == accounts[0].slot
    assert services.accounts.is_fresh(done.account) and done.account.active


# -- after the code -----------------------------------------------------------------------

async def test_wrong_codes_are_counted_and_the_last_one_drops_the_challenge(
        services: Services, phone: Phone) -> None:
    assert isinstance(await services.enrolment.begin(CHAT, nik(NIK_A)), CodeSent)
    wrong = "000000" if phone.last_code() != "000000" else "111111"
    for left in range(services.otp.max_attempts - 1, 0, -1):
        refused = await services.enrolment.verify_code(CHAT, wrong)
        assert isinstance(refused, Refused)
        assert (refused.result.outcome, refused.result.attempts_left) == (
            VerifyOutcome.WRONG, left)
    last = await services.enrolment.verify_code(CHAT, wrong)
    assert isinstance(last, Refused) and last.result.outcome is VerifyOutcome.EXHAUSTED
    assert await services.otp.challenge(CHAT) is None


async def test_saving_looks_the_participant_up_again_and_keeps_what_bpjs_says_then(
        services: Services, backend: FastSandbox, phone: Phone) -> None:
    assert isinstance(await services.enrolment.begin(CHAT, nik(NIK_A)), CodeSent)
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    backend.changed[NIK_A] = {"name": "NAMA BARU"}
    saved = await services.enrolment.save(CHAT, "Ibu")
    assert isinstance(saved, Saved) and backend.lookups == 2
    assert (await services.accounts.list(CHAT))[0].name == "NAMA BARU"


@pytest.mark.parametrize("change", [{"phone": "+6281299990000"}, "gone"])
async def test_a_phone_changed_or_a_participant_gone_after_the_code_saves_nothing(
        services: Services, backend: FastSandbox, phone: Phone,
        monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    assert isinstance(await services.enrolment.begin(CHAT, nik(NIK_A)), CodeSent)
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    if change == "gone":
        async def nobody(typed: Identifier) -> None:
            return None
        monkeypatch.setattr(services.enrolment, "_find", nobody)
    else:
        backend.changed[NIK_A] = change
    assert await services.enrolment.save(CHAT, "Ibu") is SaveProblem.PHONE_CHANGED
    assert await services.accounts.list(CHAT) == []
    assert await services.otp.challenge(CHAT) is None


async def test_a_save_during_an_outage_can_be_tried_again(
        services: Services, backend: FastSandbox, phone: Phone) -> None:
    assert isinstance(await services.enrolment.begin(CHAT, nik(NIK_A)), CodeSent)
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    backend.down = True
    assert await services.enrolment.save(CHAT, "Ibu") is SaveProblem.BACKEND_DOWN
    backend.down = False
    assert isinstance(await services.enrolment.save(CHAT, "Ibu"), Saved)


async def test_the_agreed_eviction_happens_with_the_insert(
        services: Services, phone: Phone) -> None:
    accounts = await fill(services, NIK_A, NIK_B, NIK_C)
    asked = await services.enrolment.begin(CHAT, nik(NIK_D))
    assert isinstance(asked, AskEviction)
    chosen = await services.enrolment.choose_eviction(CHAT, asked.step, accounts[2].slot)
    assert chosen is not None  # the newest one: the user's choice, not the oldest
    assert isinstance(await services.enrolment.send_code(CHAT, chosen), CodeSent)
    assert await services.accounts.list(CHAT) == accounts, "nothing evicted before the code"
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    saved = await services.enrolment.save(CHAT, "Ibu")
    assert isinstance(saved, Saved) and saved.evicted is not None
    assert saved.evicted.slot == accounts[2].slot
    assert {a.nik for a in await services.accounts.list(CHAT)} == {NIK_A, NIK_B, NIK_D}


async def test_a_participant_added_meanwhile_is_switched_to_not_added_twice(
        services: Services, phone: Phone) -> None:
    assert isinstance(await services.enrolment.begin(CHAT, nik(NIK_A)), CodeSent)
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    await fill(services, NIK_A)
    saved = await services.enrolment.save(CHAT, "Ibu")
    assert isinstance(saved, AlreadyCached) and saved.account is not None
    assert len(await services.accounts.list(CHAT)) == 1


def test_labels_are_cleaned_and_identifiers_refused() -> None:
    assert clean_label("  Ibu\u200b  Siti\n") == ("Ibu Siti", None)
    assert clean_label(" \t") == ("", LabelProblem.EMPTY)
    assert clean_label("x" * 33)[1] is LabelProblem.TOO_LONG
    assert clean_label("KK 3174 0145 0690 0011")[1] is LabelProblem.LOOKS_LIKE_ID


# -- the pending step: one type, sealed in one place, versioned -------------------------

def test_a_step_round_trips_and_refuses_what_it_cannot_read() -> None:
    step = PendingStep(Purpose.ADD, IdKind.NIK, NIK_A, evict="abc")
    assert PendingStep.from_dict(json.loads(json.dumps(step.to_dict()))) == step
    assert step.to_dict()["v"] == PendingStep.VERSION
    owner = PendingStep(Purpose.REVERIFY, IdKind.CARD, CARD_A, slot="s1", phone="+62811")
    assert PendingStep.from_dict(owner.to_dict()) == owner
    assert PendingStep.from_dict({**step.to_dict(), "v": 99}) is None, "a newer release's"
    assert PendingStep.from_dict({"purpose": "add", "kind": "nik"}) is None
    assert PendingStep.from_dict({"purpose": "x", "kind": "nik", "value": NIK_A}) is None
    assert PendingStep.from_dict({"purpose": "reverify", "kind": "nik", "value": NIK_A}) \
        is None, "a re-verification names its account"


def fixture_services(services: Services, clock: FakeClock) -> tuple[dict[str, Any], Enrolment]:
    """The enrolment service under the key the fixture was written with, a minute later.
    The step was sealed under that master key (before per-chat keys): it still opens, the
    key being chosen by the ciphertext's header."""
    old = json.loads(FIXTURE.read_text())
    services.otp.vault = Vault(base64.b64decode(old["master_key_b64"]))
    services.otp.repo.keys = ChatKeys(services.otp.vault)
    clock.now = old["clock_when_sealed"] + 60
    return old, services.enrolment


async def test_steps_sealed_by_the_previous_release_still_load(
        services: Services, clock: FakeClock) -> None:
    old, enrolment = fixture_services(services, clock)
    chat = old["chat_id"]
    step = await enrolment.kept(old["chat_data_row"], chat)
    assert step == PendingStep(Purpose.ADD, IdKind.NIK, NIK_D, evict=old["evict_slot"])
    assert await enrolment.kept(old["chat_data_row"], chat + 1) is None, "bound to its chat"
    assert PendingStep.from_dict(old["challenge_add"]) == dataclasses.replace(
        step, phone=old["challenge_add"]["phone"])
    assert PendingStep.from_dict(old["challenge_reverify"]) == PendingStep(
        Purpose.REVERIFY, IdKind.NIK, NIK_A, slot=old["reverify_slot"],
        phone=old["challenge_reverify"]["phone"])
    clock.advance(1800)
    assert await enrolment.kept(old["chat_data_row"], chat) is None, "older than PENDING_TTL"


async def test_a_challenge_written_by_the_previous_release_verifies_and_saves(
        services: Services, phone: Phone) -> None:
    old = json.loads(FIXTURE.read_text())
    payload = {k: v for k, v in old["challenge_add"].items() if k not in ("phone", "evict")}
    participant = SandboxBackend().participant(nik(NIK_D))
    assert participant.phone == old["challenge_add"]["phone"]
    await services.otp.issue(CHAT, purpose="add", nik=NIK_D, phone=participant.phone,
                             payload=payload)
    assert "v" not in (await services.otp.challenge(CHAT)).payload  # type: ignore[union-attr]
    assert isinstance(await services.enrolment.verify_code(CHAT, phone.last_code()), AskLabel)
    saved = await services.enrolment.save(CHAT, "Mertua")
    assert isinstance(saved, Saved) and saved.account.nik == NIK_D
