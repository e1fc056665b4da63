"""Every bad input gets a clear Indonesian message and changes nothing.

Each row: the step the user is at, what they send or tap, what they must read, and what
must still hold afterwards (the cache untouched, the challenge alive or dead).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from bot.harness import BotHarness, EmulatedChat
from bot.services import Services
from tests.conftest import NIK_A, NIK_B, NIK_C, NIK_D, FakeClock, Phone, add_account, consent


@dataclass
class World:
    chat: EmulatedChat
    phone: Phone
    clock: FakeClock
    services: Services
    bot: BotHarness


Setup = Callable[[World], Awaitable[None]]


async def at_identifier(w: World) -> None:
    await w.chat.send("/tambah_kk")


async def at_code(w: World) -> None:
    await at_identifier(w)
    await w.chat.send(NIK_B)
    assert "Kode OTP 6 angka sudah dikirim" in w.chat.last_text


async def at_label(w: World) -> None:
    await at_code(w)
    await w.chat.send(w.phone.last_code())
    assert "Kode benar" in w.chat.last_text


async def at_eviction_question(w: World) -> None:
    await add_account(w.chat, w.phone, NIK_C, "Tiga")
    await add_account(w.chat, w.phone, NIK_D, "Empat")
    await at_identifier(w)
    await w.chat.send(NIK_B)
    assert "sudah penuh" in w.chat.last_text


async def idle(w: World) -> None:
    await w.chat.send("/akun")


@dataclass
class Case:
    name: str
    setup: Setup
    action: Callable[[World], Awaitable[object]]
    expect: str
    challenge: str = "same"  # "same" | "alive" | "gone"
    message_deleted: bool = False


def send(text: str) -> Callable[[World], Awaitable[object]]:
    async def act(w: World) -> object:
        return await w.chat.send(text)
    return act


def tap(data: str) -> Callable[[World], Awaitable[object]]:
    async def act(w: World) -> object:
        return await w.chat.tap_data(data)
    return act


async def wrong_code(w: World) -> object:
    code = w.phone.last_code()
    return await w.chat.send("000000" if code != "000000" else "111111")


async def expired_code(w: World) -> object:
    w.clock.advance(301)
    return await w.chat.send(w.phone.last_code())


async def too_many_tries(w: World) -> object:
    wrong = "000000" if w.phone.last_code() != "000000" else "111111"
    for _ in range(4):
        await w.chat.send(wrong)
    return await w.chat.send(wrong)


async def resend_too_early(w: World) -> object:
    return await w.chat.tap("Kirim ulang")


async def replayed_code(w: World) -> object:
    code = w.phone.last_code()
    await w.chat.tap("KK Saya")
    assert "Tersimpan" in w.chat.last_text
    return await w.chat.send(code)


async def sms_gateway_down(w: World) -> object:
    w.phone.fail_next = 1
    await w.chat.send("/tambah_kk")
    return await w.chat.send(NIK_B)


CASES = [
    Case("too few digits", at_identifier, send("12345"), "Ada 5 angka", message_deleted=True),
    Case("15 digits", at_identifier, send("317401450690001"), "Ada 15 angka",
         message_deleted=True),
    Case("full-width digits", at_identifier, send("３１７４０１４５０６９０００１１"),
         "angka biasa 0–9", message_deleted=True),
    Case("arabic-indic digits", at_identifier, send("٣١٧٤٠١٤٥٠٦٩٠٠٠١١"), "angka biasa 0–9",
         message_deleted=True),
    Case("letters in NIK", at_identifier, send("31740145069000AB"), "hanya berisi angka",
         message_deleted=True),
    Case("NIK starting with 0", at_identifier, send("0174014506900011"),
         "tidak diawali angka 0", message_deleted=True),
    Case("NIK with day 99", at_identifier, send("3174019906900011"), "tanggal lahir"),
    Case("NIK with month 13", at_identifier, send("3174011513900011"), "tanggal lahir"),
    Case("4 KB message", at_identifier, send("9" * 4096), "terlalu panjang",
         message_deleted=True),
    Case("emoji", at_identifier, send("😀😀😀"), "hanya berisi angka"),
    Case("HTML instead of NIK", at_identifier, send("<b>3174014506900011</b>"),
         "hanya berisi angka"),
    Case("separators only", at_identifier, send("- - -"), "hanya berisi angka"),
    Case("participant not found", at_identifier, send("3174014506900000"),
         "tidak ditemukan"),
    Case("backend HTTP 503", at_identifier, send("3174014506900004"), "tidak bisa dihubungi"),
    Case("no phone on file", at_identifier, send("3174014506900002"), "Care Center 165"),
    Case("unknown command mid-flow", at_identifier, send("/foo"), "tidak saya kenal"),
    Case("forged button mid-flow", at_identifier, tap("add:go"), "tidak berlaku"),
    Case("wrong code", at_code, wrong_code, "Sisa percobaan: 4", challenge="alive",
         message_deleted=True),
    Case("five-digit code", at_code, send("12345"), "6 angka", challenge="same",
         message_deleted=True),
    Case("full-width code", at_code, send("１２３４５６"), "6 angka", challenge="same"),
    Case("spaced code", at_code, send("12 34 56"), "6 angka", challenge="same"),
    Case("expired code", at_code, expired_code, "kedaluwarsa", challenge="alive"),
    Case("too many tries", at_code, too_many_tries, "Terlalu banyak kode salah",
         challenge="gone"),
    Case("resend too early", at_code, resend_too_early, "Tunggu 60 detik", challenge="same"),
    Case("text where a button is expected", at_eviction_question, send("ya"),
         "pilih salah satu tombol"),
    Case("forged label button", at_label, tap("add:label:7"), "tidak berlaku",
         challenge="same"),
    Case("label of 33 characters", at_label, send("x" * 33), "Maksimal 32",
         challenge="same"),
    Case("label that is a NIK", at_label, send(NIK_D), "tidak boleh berisi NIK",
         challenge="same", message_deleted=True),
    Case("replayed OTP", at_label, replayed_code, "angka identitas",
         challenge="gone", message_deleted=True),
    Case("forged switch data", idle, tap("acct:switch:../../etc"), "tidak berlaku"),
    Case("another chat's slot token", idle, tap("acct:switch:AAAAAAAA"),
         "tidak ada di daftar"),
    Case("forged remove confirmation", idle, tap("rm:yes:AAAAAAAA"), "tidak ada di daftar"),
    Case("stale eviction button", idle, tap("add:go"), "tidak berlaku"),
    Case("SMS gateway down", idle, sms_gateway_down, "SMS belum bisa dikirim",
         challenge="gone"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input(case: Case, bot: BotHarness, chat: EmulatedChat, phone: Phone,
                         clock: FakeClock, services: Services) -> None:
    world = World(chat, phone, clock, services, bot)
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Pertama")
    await case.setup(world)
    accounts_before = await services.accounts.list(chat.chat_id)
    challenge_before = await services.otp.challenge(chat.chat_id)

    result = await case.action(world)

    seen = chat.reply + " " + str((chat.last_answer or {}).get("text", ""))
    assert case.expect in seen, f"{case.name}: user saw {seen!r}"
    for identifier in (NIK_A, NIK_B, NIK_C, NIK_D):
        assert identifier not in seen, "an identifier was echoed"
    if case.name != "replayed OTP":
        assert await services.accounts.list(chat.chat_id) == accounts_before, case.name
    challenge = await services.otp.challenge(chat.chat_id)
    if case.challenge == "same":
        assert challenge == challenge_before, case.name
    elif case.challenge == "alive":
        assert challenge is not None and challenge.consumed_at is None, case.name
    else:
        assert challenge is None or challenge.consumed_at is not None, case.name
    if case.message_deleted:
        assert getattr(result, "deleted", False), f"{case.name}: the message was kept"
    assert [e for e in bot.emulator.errors if "not modified" not in e[1]] == []


def test_the_table_has_at_least_25_rows() -> None:
    assert len(CASES) >= 25
