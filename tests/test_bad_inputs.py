"""Every bad input gets a clear Indonesian message and changes nothing.

Each row: the step the user is at, what they send or tap, what they must read, and what
must still hold afterwards (the cache untouched, the challenge alive or dead).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from storage.otp_repo import VerifyOutcome
from tests.conftest import (
    NIK_A,
    NIK_B,
    NIK_C,
    NIK_D,
    CodeBook,
    FakeClock,
    Phone,
    add_account,
    consent,
)


@dataclass
class World:
    chat: EmulatedChat
    phone: Phone
    clock: FakeClock
    services: Services
    bot: BotHarness
    other_slot: str = ""


Setup = Callable[[World], Awaitable[None]]


async def at_identifier(w: World) -> None:
    await w.chat.send("/tambah_kk")


async def at_code(w: World) -> None:
    await at_identifier(w)
    await w.chat.send(NIK_B)
    assert "Kode OTP 6 angka sudah dikirim" in w.chat.reply


async def at_label(w: World) -> None:
    await at_code(w)
    await w.chat.send(w.phone.last_code())
    assert "Kode benar" in w.chat.reply


async def at_eviction_question(w: World) -> None:
    await add_account(w.chat, w.phone, NIK_C, "Tiga")
    await add_account(w.chat, w.phone, NIK_D, "Empat")
    await at_identifier(w)
    await w.chat.send(NIK_B)
    assert "Pilih akun yang diganti" in w.chat.last_text


async def idle(w: World) -> None:
    await w.chat.send("/akun")


async def another_chat_has_an_account(w: World) -> None:
    """A second chat with an account of its own: its slot token is real, just not ours."""
    other = w.bot.chat(2002, title="Orang lain")
    await consent(other)
    await add_account(other, w.phone, NIK_C, "Milik orang lain")
    w.other_slot = (await w.services.accounts.list(2002))[0].slot
    await idle(w)


def tap_other(template: str) -> Callable[[World], Awaitable[object]]:
    async def act(w: World) -> object:
        return await w.chat.tap_data(template.format(slot=w.other_slot))
    return act


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
         "tidak pernah diawali angka 0", message_deleted=True),
    Case("NIK with day 99", at_identifier, send("3174019906900011"), "tanggal lahir"),
    Case("NIK with month 13", at_identifier, send("3174011513900011"), "tanggal lahir"),
    Case("4 KB message", at_identifier, send("9" * 4096), "terlalu panjang",
         message_deleted=True),
    Case("emoji", at_identifier, send("😀😀😀"), "hanya berisi angka"),
    Case("HTML instead of NIK", at_identifier, send("<b>3174014506900011</b>"),
         "hanya berisi angka"),
    Case("separators only", at_identifier, send("- - -"), "hanya berisi angka"),
    Case("participant not found", at_identifier, send("3174014506900000"),
         "tidak bisa dikirim", message_deleted=True),
    Case("backend HTTP 503", at_identifier, send("3174014506900004"), "tidak bisa dihubungi"),
    Case("no phone on file", at_identifier, send("3174014506900002"), "tidak bisa dikirim",
         message_deleted=True),
    Case("unknown command mid-flow", at_identifier, send("/foo"), "tidak saya kenal"),
    Case("forged button mid-flow", at_identifier, tap("add:go"), "tidak berlaku"),
    Case("wrong code", at_code, wrong_code, "Sisa percobaan: 4", challenge="alive",
         message_deleted=True),
    Case("five-digit code", at_code, send("12345"), "6 angka", challenge="same",
         message_deleted=True),
    Case("full-width code", at_code, send("１２３４５６"), "6 angka", challenge="same"),
    Case("spaced short code", at_code, send("12 34 5"), "6 angka", challenge="same"),
    Case("code spread out", at_code, send("123    456"), "6 angka", challenge="same"),
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
    Case("forged switch data", idle, tap("acct:switch:../../etc"), "tidak berlaku"),
    Case("another chat's slot token", another_chat_has_an_account,
         tap_other("acct:switch:{slot}"), "tidak ada di daftar"),
    Case("another chat's remove confirmation", another_chat_has_an_account,
         tap_other("rm:yes:{slot}"), "tidak ada di daftar"),
    Case("another chat's remove pick", another_chat_has_an_account,
         tap_other("rm:pick:{slot}"), "tidak ada di daftar"),
    Case("a NIK typed at the eviction question", at_eviction_question, send(NIK_D),
         "pilih salah satu tombol", message_deleted=True),
    Case("a NIK typed at the label step", at_label, send(NIK_D), "tidak boleh berisi NIK",
         challenge="same", message_deleted=True),
    Case("stale eviction button", idle, tap("add:go"), "tidak berlaku"),
    Case("SMS gateway down", idle, sms_gateway_down, "gangguan SMS",
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
    assert await services.accounts.list(chat.chat_id) == accounts_before, case.name
    if world.other_slot:
        assert [a.slot for a in await services.accounts.list(2002)] == [world.other_slot]
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


async def test_a_replayed_code_never_verifies_twice(
        chat: EmulatedChat, phone: Phone, services: Services, codes: CodeBook) -> None:
    await consent(chat)
    codes.queue[:] = ["111111", "222222"]
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    await chat.send("111111")
    assert "Kode benar" in chat.reply
    replay = await chat.send("111111")  # again, while the flow waits for the label
    assert replay.deleted and "tidak boleh berisi NIK" in chat.last_text
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.consumed_at is not None
    assert (await services.otp.verify(chat.chat_id, "111111")).outcome is VerifyOutcome.USED
    await chat.send("Ibu")
    assert "Tersimpan" in chat.reply
    replay = await chat.send("111111")  # after the flow
    assert replay.deleted and "angka identitas" in chat.last_text
    await chat.send("/tambah_kk")
    await chat.send(NIK_B)
    replay = await chat.send("111111")  # into the next participant's challenge
    assert replay.deleted and "Kode salah" in chat.last_text
    assert [a.nik for a in await services.accounts.list(chat.chat_id)] == [NIK_A]
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.attempts == 1 and challenge.consumed_at is None
