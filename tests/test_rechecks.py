"""The re-checks after the code is accepted (issue 19, class 4).

Nothing of the participant is kept before the code; once it is accepted the bot looks the
participant up again and saves only if they are still there and the code went to the
phone BPJS still has. Each check here fails if that second look-up, or either half of
its condition, is dropped.
"""

from __future__ import annotations

from typing import Any

from bot import texts
from bot.devtools.harness import EmulatedChat
from bot.services import Services
from tests.conftest import NIK_A, FastSandbox, Phone, consent


async def _code_accepted(chat: EmulatedChat, phone: Phone, nik: str = NIK_A) -> str:
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(nik)
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply, chat.reply
    sent_to = phone.inbox[-1][0]
    await chat.send(phone.last_code())
    assert "Kode benar" in chat.reply, chat.reply
    return sent_to


async def _nothing_saved(chat: EmulatedChat, services: Services) -> None:
    assert await services.accounts.list(chat.chat_id) == []
    assert await services.otp.challenge(chat.chat_id) is None, "the verified challenge is gone"
    await chat.send("KK Baru")  # the label step is over: a second label saves nothing either
    assert await services.accounts.list(chat.chat_id) == []


async def test_a_phone_changed_between_the_code_and_the_label_saves_nothing(
        chat: EmulatedChat, phone: Phone, services: Services, backend: FastSandbox) -> None:
    sent_to = await _code_accepted(chat, phone)
    new_phone = "+6281299990000"
    assert sent_to != new_phone
    backend.changed[NIK_A] = {"phone": new_phone}
    lookups = backend.lookups
    await chat.send("KK Saya")
    assert backend.lookups == lookups + 1, "the participant is looked up again"
    assert chat.reply.startswith(texts.PHONE_CHANGED), chat.reply
    await _nothing_saved(chat, services)


async def test_a_participant_gone_between_the_code_and_the_label_saves_nothing(
        chat: EmulatedChat, phone: Phone, services: Services, backend: FastSandbox) -> None:
    await _code_accepted(chat, phone)

    async def gone(identifier: Any) -> Any:
        backend.lookups += 1
        return None

    backend.lookup = gone  # type: ignore[method-assign]
    await chat.send("KK Saya")
    assert chat.reply.startswith(texts.PHONE_CHANGED), chat.reply
    await _nothing_saved(chat, services)


async def test_the_saved_account_holds_what_bpjs_says_after_the_code(
        chat: EmulatedChat, phone: Phone, services: Services, backend: FastSandbox) -> None:
    """The phone is the same, other fields changed: what is saved is the second look-up."""
    sent_to = await _code_accepted(chat, phone)
    backend.changed[NIK_A] = {"phone": sent_to, "name": "SITI BARU", "class_text": "KELAS I"}
    await chat.send("KK Saya")
    assert "Tersimpan" in chat.reply, chat.reply
    (account,) = await services.accounts.list(chat.chat_id)
    assert account.name == "SITI BARU" and account.phone == sent_to
    assert account.status["class_text"] == "KELAS I"
