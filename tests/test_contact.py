"""Verification by sharing one's own Telegram number instead of typing the SMS code
(issue 15): accepted only when the contact is the user's own and its number is the phone on
file; anything else is a wrong attempt that changes nothing else."""

from __future__ import annotations

import pytest

from bot.devtools.harness import EmulatedChat
from bot.services import Services
from handlers.tambah_kk import ASK_ID, ASK_LABEL, ASK_OTP, CONFIRM
from tests.conftest import (
    NIK_A,
    NIK_B,
    NIK_C,
    NIK_D,
    FakeClock,
    Phone,
    ServicesFactory,
    add_account,
    consent,
    restart,
    start_bot,
)
from tests.test_e2e_flows import labels_and_active, state_on_disk

BUTTON = "📱 Pakai nomor Telegram saya"
MATCHED = "Nomor Telegram Anda cocok"
NOT_NOW = "Kontak hanya dipakai untuk verifikasi"


def as_telegram_sends(e164: str) -> str:
    """Telegram puts the international number in a contact without the "+"."""
    return e164.lstrip("+")


async def ask_code(chat: EmulatedChat, phone: Phone, identifier: str = NIK_A) -> str:
    """/tambah_kk up to the OTP notice; returns the number the SMS went to (E.164)."""
    await chat.send("/tambah_kk")
    await chat.send(identifier)
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply, chat.reply
    return phone.inbox[-1][0]


