"""Verification by contact through `python -m bot run` over HTTP, as a user and an
attacker reach it: one's own number adds a card with the SMS never read; every forged
contact is refused with the cache unchanged; no phone number reaches the logs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NIK_A, NIK_B
from tests.process import RemoteChat, RunningBot, wait_for

NOTICE = "Kode OTP 6 angka sudah dikirim"


async def ask_code(bot: RunningBot, chat: RemoteChat, nik: str) -> str:
    await chat.send("/tambah_kk", expect="Kirim")
    await chat.send(nik, expect=NOTICE)
    await chat.until("Pakai nomor Telegram saya")
    await wait_for(lambda: bool(chat.reply_keyboard), "the 📱 keyboard")
    return str(bot.sms[-1]["to"])


def spellings(e164: str) -> tuple[str, ...]:
    national = "0" + e164[3:]
    return e164, e164[1:], national, national[1:], f"{e164[3:6]}-{e164[6:10]}-{e164[10:]}"


async def test_over_http_a_card_is_added_by_ones_own_number_with_the_sms_never_read(
        tmp_path: Path) -> None:
    async with RunningBot(tmp_path, LOG_LEVEL="DEBUG") as bot:
        chat = bot.chat(6100, title="Sari")
        await chat.consent()
        on_file = await ask_code(bot, chat, NIK_A)
        shared = await chat.share_contact(on_file.lstrip("+"), expect="Beri nama")
        assert "Nomor Telegram Anda cocok" in chat.reply
        await wait_for(lambda: shared.deleted, "the contact message deleted")
        await wait_for(lambda: not chat.reply_keyboard, "the 📱 keyboard taken away")
        await chat.tap("KK Saya", expect="Tersimpan")
        assert bot.read_db("SELECT COUNT(*) FROM accounts WHERE chat_id = ?", 6100) == [(1,)]
        await chat.send("/akun", expect="Akun JKN Anda (1/3)")
        assert any("KK Saya" in label for label, _ in chat.last.buttons)
        assert bot.read_db("SELECT consumed_at IS NOT NULL FROM challenges "
                           "WHERE chat_id = ?", 6100) in ([], [(1,)])
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(bot.last_code(), expect="NIK")  # the unread code is spent too
        assert "Kode benar" not in chat.reply
    assert bot.read_db("SELECT COUNT(*) FROM accounts") == [(1,)]
    for written in spellings(on_file):
        assert written not in bot.stderr, "no form of the phone number is logged"
    assert NIK_A not in bot.stderr


async def test_over_http_forged_contacts_are_refused_and_change_nothing(
        tmp_path: Path) -> None:
    async with RunningBot(tmp_path, LOG_LEVEL="DEBUG") as bot:
        attacker = bot.chat(6200, title="Penyerang")
        await attacker.consent()
        victim_number = await ask_code(bot, attacker, NIK_A)
        victim = victim_number.lstrip("+")
        forged = [(victim, False, None),            # a contact card with no user id
                  (victim, False, 6300),            # the victim's own card, forwarded
                  ("6281399887766", True, None)]    # the attacker's own number, not on file
        for left, (number, own, user_id) in zip((4, 3, 2), forged, strict=True):
            shared = await attacker.share_contact(number, own=own, contact_user_id=user_id,
                                                  expect=f"Sisa percobaan: {left}")
            await wait_for(lambda m=shared: m.deleted, "the contact message deleted")
            assert "Beri nama" not in attacker.reply
            assert victim_number[-4:] not in attacker.reply
        assert bot.read_db("SELECT COUNT(*) FROM accounts") == [(0,)]
        assert bot.read_db("SELECT attempts, consumed_at FROM challenges WHERE chat_id = ?",
                           6200) == [(3, None)]
        owner_elsewhere = bot.chat(6400, title="Lain")
        await owner_elsewhere.consent()
        other = await ask_code(bot, owner_elsewhere, NIK_B)
        await attacker.share_contact(other.lstrip("+"), expect="bukan nomor HP yang terdaftar")
        assert bot.read_db("SELECT COUNT(*) FROM accounts") == [(0,)]
    for written in spellings(victim_number) + spellings(other):
        assert written not in bot.stderr
