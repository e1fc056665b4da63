"""Reminders from outside: `python -m bot remind --date` beside a running bot, and the
running bot's own round at REMINDER_TIME, against Telegram and BPJS served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import NIK_A
from tests.fake_bpjs import FakeBpjs, Person
from tests.process import RemoteChat, RunningBot, acli, wait_for

ARREARS = ("3174014506900001", "3174014506880001")  # the sandbox's participants in arrears


def reminders(chat: RemoteChat, day: str) -> list[str]:
    return [m.text for m in chat.messages if m.text.startswith(f"🔔 Pengingat JKN — {day}")]


async def opt_in(chat: RemoteChat, label: str) -> None:
    await chat.send("/pengingat", expect="Ketuk akun")
    await chat.tap(label, expect="dinyalakan")


async def test_remind_on_the_seventh_tells_every_chat_in_arrears_once(tmp_path: Path) -> None:
    async with RunningBot(tmp_path) as bot:
        chats = [bot.chat(7000 + i) for i in range(4)]
        for chat in chats:
            await chat.consent()
        await chats[0].add(ARREARS[0], "Nunggak")
        await chats[1].add(ARREARS[1], "Ibu")
        await chats[2].add(NIK_A, "Lunas")  # opted in, nothing owed: nothing to say
        await chats[3].add("3174014506870001", "Diam")  # owes, but not opted in
        for chat, label in zip(chats[:3], ("Nunggak", "Ibu", "Lunas"), strict=True):
            await opt_in(chat, label)
        first = await acli(tmp_path, "remind", "--date", "2026-12-07", **bot.env)
        assert first.returncode == 0, first.stderr
        assert "2 sent" in first.stderr
        day = "Senin, 7 Desember 2026"
        await wait_for(lambda: all(reminders(c, day) for c in chats[:2]), "two reminders")
        assert [len(reminders(c, day)) for c in chats] == [1, 1, 0, 0]
        assert "Iuran belum dibayar" in reminders(chats[0], day)[0]
        assert chats[0].messages[-1].protected
        again = await acli(tmp_path, "remind", "--date", "2026-12-07", **bot.env)
        assert again.returncode == 0 and "0 sent" in again.stderr
        await asyncio.sleep(0.5)
        assert [len(reminders(c, day)) for c in chats] == [1, 1, 0, 0], "nothing twice"
        await chats[0].send("/akun", expect="Akun JKN Anda"), "the bot kept serving"


def next_minute_in_jakarta() -> tuple[str, float]:
    """REMINDER_TIME for the coming minute, and when (Unix time) that minute begins."""
    now = datetime.now(UTC) + timedelta(hours=7)
    ahead = 2 if now.second > 50 else 1  # too close: the bot would not be up in time
    at = (now + timedelta(minutes=ahead)).replace(second=0, microsecond=0)
    return at.strftime("%H:%M"), time.time() + (at - now).total_seconds()


async def test_the_running_bot_tells_a_status_change_at_reminder_time(tmp_path: Path) -> None:
    bpjs = FakeBpjs(Person("3174014506900011", "0001234567891", "SITI RAHMAWATI"))
    await bpjs.start()
    at, starts = next_minute_in_jakarta()
    try:
        async with RunningBot(tmp_path, REMINDER_TIME=at, **bpjs.settings("vclaim")) as bot:
            chat = bot.chat(7100)
            await chat.consent()
            await chat.add("3174014506900011", "Ibu")
            await opt_in(chat, "Ibu")
            await chat.until(f"{at} WIB")  # the edit follows the toast: wait for it
            assert f"{at} WIB" in chat.last.text, "the next round is shown"
            person = bpjs.people["3174014506900011"]
            person.active, person.status = False, "TIDAK AKTIF"  # BPJS changes it meanwhile
            sent = lambda: [m.text for m in chat.messages  # noqa: E731
                            if m.text.startswith("🔔 Pengingat JKN —")]
            await wait_for(lambda: bool(sent()), "the reminder at REMINDER_TIME",
                           timeout=starts - time.time() + 30)
            assert time.time() >= starts - 1, "not before its time"
            (text,) = sent()
            assert "«Ibu»: status AKTIF → TIDAK AKTIF" in text
    finally:
        await bpjs.stop()