async def test_a_card_is_added_by_sharing_ones_own_number_with_no_code_typed(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    on_file = await ask_code(chat, phone)
    notice = chat.reply
    assert BUTTON in [b["text"] for b in chat.reply_keyboard]
    assert chat.reply_keyboard[0].get("request_contact") is True
    assert f"berakhiran {on_file[-4:]}" in notice and on_file not in notice
    assert chat.buttons == ["Kirim ulang", "Batal"], "the inline buttons stay"

    shared = await chat.share_contact(as_telegram_sends(on_file))
    assert shared.deleted, "the contact message is deleted like a code"
    assert MATCHED in chat.reply and "Beri nama" in chat.reply
    assert on_file not in chat.reply and as_telegram_sends(on_file) not in chat.reply
    assert chat.reply_keyboard == [], "the 📱 keyboard is taken away"
    assert chat.buttons == ["KK Saya", "KK Orang Tua", "KK Mertua", "Batal"]
    await chat.tap("KK Mertua")
    assert "Tersimpan" in chat.reply
    assert await labels_and_active(services, chat.chat_id) == [("KK Mertua", True)]

    await chat.send("/tambah_kk")
    await chat.send(phone.last_code())  # the unread SMS code: the challenge is spent
    assert "Kode benar" not in chat.reply
    assert len(await services.accounts.list(chat.chat_id)) == 1


@pytest.mark.parametrize("form", ["telegram", "plus", "national", "spaced"])
async def test_every_way_of_writing_the_same_number_is_the_same_number(
        form: str, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    on_file = await ask_code(chat, phone)
    written = {"telegram": as_telegram_sends(on_file), "plus": on_file,
               "national": "0" + on_file[3:],
               "spaced": f"+62 {on_file[3:6]}-{on_file[6:10]}-{on_file[10:]}"}[form]
    await chat.share_contact(written)
    assert MATCHED in chat.reply
    await chat.tap("KK Saya")
    assert await labels_and_active(services, chat.chat_id) == [("KK Saya", True)]


FORGED = {
    # the right number, but the card is not the sender's own: no user id, or another's
    "no user id": dict(own=False, contact_user_id=None),
    "another user's id": dict(own=False, contact_user_id=4242),
}


@pytest.mark.parametrize("forgery", sorted(FORGED))
async def test_someone_elses_contact_with_the_number_on_file_is_a_wrong_attempt(
        forgery: str, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    on_file = await ask_code(chat, phone)
    shared = await chat.share_contact(as_telegram_sends(on_file), **FORGED[forgery])
    assert shared.deleted
    assert "kontak orang lain" in chat.reply and "Sisa percobaan: 4" in chat.reply
    assert on_file[-4:] not in chat.reply
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.consumed_at is None
    assert challenge.attempts == 1
    assert await services.accounts.list(chat.chat_id) == []
    assert await state_on_disk(services, chat.chat_id) == ASK_OTP
    await chat.send(phone.last_code())
    assert "Kode benar" in chat.reply, "the SMS code still works"


@pytest.mark.parametrize("number", ["another mobile", "a landline", "abroad", "garbage"])
async def test_ones_own_number_that_is_not_on_file_says_so_without_showing_it(
        number: str, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    on_file = await ask_code(chat, phone)
    own = {"another mobile": "6281399887766", "a landline": "62215551234",
           "abroad": "6591234567", "garbage": "ini bukan nomor"}[number]
    assert as_telegram_sends(on_file) != own
    await chat.share_contact(own)
    assert "bukan nomor HP yang terdaftar" in chat.reply
    assert "Kode dari SMS tetap bisa dipakai" in chat.reply
    assert "Sisa percobaan: 4" in chat.reply
    assert on_file[-4:] not in chat.reply and own not in chat.reply
    assert await services.accounts.list(chat.chat_id) == []
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.consumed_at is None and challenge.attempts == 1


async def test_a_match_on_someone_elses_card_does_not_count_for_this_participant(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    """The user's own number is on file for NIK_B, not for NIK_A whose code waits."""
    await consent(chat)
    other_number = await ask_code(chat, phone, NIK_B)
    await chat.send("/batal")
    on_file = await ask_code(chat, phone, NIK_A)
    assert other_number != on_file
    await chat.share_contact(as_telegram_sends(other_number))
    assert "bukan nomor HP yang terdaftar" in chat.reply
    assert await services.accounts.list(chat.chat_id) == []


async def test_wrong_contacts_use_up_the_same_attempts_as_wrong_codes(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    on_file = await ask_code(chat, phone)
    await chat.send("000000" if phone.last_code() != "000000" else "111111")
    assert "Sisa percobaan: 4" in chat.reply
    for left in (3, 2, 1):
        await chat.share_contact(as_telegram_sends(on_file), own=False, contact_user_id=77)
        assert f"Sisa percobaan: {left}" in chat.reply
    await chat.share_contact("6281399887766")
    assert "Terlalu banyak kode salah" in chat.reply
    assert chat.reply_keyboard == [], "a dead challenge takes the 📱 keyboard with it"
    await chat.share_contact(as_telegram_sends(on_file))  # the right one, too late
    assert MATCHED not in chat.reply and NOT_NOW in chat.reply
    assert await services.accounts.list(chat.chat_id) == []
    assert await services.otp.challenge(chat.chat_id) is None


async def test_wrong_contacts_count_against_the_participant_across_chats(
        bot: object, phone: Phone, services: Services) -> None:
    from bot.devtools.harness import BotHarness
    assert isinstance(bot, BotHarness)
    chats = [bot.chat(5000 + i, title=f"Orang {i}") for i in range(3)]
    for chat in chats[:2]:
        await consent(chat)
        on_file = await ask_code(chat, phone)
        for _ in range(5):
            await chat.share_contact(as_telegram_sends(on_file), own=False,
                                     contact_user_id=99)
        assert "Terlalu banyak kode salah" in chat.reply
    third = chats[2]
    await consent(third)
    sms_before = len(phone.inbox)
    await third.send("/tambah_kk")
    await third.send(NIK_A)
    assert "tidak bisa dikirim" in third.reply, "ten wrong attempts lock the participant"
    assert len(phone.inbox) == sms_before


async def test_a_contact_at_any_other_step_is_deleted_and_changes_nothing(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    number = "6281234567890"
    outside = await chat.share_contact(number)  # before consent
    assert outside.deleted and NOT_NOW in chat.reply
    await consent(chat)
    assert (await chat.share_contact(number)).deleted and NOT_NOW in chat.reply

    await chat.send("/tambah_kk")
    assert await state_on_disk(services, chat.chat_id) == ASK_ID
    assert (await chat.share_contact(number)).deleted and NOT_NOW in chat.reply
    assert await state_on_disk(services, chat.chat_id) == ASK_ID
    await chat.send(NIK_A)
    on_file = phone.inbox[-1][0]
    await chat.send(phone.last_code())
    assert await state_on_disk(services, chat.chat_id) == ASK_LABEL
    await chat.share_contact(as_telegram_sends(on_file))
    assert NOT_NOW in chat.reply and MATCHED not in chat.reply
    assert chat.reply_keyboard == []
    assert await state_on_disk(services, chat.chat_id) == ASK_LABEL
    await chat.send("Ibu")
    assert "Tersimpan" in chat.reply

    for nik in (NIK_B, NIK_C):
        await add_account(chat, phone, nik, nik[-4:])
    await chat.send("/tambah_kk")
    await chat.send(NIK_D)
    assert "Pilih akun yang diganti" in chat.reply
    assert await state_on_disk(services, chat.chat_id) == CONFIRM
    assert (await chat.share_contact(number)).deleted and NOT_NOW in chat.reply
    assert await state_on_disk(services, chat.chat_id) == CONFIRM
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == \
        ["Ibu", "0022", "0033"]
    assert "Batal" in chat.buttons and len(chat.buttons) == 4


async def test_batal_takes_the_contact_keyboard_away(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await ask_code(chat, phone)
    await chat.send("/batal")
    assert "Dibatalkan" in chat.reply and chat.reply_keyboard == []
    await ask_code(chat, phone)
    await chat.tap("Batal")
    assert "Dibatalkan" in chat.reply and chat.reply_keyboard == []
    assert await services.otp.challenge(chat.chat_id) is None


async def test_restart_between_the_otp_notice_and_the_contact(
        services_factory: ServicesFactory, phone: Phone) -> None:
    svc = await services_factory()
    harness = await start_bot(svc)
    chat = harness.chat(1001)
    await consent(chat)
    on_file = await ask_code(chat, phone)
    harness, svc = await restart(harness, svc, services_factory)
    chat = harness.chat(1001)
    try:
        shared = await chat.share_contact(as_telegram_sends(on_file))
        assert shared.deleted and MATCHED in chat.reply
        assert chat.reply_keyboard == []
        await chat.tap("KK Saya")
        assert [a.label for a in await svc.accounts.list(1001)] == ["KK Saya"]
    finally:
        await harness.stop()


async def test_an_expired_account_is_verified_again_by_contact(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Lama")
    clock.advance(20 * 86400)
    await add_account(chat, phone, NIK_B, "Baru")
    clock.advance(11 * 86400)
    await chat.send("/akun")
    await chat.tap("Lama")
    assert "sudah lewat 30 hari" in chat.reply
    assert BUTTON in [b["text"] for b in chat.reply_keyboard]
    on_file = phone.inbox[-1][0]
    await chat.share_contact(as_telegram_sends(on_file), own=False, contact_user_id=None)
    assert "kontak orang lain" in chat.reply
    assert await labels_and_active(services, chat.chat_id) == [("Lama", False),
                                                                ("Baru", True)]
    await chat.share_contact(as_telegram_sends(on_file))
    assert MATCHED in chat.reply and "Verifikasi berhasil" in chat.reply
    assert chat.reply_keyboard == []
    assert await labels_and_active(services, chat.chat_id) == [("Lama", True),
                                                                ("Baru", False)]
    await chat.send("/akun")
    assert "⏳" not in chat.buttons[0]
