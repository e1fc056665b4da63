"""Trust: nobody can use the bot to probe, guess or lock out someone else's NIK, what a
stranger sees before the code is the last four digits of a phone, and erased means erased.

Each test drives the real bot through the Bot API stand-in the way an attacker with many
Telegram accounts would (docs/security.md names the test that proves each control).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from telegram.ext import CallbackContext

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import Identifier, IdKind, mask_nik
from bot.jkn.sandbox import SandboxBackend
from bot.services import Services
from handlers import jobs
from tests.conftest import (
    CARD_A,
    NIK_A,
    NIK_B,
    NIK_C,
    NIK_D,
    CodeBook,
    FakeClock,
    FastSandbox,
    Phone,
    ServicesFactory,
    add_account,
    both_stores,
    consent,
    start_bot,
)
from tests.dbsql import query_one

store = both_stores  # every test here runs on SQLite and on PostgreSQL

MASKED_NIK = re.compile(r"\d{4}\*{8}\d{4}")
PHONE_PREFIX = re.compile(r"\b0?8\d{2}\*{3,}|\+?628\d")


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def strangers(bot: BotHarness, count: int, first: int = 5000) -> list[EmulatedChat]:
    chats = [bot.chat(first + i, title=f"Penyerang {i}") for i in range(count)]
    for chat in chats:
        await consent(chat)
    return chats


async def guess_as_much_as_allowed(chats: list[EmulatedChat], nik: str, phone: Phone,
                                   clock: FakeClock, hours: int) -> tuple[int, int]:
    """Every chat asks for a code for ``nik`` and guesses until refused, hour after hour.
    Returns (codes that reached a phone, guesses the bot checked)."""
    sent_before, checked = len(phone.inbox), 0
    for hour in range(hours):
        if hour:
            clock.advance(3600)
        for chat in chats:
            await chat.send("/tambah_kk")
            await chat.send(nik)
            while "Kode OTP 6 angka sudah dikirim" in chat.reply or "Kode salah" in chat.reply:
                await chat.send(wrong(phone.last_code()))
                checked += 1
    return len(phone.inbox) - sent_before, checked


# -- 1. caps per participant, across chats ----------------------------------------------

async def test_a_dozen_chats_get_ten_guesses_a_day_at_one_participant_not_six_hundred(
        bot: BotHarness, phone: Phone, clock: FakeClock) -> None:
    chats = await strangers(bot, 12)
    codes, checked = await guess_as_much_as_allowed(chats, NIK_A, phone, clock, hours=24)
    assert checked == 10, f"{checked} guesses were checked in a day (10 allowed)"
    assert codes <= 10
    latecomer = (await strangers(bot, 1, first=6000))[0]
    await latecomer.send("/tambah_kk")
    await latecomer.send(NIK_A)
    assert "Kode OTP tidak bisa dikirim" in latecomer.last_text, "…and reads like not found"
    clock.advance(3600)
    await latecomer.send("/tambah_kk")
    await latecomer.send(NIK_A)
    assert "Kode OTP 6 angka sudah dikirim" in latecomer.reply, "a day later it is over"


async def test_ten_codes_a_day_reach_one_phone_however_many_chats_ask(
        bot: BotHarness, phone: Phone, clock: FakeClock) -> None:
    chats = await strangers(bot, 12)
    sent = 0
    for _ in range(24):
        for chat in chats:
            await chat.send("/tambah_kk")
            await chat.send(NIK_B)
            if "Kode OTP 6 angka sudah dikirim" in chat.reply:
                sent += 1
                await chat.send("/batal")
        clock.advance(3600)
        if sent >= 10:
            break
    assert sent == 10
    refused = 0
    for chat in chats:  # the rest of the day, nobody gets another one
        await chat.send("/tambah_kk")
        await chat.send(NIK_B)
        refused += "Kode OTP tidak bisa dikirim" in chat.last_text
    assert refused == len(chats) and sent == len(phone.inbox)


async def test_the_owner_re_verifies_even_when_strangers_used_up_every_cap(
        bot: BotHarness, phone: Phone, clock: FakeClock, services: Services) -> None:
    owner = bot.chat(1001, title="Pemilik")
    await consent(owner)
    await add_account(owner, phone, NIK_A, "Ibu")
    await add_account(owner, phone, NIK_B, "Ayah")
    clock.advance(31 * 86400)  # the session of both ran out
    chats = await strangers(bot, 6)
    await guess_as_much_as_allowed(chats, NIK_A, phone, clock, hours=1)
    for chat in chats:  # the phone's hourly and daily allowance, used up by strangers
        await chat.send("/tambah_kk")
        await chat.send(NIK_A)
    latecomer = (await strangers(bot, 1, first=6000))[0]
    await latecomer.send("/tambah_kk")
    await latecomer.send(NIK_A)
    assert "Kode OTP tidak bisa dikirim" in latecomer.reply

    await owner.send("/akun")
    sent = len(phone.inbox)
    await owner.tap("Ibu")
    assert "Kode OTP 6 angka sudah dikirim" in owner.reply
    assert len(phone.inbox) == sent + 1
    await owner.send(phone.last_code())
    assert "Verifikasi berhasil" in owner.last_text
    assert [(a.label, a.active) for a in await services.accounts.list(1001)] == [
        ("Ibu", True), ("Ayah", False)]


async def test_the_hourly_sms_budget_refuses_new_codes_and_warns_once(
        services_factory: ServicesFactory, phone: Phone, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    svc = await services_factory(sms_max_per_hour=3)
    harness = await start_bot(svc)
    try:
        chats = await strangers(harness, 6)
        caplog.set_level(logging.WARNING, logger="bot.otp")
        for chat, nik in zip(chats, (NIK_A, NIK_B, NIK_C, NIK_D, "1271035508770055",
                                     "3273012304850066"), strict=True):
            await chat.send("/tambah_kk")
            await chat.send(nik)
        assert len(phone.inbox) == 3
        for chat in chats[3:]:
            assert "batas pengiriman per jam" in chat.last_text
        warnings = [r for r in caplog.records if "SMS budget" in r.getMessage()]
        assert len(warnings) == 1, "one warning, not one per refusal"
        clock.advance(3601)
        await chats[5].send("/tambah_kk")
        await chats[5].send("3273012304850066")
        assert "Kode OTP 6 angka sudah dikirim" in chats[5].reply
    finally:
        await harness.stop()


# -- 2. what a stranger learns before the code ------------------------------------------

async def test_not_found_and_no_phone_on_file_read_exactly_the_same(
        bot: BotHarness, backend: FastSandbox) -> None:
    one, two = await strangers(bot, 2)
    replies = []
    for chat, nik in ((one, "3174014506900000"), (two, "3174014506900002")):
        await chat.send("/tambah_kk")
        await chat.send(nik)
        replies.append(chat.reply.replace(mask_nik(nik), "<NIK>"))
        await chat.send("hai")  # the same next step too: still waiting for an identifier
        replies.append(chat.last_text)
    assert replies[0] == replies[2] and replies[1] == replies[3]
    assert "Care Center" in replies[0] and "angkanya keliru" in replies[0]


async def test_caps_and_sms_failures_read_like_not_found(
        bot: BotHarness, phone: Phone, services_factory: ServicesFactory) -> None:
    """Whether a code cannot go out because the participant is locked, the phone had its
    codes, or the gateway failed, a stranger reads the same as for a NIK that does not
    exist; caps that do not depend on the participant answer before any look-up."""
    probe, other = await strangers(bot, 2)

    async def reply_to(chat: EmulatedChat, nik: str) -> str:
        await chat.send("/tambah_kk")
        await chat.send(nik)
        return chat.last_text.replace(mask_nik(nik), "<NIK>")

    not_found = await reply_to(probe, "3174014506900000")
    phone.fail_next = 1
    assert await reply_to(probe, NIK_B) == not_found, "an SMS failure"
    for _ in range(2):  # ten wrong codes for NIK_C from another chat: it is locked
        await other.send("/tambah_kk")
        await other.send(NIK_C)
        for _ in range(5):
            await other.send(wrong(phone.last_code()))
    assert await reply_to(probe, NIK_C) == not_found, "a locked participant"
    for _ in range(5):  # the phone's hourly allowance of NIK_D, used up by another chat
        await other.send("/tambah_kk")
        await other.send(NIK_D)
    assert await reply_to(probe, NIK_D) == not_found, "a phone out of codes"
    for nik in ("3273012304850066", "1271035508770055", "3174014506900022",
                "3174014506900033", "3174014506900044", "3174014506900055",
                "3174014506900066", "3174014506900077", "3174014506900088",
                "3174014506900099"):
        await probe.send("/tambah_kk")
        await probe.send(nik)
    lookups = len(phone.inbox)
    found, missing = await reply_to(probe, NIK_A), await reply_to(probe, "3174014506900000")
    assert found == missing and "Batas kode OTP hari ini" in found, "asked before a look-up"
    assert len(phone.inbox) == lookups


async def test_before_the_code_a_stranger_sees_four_phone_digits_and_no_nik(
        bot: BotHarness, phone: Phone, services: Services) -> None:
    chat = (await strangers(bot, 1))[0]
    person = SandboxBackend().participant(Identifier(IdKind.CARD, CARD_A))
    assert person.phone is not None
    await chat.send("/tambah_kk")
    await chat.send(CARD_A)
    seen = chat.reply + "".join(m.text for m in chat.bot_messages)
    assert f"berakhiran {person.phone[-4:]}" in seen
    assert not PHONE_PREFIX.search(seen), "no more of the phone than its last four digits"
    assert not MASKED_NIK.search(seen), "a card look-up shows the NIK in no form"
    assert person.nik[:6] not in seen and person.name not in seen
    assert phone.inbox[-1][0] == person.phone, "the code goes to the phone on file"


async def test_the_eviction_question_comes_before_any_lookup(
        chat: EmulatedChat, phone: Phone, backend: FastSandbox) -> None:
    await consent(chat)
    for nik in (NIK_A, NIK_B, NIK_C):
        await add_account(chat, phone, nik, nik[-4:])
    lookups = backend.lookups
    await chat.send("/tambah_kk")
    await chat.send("3174014506900000")  # not found, but nothing tells it yet
    assert "Pilih akun yang diganti" in chat.last_text and backend.lookups == lookups
    await chat.tap("0022")
    assert "tidak bisa dikirim" in chat.last_text and backend.lookups == lookups + 1


async def test_a_challenge_keeps_only_what_the_code_needs_until_it_is_accepted(
        chat: EmulatedChat, phone: Phone, services: Services, data_dir: Path) -> None:
    await consent(chat)
    person = SandboxBackend().participant(Identifier(IdKind.CARD, CARD_A))
    await chat.send("/tambah_kk")
    await chat.send(CARD_A)
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None
    assert set(challenge.payload) == {"v", "purpose", "kind", "value", "evict", "phone"}
    assert challenge.payload["value"] == CARD_A and person.nik not in json.dumps(
        challenge.payload)
    raw = b"".join(p.read_bytes() for p in data_dir.glob("kk.sqlite3*"))
    assert person.name.encode() not in raw
    await chat.send(phone.last_code())
    await chat.send("Kartu")
    account = (await services.accounts.list(chat.chat_id))[0]
    assert (account.nik, account.name) == (person.nik, person.name), "fetched after the code"


async def test_abandoned_challenges_and_pending_steps_are_cleared_by_housekeeping(
        bot: BotHarness, phone: Phone, services: Services, clock: FakeClock) -> None:
    waiting, full = await strangers(bot, 2)
    await waiting.send("/tambah_kk")
    await waiting.send(NIK_A)
    for nik in (NIK_B, NIK_C, NIK_D):
        await add_account(full, phone, nik, nik[-4:])
    await full.send("/tambah_kk")
    await full.send("1271035508770055")  # a sealed pending step at the eviction question
    assert bot.app is not None and bot.app.chat_data[full.chat_id].get("pending")
    clock.advance(300 + 900 + 1)
    await run_job(bot)
    assert await services.otp.challenge(waiting.chat_id) is None
    assert bot.app.chat_data[full.chat_id].get("pending"), "30 minutes not over yet"
    clock.advance(1800)
    await run_job(bot)
    assert "pending" not in bot.app.chat_data[full.chat_id]
    row = await query_one(services.db, "SELECT data FROM chat_data WHERE chat_id = ?",
                          full.chat_id)
    assert row is None or "pending" not in row["data"], "gone from the disk too"
    await full.tap("0022")
    assert "sudah berakhir" in full.last_text


async def run_job(bot: BotHarness) -> None:
    """Run the housekeeping job now, as the JobQueue does every few minutes."""
    assert bot.app is not None and bot.app.job_queue is not None
    assert bot.app.job_queue.get_jobs_by_name("housekeeping"), "scheduled at start"
    await jobs.housekeeping(CallbackContext(bot.app))


# -- 9. refresh has a limit -------------------------------------------------------------

async def test_a_hundred_refresh_taps_cost_no_backend_call_while_the_status_is_young(
        chat: EmulatedChat, phone: Phone, backend: FastSandbox) -> None:
    await consent(chat)
    for nik in (NIK_A, NIK_B, NIK_C):
        await add_account(chat, phone, nik, nik[-4:])
    await chat.send("/status semua")
    calls = backend.lookups
    for _ in range(100):
        await chat.tap("Perbarui")
    assert backend.lookups == calls
    assert "Data per" in chat.last_text and "baru saja" in chat.last_text


async def test_a_chat_makes_at_most_thirty_backend_calls_an_hour(
        services_factory: ServicesFactory, phone: Phone, backend: FastSandbox,
        clock: FakeClock) -> None:
    svc = await services_factory(status_refresh_seconds=0)
    harness = await start_bot(svc)
    try:
        chat = harness.chat(1001)
        await consent(chat)
        await add_account(chat, phone, NIK_A, "Ibu")
        await chat.send("/status")
        calls = backend.lookups
        for _ in range(99):
            await chat.tap("Perbarui")
        assert backend.lookups - calls == 29, "30 calls an hour with the first /status"
        assert "Batas pembaruan chat ini (30 per jam)" in chat.last_text
        assert "Faskes pertama" in chat.last_text, "the last known card is still shown"
        clock.advance(3601)
        await chat.tap("Perbarui")
        assert backend.lookups - calls == 30 and "Diperbarui" in chat.last_text
    finally:
        await harness.stop()


# -- 10. every message carrying an identifier is deleted --------------------------------

async def test_an_identifier_is_deleted_with_any_command_in_any_state(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    started = await chat.send("/tambah_kk 3174\t0145\t0690\t0011")
    assert started.deleted, "/tambah_kk <NIK>"
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply, "…starts the flow with that NIK"
    status = await chat.send(f"/status {NIK_B}")
    assert status.deleted
    await chat.send(phone.last_code())
    await chat.send("Ibu")
    for text in (f"/akun {NIK_C}", "/bantuan 3174 0145 0690 0011", "kode saya 12 34 56",
                 f"/foo {CARD_A}", "/status 3174  0145  0690  0011", "3174\u200b0145\u200b0690",
                 "nik\n3174\n0145\n0690\n0011"):
        message = await chat.send(text)
        assert message.deleted, text
    kept = await chat.send("/status semua")
    assert not kept.deleted
    typed = await chat.send("halo")
    chat.emulator.user_edits(chat.chat_id, typed.message_id, f"nik saya {NIK_D}")
    await chat.harness.settle()
    assert typed.deleted, "an edit that adds a NIK is deleted too"
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["Ibu"]


# -- 11. personal data cannot be forwarded ----------------------------------------------

async def test_cards_and_the_all_accounts_view_are_protected_from_forwarding(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    saved = chat.last_message
    assert saved.protected and "Faskes pertama" in saved.text
    await add_account(chat, phone, NIK_B, "Ayah")
    await chat.send("/status")
    card = chat.last_message
    assert card.protected and "Faskes pertama" in card.text
    await chat.tap("Semua akun")
    assert chat.last_message.message_id == card.message_id and chat.last_message.protected
    assert "Status semua akun (2)" in chat.last_text
    await chat.send("/bantuan")
    assert not chat.last_message.protected, "only what shows personal data"


async def test_a_card_never_lands_in_an_unprotected_message(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await chat.send("/akun")
    listing = chat.last_message
    await chat.tap_data("st:one", message=listing)  # a forged status tap on the listing
    assert not listing.protected and "Faskes pertama" not in chat.emulator.chats[
        chat.chat_id].messages[listing.message_id].text
    assert chat.last_message.protected and "Faskes pertama" in chat.last_text


async def test_the_code_guesses_of_one_chat_cannot_lock_out_another_participant(
        bot: BotHarness, phone: Phone, codes: CodeBook) -> None:
    """Locks are per participant: guessing at A's code does not stop B's owner."""
    chats = await strangers(bot, 2)
    for chat in chats:
        await chat.send("/tambah_kk")
        await chat.send(NIK_A)
        for _ in range(5):
            await chat.send(wrong(phone.last_code()))
    other = (await strangers(bot, 1, first=7000))[0]
    await add_account(other, phone, NIK_B, "Bapak")


async def test_removing_an_account_mid_re_verification_leaves_nothing_of_it(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock,
        data_dir: Path) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    clock.advance(31 * 86400)
    await chat.send("/akun")
    await chat.tap("Ibu")  # its session ran out: a code is on its way
    row = await query_one(services.db, "SELECT payload_ct FROM challenges WHERE chat_id = ?",
                          chat.chat_id)
    assert row is not None
    sealed = bytes(row["payload_ct"])[-24:]
    await chat.send("/hapus_kk")
    await chat.tap("Ibu")
    await chat.tap("Ya, hapus")
    assert await services.otp.challenge(chat.chat_id) is None
    files = b"".join(p.read_bytes() for p in data_dir.glob("kk.sqlite3*"))
    assert sealed not in files, "the challenge's identifier and phone are gone from the WAL"
    await chat.send(phone.last_code())
    assert "Verifikasi berhasil" not in chat.last_text
