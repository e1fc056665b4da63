"""The code service at its edges (issue 19, found by mutation testing of bot/otp.py):
when "Kirim ulang" is too early and by how much, where a resend goes, how long an accepted
code carries the flow and a sealed step stays open, and which block warns the operator."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from bot.otp import PENDING_TTL, VERIFIED_TTL, SendOutcome
from bot.services import Services
from tests.conftest import NIK_A, PHONE, FakeClock, Phone, ServicesFactory

CHAT = 31


async def _issue(services: Services, chat: int = CHAT) -> None:
    result = await services.otp.issue(chat, purpose="add", nik=NIK_A, phone=PHONE,
                                      payload={"kind": "nik", "value": NIK_A})
    assert result.outcome is SendOutcome.SENT


async def test_a_resend_waits_exactly_its_seconds_and_goes_to_the_same_phone(
        services: Services, clock: FakeClock, phone: Phone) -> None:
    otp = services.otp
    assert (await otp.resend(CHAT)).outcome is SendOutcome.NO_CHALLENGE
    await _issue(services)
    wait = otp.resend_seconds
    clock.advance(10)
    early = await otp.resend(CHAT)
    assert (early.outcome, early.wait_seconds) == (SendOutcome.TOO_EARLY, wait - 10)
    clock.advance(wait - 10 - 0.8)  # 0.8 s to go: "wait 1 second"
    almost = await otp.resend(CHAT)
    assert (almost.outcome, almost.wait_seconds) == (SendOutcome.TOO_EARLY, 1)
    clock.advance(0.8)  # exactly on time
    sent = await otp.resend(CHAT)
    assert sent.outcome is SendOutcome.SENT and sent.phone_tail == PHONE[-4:]
    assert [to for to, _ in phone.inbox] == [PHONE, PHONE]


async def test_a_used_code_cannot_be_resent(services: Services, phone: Phone,
                                            clock: FakeClock) -> None:
    await _issue(services)
    assert (await services.otp.verify(CHAT, phone.last_code())).outcome.value == "ok"
    clock.advance(3600)
    assert (await services.otp.resend(CHAT)).outcome is SendOutcome.NO_CHALLENGE
    assert len(phone.inbox) == 1


async def test_an_accepted_code_carries_the_flow_for_its_whole_time(
        services: Services, phone: Phone, clock: FakeClock) -> None:
    otp = services.otp
    await _issue(services)
    assert await otp.verified_payload(CHAT) is None, "not before the code"
    assert (await otp.verify(CHAT, phone.last_code())).outcome.value == "ok"
    clock.advance(VERIFIED_TTL)
    payload = await otp.verified_payload(CHAT)
    assert payload is not None and payload["value"] == NIK_A, "still, at the very end"
    clock.advance(1)
    assert await otp.verified_payload(CHAT) is None


async def test_a_sealed_step_opens_for_its_whole_time_and_not_without_a_stamp(
        services: Services, clock: FakeClock) -> None:
    otp = services.otp
    sealed = await otp.seal(CHAT, {"step": 1})
    clock.advance(PENDING_TTL)
    assert await otp.unseal(CHAT, sealed) == {"step": 1}
    clock.advance(1)
    assert await otp.unseal(CHAT, sealed) is None
    from bot.otp import _pending_aad

    unstamped = otp.vault.encrypt(json.dumps({"data": {"step": 2}}), _pending_aad(CHAT))
    assert await otp.unseal(CHAT, base64.b64encode(unstamped).decode()) is None, \
        "a step without its time is as old as can be"


async def test_only_the_global_budget_warns_the_operator(
        services_factory: ServicesFactory, caplog: pytest.LogCaptureFixture) -> None:
    services = await services_factory(sms_max_per_hour=1)
    for chat in range(5):  # one phone, five chats: the phone's hour is full
        await services.otp.issue(100 + chat, purpose="add", nik=NIK_A, phone=PHONE,
                                 payload={"kind": "nik", "value": NIK_A}, owner=True)
    with caplog.at_level(logging.WARNING, logger="bot.otp"):
        blocked = await services.otp.issue(200, purpose="add", nik=NIK_A, phone=PHONE,
                                           payload={}, owner=True)
        assert blocked.outcome is SendOutcome.CAP_PHONE
        assert not [r for r in caplog.records if "SMS_MAX_PER_HOUR" in r.getMessage()]
        other = await services.otp.issue(201, purpose="add", nik="3273012304850022",
                                          phone="+6281200000201", payload={})
        assert other.outcome is SendOutcome.CAP_GLOBAL
        assert [r for r in caplog.records if "SMS_MAX_PER_HOUR" in r.getMessage()]
