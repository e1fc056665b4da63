"""Failures users must never feel: crashes inside a handler, gateways down, caps, the
same content edited twice, and nothing readable left in the database files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot import texts
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import Identifier, IdKind
from bot.jkn.sandbox import SandboxBackend
from bot.services import Services
from storage.otp_repo import Caps
from tests.conftest import (
    NIK_A,
    NIK_B,
    NIK_C,
    CodeBook,
    FakeClock,
    FastSandbox,
    Phone,
    add_account,
    consent,
)
from tests.dbsql import query_one


async def test_a_crash_in_a_handler_gets_a_kind_answer_without_internals(
        chat: EmulatedChat, services: Services, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    await consent(chat)

    async def broken(chat_id: int) -> list[object]:
        raise RuntimeError(f"disk on fire while reading {NIK_A}")

    monkeypatch.setattr(services.accounts, "list", broken)
    monkeypatch.setattr(services.accounts, "list_brief", broken)
    caplog.set_level(logging.ERROR)
    await chat.send("/akun")
    assert chat.last_text.startswith(texts.ERROR)
    assert "RuntimeError" not in chat.reply and NIK_A not in chat.reply
    await chat.send("/status")
    await chat.tap_data("st:all")  # the callback is still answered exactly once
    assert chat.last_answer is not None
    assert any("error while handling update" in r.getMessage() for r in caplog.records)


async def test_refreshing_a_young_status_sends_no_edit_and_no_backend_call(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, backend: FastSandbox) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Saya")
    await chat.send("/status")
    card = chat.last_message
    before, edits, lookups = card.text, bot.emulator.calls.get("editMessageText", 0), \
        backend.lookups
    for _ in range(3):
        answer = await chat.tap("Perbarui")
        assert answer is not None
    assert chat.last_message.message_id == card.message_id and chat.last_text == before
    assert "Data per" in before and "baru saja" in before
    assert bot.emulator.calls.get("editMessageText", 0) == edits, "no identical edit sent"
    assert backend.lookups == lookups, "a young status is served from the cache"
    assert not [e for e in bot.emulator.errors if "not modified" in e[1]]


async def test_sms_gateway_down_while_adding_reads_like_not_found_and_costs_nothing(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    """A stranger must not learn from an SMS failure that the NIK exists, so the reply is
    the one for "not found"; typing the NIK again once the gateway is back works."""
    await consent(chat)
    phone.fail_next = 1
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "Kode OTP tidak bisa dikirim" in chat.last_text and "gangguan SMS" in chat.last_text
    assert await services.otp.challenge(chat.chat_id) is None
    await chat.send(NIK_A)
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply
    await chat.send(phone.last_code())
    await chat.tap("KK Saya")
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["KK Saya"]


async def test_sms_gateway_down_while_re_verifying_offers_to_send_again(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    """The owner re-verifying is told what happened, and gets the Kirim kode button."""
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    clock.advance(31 * 86400)
    phone.fail_next = 1
    await chat.send("/akun")
    await chat.tap("Ibu")
    assert "SMS belum bisa dikirim" in chat.last_text
    assert chat.buttons == ["Kirim kode", "Batal"]
    await chat.tap("Kirim kode")
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply
    await chat.send(phone.last_code())
    assert "Verifikasi berhasil" in chat.last_text


async def test_resend_replaces_the_code_and_the_hourly_cap_stops_a_sixth(
        chat: EmulatedChat, phone: Phone, clock: FakeClock) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    first = phone.last_code()
    for _ in range(4):
        clock.advance(61)
        await chat.tap("Kirim ulang")
        assert "Kode baru dikirim" in chat.last_text
    assert len(phone.inbox) == 5
    clock.advance(61)
    await chat.tap("Kirim ulang")
    assert "terlalu banyak kode" in chat.last_text
    assert len(phone.inbox) == 5
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "Kode OTP tidak bisa dikirim" in chat.last_text, "a new flow cannot reset the cap"
    assert len(phone.inbox) == 5
    del first


async def test_the_old_code_dies_when_a_new_one_is_sent(
        chat: EmulatedChat, phone: Phone, clock: FakeClock, codes: CodeBook) -> None:
    await consent(chat)
    codes.queue[:] = ["111111", "222222"]
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    clock.advance(61)
    await chat.tap("Kirim ulang")
    assert phone.last_code() == "222222"
    await chat.send("111111")
    assert "Kode itu sudah diganti; pakai SMS terakhir." in chat.last_text  # not accepted
    await chat.send("222222")
    assert "Kode benar" in chat.reply


async def test_starting_over_for_another_participant_voids_the_first_code(
        chat: EmulatedChat, phone: Phone, codes: CodeBook, services: Services) -> None:
    await consent(chat)
    codes.queue[:] = ["111111", "222222"]
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    await chat.send("/tambah_kk")
    await chat.send(NIK_B)
    await chat.send("111111")  # A's code, typed into B's flow
    assert "Kode salah" in chat.last_text
    await chat.send("222222")
    assert "Kode benar" in chat.reply
    await chat.send("Budi")
    assert [a.nik for a in await services.accounts.list(chat.chat_id)] == [NIK_B]


async def test_the_database_of_a_real_session_holds_no_plaintext(
        chat: EmulatedChat, phone: Phone, services: Services, data_dir: Path) -> None:
    await consent(chat)
    for nik, label in ((NIK_A, "Rumah Nenek Ijah"), (NIK_B, "Pak RT Lima"), (NIK_C, "Bu Kader")):
        await add_account(chat, phone, nik, label)
    await chat.send("/status semua")
    await chat.send("/tambah_kk")
    await chat.send("3174014506900022")  # a pending flow at the eviction question
    sandbox = SandboxBackend()
    secrets: list[str] = ["Rumah Nenek Ijah", "Pak RT Lima", "Bu Kader"]
    for nik in (NIK_A, NIK_B, NIK_C, "3174014506900022"):
        person = sandbox.participant(Identifier(IdKind.NIK, nik))
        assert person.phone is not None
        secrets += [nik, person.card, person.name, person.phone, person.phone[3:],
                    person.fktp_name] + [m.name for m in person.family]
    blobs = b"".join(p.read_bytes() for p in data_dir.iterdir()
                     if p.name.startswith("kk.sqlite3"))
    for secret in secrets:
        assert secret.encode() not in blobs, secret


async def test_lookups_per_chat_are_capped_even_when_nothing_is_found(
        chat: EmulatedChat, services: Services) -> None:
    await consent(chat)
    for i in range(Caps().lookups_daily):
        if i % 5 == 0:
            await chat.send("/tambah_kk")
        await chat.send(f"317401450690{i:04d}"[:12] + "0000")  # not found, yet counted
        assert "tidak bisa dikirim" in chat.reply
    await chat.send("/hapus_data")
    await chat.tap("Ya, hapus semua")
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "Batas pencarian" in chat.last_text, "neither a new flow nor an erase resets it"
    assert await services.otp.challenge(chat.chat_id) is None


async def test_an_html_label_is_stored_and_shown_literally(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "<b>Ibu & Ayah</b>")
    assert "«<b>Ibu & Ayah</b>»" in chat.reply
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == [
        "<b>Ibu & Ayah</b>"]
    await chat.send("/akun")
    assert chat.buttons[0].startswith("📌 <b>Ibu & Ayah</b>")


async def test_a_failed_delete_is_logged_and_the_flow_goes_on(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        caplog: pytest.LogCaptureFixture) -> None:
    from bot.devtools.emulator import ApiError

    async def refuse(params: dict[str, object]) -> bool:
        raise ApiError(400, "Bad Request: message can't be deleted for everyone")

    await consent(chat)
    bot.emulator._m_deletemessage = refuse  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING)
    await add_account(chat, phone, NIK_A, "Tetap Jalan")
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["Tetap Jalan"]
    assert any("could not delete" in r.getMessage() for r in caplog.records)
    bot.emulator.errors.clear()  # the refusals above were this test's own doing


async def test_a_hanging_sms_gateway_times_out_and_the_send_still_counts(
        chat: EmulatedChat, phone: Phone, services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import bot.otp

    async def hang(phone_e164: str, message: str) -> None:
        await asyncio.sleep(3600)

    await consent(chat)
    monkeypatch.setattr(bot.otp, "SMS_TIMEOUT", 0.05)
    monkeypatch.setattr(phone, "send", hang)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "Kode OTP tidak bisa dikirim" in chat.last_text
    row = await query_one(services.db, "SELECT count(*) AS n FROM rate_events WHERE kind = 'sms'")
    assert row is not None and row["n"] == 1, "it may have gone out late: it still counts"
    assert await services.otp.challenge(chat.chat_id) is None


async def test_refreshing_a_status_card_after_removing_the_last_account_offers_to_add(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Satu-satunya")
    await chat.send("/status")
    card = chat.last_message
    await chat.send("/hapus_kk")
    await chat.tap("Satu-satunya")
    await chat.tap("Ya, hapus")
    await chat.tap("Perbarui", message=card)
    assert "Belum ada akun" in chat.reply
    assert chat.emulator.chats[chat.chat_id].messages[card.message_id].buttons == [
        ("➕ Tambah keluarga", "acct:add")]


async def test_a_label_made_of_full_width_digits_is_refused_too(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    await chat.send(phone.last_code())
    await chat.send("KK １２３４５６")
    assert "tidak boleh berisi NIK" in chat.last_text
    assert await services.accounts.list(chat.chat_id) == []
