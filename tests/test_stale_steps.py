"""Issue #18 item 7: a stale button grants nothing.

Every step of a re-verification (Kirim kode after an SMS failure, Kirim ulang, the code
itself) re-checks that the chat still holds the account before the owner's allowance is
used, and /hapus_kk and /hapus_data clear a sealed step about it."""

from __future__ import annotations

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from tests.conftest import NIK_A, NIK_B, FakeClock, FastSandbox, Phone, add_account, consent

GONE = "Verifikasi ini sudah berakhir"


async def stale_send_code(chat: EmulatedChat, phone: Phone, clock: FakeClock) -> None:
    """A re-verification whose SMS failed: the sealed "Kirim kode" waits (CONFIRM)."""
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    clock.advance(31 * 86400)
    phone.fail_next = 1
    await chat.send("/akun")
    await chat.tap("Ibu")
    assert "SMS belum bisa dikirim" in chat.last_text and "Kirim kode" in chat.buttons


async def test_send_code_for_an_account_removed_meanwhile_sends_nothing(
        chat: EmulatedChat, phone: Phone, clock: FakeClock, services: Services,
        backend: FastSandbox) -> None:
    await stale_send_code(chat, phone, clock)
    (ibu,) = [a for a in await services.accounts.list(1001) if a.label == "Ibu"]
    assert await services.accounts.remove(1001, ibu.slot) is not None  # not via /hapus_kk
    sent, asked = len(phone.inbox), backend.lookups
    await chat.tap("Kirim kode")
    assert GONE in chat.reply, chat.reply
    assert len(phone.inbox) == sent, "no SMS on the owner's allowance"
    assert backend.lookups == asked, "not even a look-up"
    assert await services.otp.challenge(1001) is None


async def test_resend_for_an_account_removed_meanwhile_sends_nothing(
        chat: EmulatedChat, phone: Phone, clock: FakeClock, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    clock.advance(31 * 86400)
    await chat.send("/akun")
    await chat.tap("Ibu")
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply
    (ibu,) = await services.accounts.list(1001)
    assert await services.accounts.repo.remove(1001, ibu.slot)  # the challenge stays
    assert await services.otp.challenge(1001) is not None
    clock.advance(120)
    sent = len(phone.inbox)
    await chat.tap("Kirim ulang")
    assert len(phone.inbox) == sent, "no new code for an account the chat no longer holds"
    assert await services.otp.challenge(1001) is None
    assert "Tidak ada kode OTP yang menunggu" in chat.reply


async def test_hapus_kk_and_hapus_data_clear_a_sealed_step(
        bot: BotHarness, phone: Phone, clock: FakeClock, services: Services) -> None:
    for chat_id, erase in ((1001, False), (1002, True)):
        chat = bot.chat(chat_id)
        await stale_send_code(chat, phone, clock)
        stale = chat.last_message
        assert bot.app is not None and "pending" in bot.app.chat_data[chat_id]
        if erase:
            await chat.send("/hapus_data")
            await chat.tap("Ya, hapus semua")
        else:
            await chat.send("/hapus_kk")
            await chat.tap("Ibu")
            await chat.tap("Ya, hapus")
        assert bot.app is not None and "pending" not in bot.app.chat_data.get(chat_id, {})
        sent = len(phone.inbox)
        answer = await chat.tap("Kirim kode", message=stale)
        if erase:  # the conversation ended with the erase: the button is simply stale
            assert answer is not None and answer["text"] == "Tombol ini sudah tidak berlaku."
        else:
            assert GONE in chat.reply, chat.reply
        assert len(phone.inbox) == sent
