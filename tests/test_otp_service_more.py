"""The code service, more edges (issue 19, the survivors of mutation testing of bot/otp.py):
an owner's "Kirim ulang" and the check that the chat still holds the account, a challenge
that goes away while a resend is under way, the operator's hourly warning, the look-up
that found no one, the per-chat backend cap, and the label a sealed step is sealed under."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.otp import EXPIRED_GRACE, SendOutcome, new_code
from bot.services import Services
from storage.crypto import VaultError
from tests.conftest import NIK_A, NIK_B, PHONE, FakeClock, Phone
from tests.dbsql import query_one

CHAT = 51
OTHER = 52
PAYLOAD = {"kind": "nik", "value": NIK_A}
#: The label a sealed step is sealed under: steps sealed by the version before an upgrade
#: must still open after it.
PENDING_AAD = b"chat_data|51|pending|payload"
WARNING = ("the hourly SMS budget (SMS_MAX_PER_HOUR) is used up; new codes are refused "
           "until it frees up")


async def _issue(services: Services, chat: int = CHAT, *, owner: bool = False,
                 nik: str = NIK_A, phone: str = PHONE) -> None:
    result = await services.otp.issue(chat, purpose="add", nik=nik, phone=phone,
                                      payload=dict(PAYLOAD), owner=owner)
    assert result.outcome is SendOutcome.SENT


async def _rate_rows(services: Services) -> int:
    row = await query_one(services.db, "SELECT count(*) AS n FROM rate_events")
    assert row is not None
    return int(row["n"])


# -- an owner's resend ---------------------------------------------------------------------

async def test_an_owner_resend_asks_with_the_challenge_payload_and_sends_when_held(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    await _issue(services, owner=True)
    clock.advance(services.otp.resend_seconds)
    asked: list[dict[str, Any]] = []

    async def held(payload: dict[str, Any]) -> bool:
        asked.append(payload)
        return True

    result = await services.otp.resend(CHAT, held=held)
    assert result.outcome is SendOutcome.SENT
    assert asked == [{**PAYLOAD, "phone": PHONE}]
    assert [to for to, _ in phone.inbox] == [PHONE, PHONE]
    assert (await services.otp.verify(CHAT, phone.last_code())).outcome.value == "ok"


@pytest.mark.parametrize("held_answer", [False, None])
async def test_an_owner_resend_for_an_account_no_longer_held_drops_the_challenge(
        services: Services, clock: FakeClock, phone: Phone, held_answer: bool | None) -> None:
    await _issue(services, owner=True)
    await _issue(services, OTHER, owner=True, nik=NIK_B, phone="+6281200000052")
    clock.advance(services.otp.resend_seconds)

    async def not_held(payload: dict[str, Any]) -> bool:
        return False

    result = await services.otp.resend(CHAT, held=None if held_answer is None else not_held)
    assert result.outcome is SendOutcome.NO_CHALLENGE
    assert await services.otp.challenge(CHAT) is None, "the challenge is dropped"
    assert await services.otp.challenge(OTHER) is not None, "another chat's is not"
    assert len(phone.inbox) == 2, "no code went out"


async def test_a_stranger_resend_does_not_ask_whether_the_account_is_held(
        services: Services, clock: FakeClock) -> None:
    await _issue(services)
    clock.advance(services.otp.resend_seconds)

    async def never(payload: dict[str, Any]) -> bool:
        raise AssertionError("asked")

    assert (await services.otp.resend(CHAT, held=never)).outcome is SendOutcome.SENT


# -- a challenge that goes away during a resend --------------------------------------------

async def test_a_challenge_purged_right_after_it_was_read_is_not_resent(
        services: Services, clock: FakeClock, phone: Phone,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await _issue(services)
    clock.advance(services.otp.ttl + EXPIRED_GRACE + 1)  # the janitor's purge is due
    repo = services.otp.repo
    original = repo.get

    async def get_then_purge(chat_id: int) -> Any:
        found = await original(chat_id)
        assert await services.otp.purge() == 1  # the janitor, between two steps
        return found

    monkeypatch.setattr(repo, "get", get_then_purge)
    result = await services.otp.resend(CHAT)
    assert result.outcome is SendOutcome.NO_CHALLENGE
    assert len(phone.inbox) == 1, "no code for a challenge that is gone"


async def test_a_challenge_used_while_its_resend_was_sending_keeps_the_used_code(
        services: Services, clock: FakeClock, phone: Phone,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await _issue(services)
    first = phone.last_code()
    clock.advance(services.otp.resend_seconds)
    original = phone.send

    async def send_while_used(to: str, text: str) -> None:
        assert (await services.otp.verify(CHAT, first)).outcome.value == "ok"
        await original(to, text)

    monkeypatch.setattr(services.otp.sender, "send", send_while_used)
    result = await services.otp.resend(CHAT)
    assert result.outcome is SendOutcome.NO_CHALLENGE
    challenge = await services.otp.challenge(CHAT)
    assert challenge is not None and challenge.consumed_at is not None
    assert challenge.resends == 0, "the used challenge was not given the new code"


# -- what costs what -----------------------------------------------------------------------

async def test_a_look_up_that_found_no_one_records_nothing(
        services: Services, phone: Phone) -> None:
    await _issue(services, OTHER)
    before = await _rate_rows(services)
    assert before == 1
    for _ in range(services.caps.chat_daily + 1):
        await services.otp.as_if_issued(CHAT, NIK_A)
    assert await _rate_rows(services) == before
    await _issue(services)  # the chat's day is untouched
    assert len(phone.inbox) == 2


async def test_the_backend_cap_is_per_chat(services: Services) -> None:
    for _ in range(services.caps.backend_hourly):
        assert await services.otp.allow_backend_call(CHAT)
    assert not await services.otp.allow_backend_call(CHAT)
    assert await services.otp.allow_backend_call(OTHER), "another chat has its own hour"


# -- the sealed step's label ---------------------------------------------------------------

async def test_a_sealed_step_is_sealed_under_its_fixed_label(services: Services) -> None:
    otp = services.otp
    sealed = await otp.seal(CHAT, {"step": 1})
    stamped = json.loads(await otp.repo.unseal(CHAT, base64.b64decode(sealed), PENDING_AAD))
    assert stamped["data"] == {"step": 1}
    with pytest.raises(VaultError):  # under the chat's own key, not the master key
        otp.vault.decrypt(base64.b64decode(sealed), PENDING_AAD)
    older = otp.vault.encrypt(json.dumps({"data": {"step": 2}, "at": otp.clock()}),
                              PENDING_AAD)
    assert await otp.unseal(CHAT, base64.b64encode(older).decode("ascii")) == {"step": 2}
    assert await otp.unseal(OTHER, sealed) is None, "not another chat's"


# -- what a failed or refused send leaves ---------------------------------------------------

def _refused(cap: str) -> float:
    value = REGISTRY.get_sample_value("kk_sms_refused_total", {"cap": cap})
    return value or 0.0


async def test_a_refused_code_is_counted_under_its_cap(services: Services) -> None:
    for _ in range(services.caps.phone_hourly):
        await _issue(services, CHAT)
    before = _refused("cap_phone"), _refused("cap_chat")
    blocked = await services.otp.issue(OTHER, purpose="add", nik=NIK_A, phone=PHONE,
                                       payload={})
    assert blocked.outcome is SendOutcome.CAP_PHONE
    assert (_refused("cap_phone"), _refused("cap_chat")) == (before[0] + 1, before[1])


async def test_a_failed_sms_is_logged_by_its_kind_only(
        services: Services, phone: Phone, caplog: pytest.LogCaptureFixture) -> None:
    phone.fail_next = 1
    with caplog.at_level(logging.WARNING, logger="bot.otp"):
        result = await services.otp.issue(CHAT, purpose="add", nik=NIK_A, phone=PHONE,
                                          payload={})
    assert result.outcome is SendOutcome.SMS_FAILED
    assert [r.getMessage() for r in caplog.records if r.name == "bot.otp"] == [
        "OTP SMS failed: SmsError"]


async def test_an_sms_gateway_that_never_answers_is_given_up_on(
        services: Services, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("bot.otp.SMS_TIMEOUT", 0.05)

    async def hangs(to: str, text: str) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(services.otp.sender, "send", hangs)
    with caplog.at_level(logging.WARNING, logger="bot.otp"):
        result = await asyncio.wait_for(services.otp.issue(
            CHAT, purpose="add", nik=NIK_A, phone=PHONE, payload={}), 10)
    assert result.outcome is SendOutcome.SMS_FAILED
    assert await services.otp.challenge(CHAT) is None
    assert [r.getMessage() for r in caplog.records if r.name == "bot.otp"] == [
        "OTP SMS failed: TimeoutError"]


async def test_only_a_used_up_budget_warns_before_a_look_up(
        services: Services, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.otp"):
        assert await services.otp.blocked_for_chat(CHAT) is None
        for i in range(services.caps.chat_daily):
            await _issue(services, CHAT, nik=NIK_B, phone=f"+62812000003{i:02d}")
        assert await services.otp.blocked_for_chat(CHAT) is SendOutcome.CAP_CHAT
    assert [r for r in caplog.records if r.name == "bot.otp"] == []


def test_a_code_is_six_digits_from_the_smallest_to_the_largest_draw(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.otp.secrets.randbelow", lambda n: n - 1)
    assert new_code() == "999999"
    monkeypatch.setattr("bot.otp.secrets.randbelow", lambda n: 0)
    assert new_code() == "000000"
