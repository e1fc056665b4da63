"""Sends whose outcome is not known are never released for a second send (issue 19,
class 6): a reminder whose answer was lost or that ended in an error that is not
Telegram's, a code whose SMS may have gone out, a notice whose answer was lost. Only a
send that certainly never left (a refused connection, Telegram's refusal) is released.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.devtools.emulator import Fault
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.otp import SendOutcome
from bot.reminders import Notice
from bot.services import Services
from bot.sms.base import SmsError
from tests.conftest import NIK_A, PHONE, Phone, add_account, consent
from tests.dbsql import query, query_one
from tests.test_faults import once
from tests.test_reminders import ARREARS_NIK, FakeTime, opt_in, pace, reminders_in, round_on

__all__ = ["pace"]  # the fixture, imported for these tests
DAY = date(2026, 11, 7)  # inside the arrears days: the sandbox participant owes


async def _log_state(services: Services, chat_id: int) -> list[str]:
    return [str(r["state"]) for r in await query(
        services.db, "SELECT state FROM reminder_log WHERE chat_id = ? AND day = ?",
        chat_id, DAY.isoformat())]


async def _opted_in(chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, ARREARS_NIK, "Nunggak")
    await opt_in(chat, "Nunggak")


@pytest.mark.parametrize("fault", [Fault.LOST, Fault.SERVER])
async def test_a_reminder_whose_answer_is_unknown_is_not_sent_again_that_day(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        pace: FakeTime, fault: Fault) -> None:
    await _opted_in(chat, phone)
    bot.emulator.faults = once(fault, "sendMessage")
    first = await round_on(bot, services, DAY)
    assert (first.sent, first.failed) == (0, 1)
    assert len(reminders_in(chat)) == 1, "it did reach the chat"
    assert await _log_state(services, chat.chat_id) == ["sending"], "the claim is kept"
    bot.emulator.faults = None
    second = await round_on(bot, services, DAY)
    assert (second.sent, second.already) == (0, 1)
    assert len(reminders_in(chat)) == 1, "not twice"


async def test_a_reminder_that_ends_in_an_error_not_from_telegram_is_not_sent_again(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        pace: FakeTime) -> None:
    await _opted_in(chat, phone)
    tried: list[int] = []

    async def broken(notice: Notice) -> bool:
        tried.append(notice.chat_id)
        raise OSError("connection reset after the request was written")

    first = await services.reminders.run_round(DAY, broken)
    assert (first.sent, first.failed, tried) == (0, 1, [chat.chat_id])
    assert await _log_state(services, chat.chat_id) == ["sending"]
    second = await services.reminders.run_round(DAY, broken)
    assert (second.already, tried) == (1, [chat.chat_id]), "no second try that day"


async def test_a_reminder_that_never_left_is_released_and_sent_later_that_day(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        pace: FakeTime) -> None:
    await _opted_in(chat, phone)
    bot.emulator.faults = lambda method: Fault.REFUSED if method == "sendMessage" else None
    first = await round_on(bot, services, DAY)
    assert (first.sent, first.failed) == (0, 1)
    assert reminders_in(chat) == []
    assert await _log_state(services, chat.chat_id) == [], "released"
    bot.emulator.faults = None
    second = await round_on(bot, services, DAY)
    assert second.sent == 1 and len(reminders_in(chat)) == 1
    assert await _log_state(services, chat.chat_id) == ["sent"]


class Sender:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.sent = 0

    async def send(self, phone_e164: str, message: str) -> None:
        self.sent += 1
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        pass


async def _sms_records(services: Services) -> int:
    row = await query_one(services.db, "SELECT count(*) AS n FROM rate_events WHERE kind = 'sms'")
    return int(row["n"]) if row else -1


@pytest.mark.parametrize(("error", "counts"), [
    (SmsError("gateway answered 502 after the request", maybe_delivered=True), 1),
    (TimeoutError(), 1),
    (SmsError("connection refused"), 0),
], ids=["maybe-delivered", "timeout", "never-left"])
async def test_a_code_whose_sms_may_have_gone_out_still_counts(
        services: Services, error: BaseException, counts: int) -> None:
    sender = Sender(error)
    services.otp.sender = sender
    result = await services.otp.issue(7, purpose="add", nik=NIK_A, phone=PHONE,
                                      payload={"kind": "nik", "value": NIK_A})
    assert result.outcome is SendOutcome.SMS_FAILED and sender.sent == 1
    assert await _sms_records(services) == counts
    assert await services.otp.challenge(7) is None, "no code to check"


async def test_a_code_whose_send_ends_in_an_unexpected_error_still_counts(
        services: Services) -> None:
    services.otp.sender = Sender(RuntimeError("a bug in a gateway client"))
    for i in range(5):
        with pytest.raises(RuntimeError):
            await services.otp.issue(10 + i, purpose="add", nik=NIK_A, phone=PHONE,
                                     payload={"kind": "nik", "value": NIK_A})
    assert await _sms_records(services) == 5
    services.otp.sender = Sender(None)
    sixth = await services.otp.issue(20, purpose="add", nik=NIK_A, phone=PHONE,
                                     payload={"kind": "nik", "value": NIK_A})
    assert sixth.outcome is SendOutcome.CAP_PHONE, "five that may have gone out fill the hour"


async def test_a_code_notice_whose_answer_is_lost_is_not_sent_again(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    sent: list[Any] = []

    def lose_the_notice(method: str) -> Fault | None:
        if method in ("sendMessage", "editMessageText") and phone.inbox and not sent:
            sent.append(method)
            return Fault.LOST
        return None

    bot.emulator.faults = lose_the_notice
    await chat.send(NIK_A)
    assert sent, "a fault was injected"
    notices = [m for m in chat.bot_messages if "Kode OTP 6 angka sudah dikirim" in m.text]
    assert len(notices) == 1, "it reached the chat once and was not sent again"
    assert len(phone.inbox) == 1, "one SMS"
    assert await services.otp.challenge(chat.chat_id) is not None, "the code still works"
