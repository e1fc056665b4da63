"""The getUpdates offset passes an update only once it is handled and written
(bot/polling.py): in process against the stand-in, and across a SIGKILL over HTTP."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from bot import texts
from bot.services import Services
from tests.conftest import NIK_A, FastSandbox, Phone, consent, start_bot
from tests.process import RunningBot, wait_for

SLOW_NIK = "3174014506900003"  # the sandbox's 3-second case
NIK_B = "3273012304850022"


def pending_ids(emulator: object) -> list[int]:
    """The updates Telegram still holds (not confirmed by any getUpdates offset)."""
    return [u["update_id"] for u in emulator.updates]  # type: ignore[attr-defined]


async def test_an_update_in_hand_is_not_confirmed_until_done(
        services: Services, phone: Phone, backend: FastSandbox) -> None:
    release = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await release.wait()

    backend._sleep = held_sleep  # the 3-second case now waits until released
    harness = await start_bot(services)
    try:
        slow, quick = harness.chat(1, title="Lambat"), harness.chat(2, title="Cepat")
        for chat in (slow, quick):
            await consent(chat)
        await slow.send("/tambah_kk")
        held = await slow.send(SLOW_NIK, settle=False)
        for _ in range(300):
            if slow.bot_messages and "Memproses" in slow.bot_messages[-1].text:
                break
            await asyncio.sleep(0.01)
        assert "Memproses" in slow.last_text
        await quick.send("/tambah_kk", settle=False)
        for _ in range(300):
            if "Kirim NIK" in quick.bot_messages[-1].text:
                break
            await asyncio.sleep(0.01)
        assert "Kirim NIK" in quick.last_text  # later updates are handled meanwhile
        await asyncio.sleep(0.1)  # several polls later
        in_hand = [u for u in harness.emulator.updates
                   if u.get("message", {}).get("message_id") == held.message_id]
        assert len(in_hand) == 1, "the update in hand was confirmed before it was done"
        assert harness.polling is not None and harness.polling.in_flight == {
            in_hand[0]["update_id"]}
        release.set()
        await harness.settle()
        assert "Kode OTP 6 angka sudah dikirim" in slow.reply
        for _ in range(300):  # the next poll confirms it
            if not harness.emulator.updates:
                break
            await asyncio.sleep(0.01)
        assert pending_ids(harness.emulator) == []
    finally:
        await harness.stop()



async def test_the_pause_while_updates_are_in_hand_ends_when_the_last_is_done(
        services: Services, phone: Phone, backend: FastSandbox) -> None:
    """A person answering the bot's reply is read at once: the loop's pause over a batch
    with nothing new ends as soon as nothing is in flight (here the pause is a minute)."""
    release = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await release.wait()

    backend._sleep = held_sleep
    harness = await start_bot(services)
    try:
        assert harness.polling is not None
        harness.polling.idle_wait = 60.0
        chat = harness.chat(3, title="Budi")
        await consent(chat)
        await chat.send("/tambah_kk")
        await chat.send(SLOW_NIK, settle=False)
        for _ in range(300):
            if chat.bot_messages and "Memproses" in chat.bot_messages[-1].text:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the loop has seen nothing new and pauses
        release.set()
        await harness.settle()
        assert "Kode OTP 6 angka sudah dikirim" in chat.reply
        await asyncio.wait_for(_confirmed(harness.emulator), 5)
        await asyncio.wait_for(chat.send("/akun"), 5)  # read at once, not a minute later
        assert texts.ACCOUNTS_EMPTY in chat.reply
    finally:
        await harness.stop()


async def _confirmed(emulator: object) -> None:
    while pending_ids(emulator):
        await asyncio.sleep(0.01)

async def test_a_graceful_stop_confirms_what_was_handled(services: Services,
                                                         services_factory: object) -> None:
    harness = await start_bot(services)
    chat = harness.chat(5, title="Ani")
    await chat.send("/start")
    shown = len(chat.bot_messages)
    await harness.stop()
    assert pending_ids(harness.emulator) == []
    again = await start_bot(services, harness.emulator)
    try:
        await asyncio.sleep(0.3)
        await again.settle()
        assert len(again.emulator.bot_messages(5)) == shown  # /start not answered twice
    finally:
        await again.stop()


async def test_an_update_in_hand_at_sigkill_is_handled_after_the_restart(
        tmp_path: Path) -> None:
    """Over HTTP: the NIK is being looked up (3 s) when the bot is SIGKILLed. The restarted
    bot gets the same update again and carries on; the account is added once."""
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(4400, title="Ani")
        await chat.consent()
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(SLOW_NIK, expect="Memproses")
        assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
        assert "Kode OTP 6 angka sudah dikirim" not in chat.reply
        await bot.start()
        await chat.until("Kode OTP 6 angka sudah dikirim", timeout=30)
        await chat.send(bot.last_code(), expect="Kode benar")
        await chat.send("Ibu", expect="Tersimpan")
        assert bot.read_db("SELECT count(*) FROM accounts WHERE chat_id = ?", 4400) == [(1,)]
        assert len(bot.sms) == 1


async def test_after_sigkill_the_resent_updates_of_a_chat_keep_their_order(
        tmp_path: Path) -> None:
    """The NIK is being looked up and /batal waits behind it in the same chat when the bot
    is killed. Both come again, in order: the code is sent, then the flow is cancelled;
    the other way round the NIK would arrive after the cancel, outside the flow."""
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(4500, title="Ani")
        await chat.consent()
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(SLOW_NIK, expect="Memproses")
        await chat.send("/batal")
        batal = bot.emulator.updates[-1]["update_id"]
        await wait_for(lambda: bot.emulator.last_delivered_id >= batal, "/batal fetched")
        await asyncio.sleep(0.1)  # and queued behind the look-up
        assert "Dibatalkan" not in chat.reply
        assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
        chat._mark = len(bot.emulator.events)
        await bot.start()
        await chat.until("Dibatalkan", timeout=30)
        reply = chat.reply
        assert reply.index("Kode OTP 6 angka sudah dikirim") < reply.index("Dibatalkan")
        assert len(bot.sms) == 1
        assert bot.read_db("SELECT count(*) FROM challenges") == [(0,)]


async def test_a_resent_update_that_was_done_is_not_answered_again(tmp_path: Path) -> None:
    """One chat's NIK is being looked up (3 s), so the offset stays below it; another
    chat's NIK after it is done: code sent, state committed with its handled_updates row.
    SIGKILL: Telegram sends both again. The one in hand is handled; the done one is
    skipped: no second answer, no second SMS, and its code still works."""
    async with RunningBot(tmp_path) as bot:
        slow, fast = bot.chat(4600, title="Ani"), bot.chat(4601, title="Budi")
        for chat in (slow, fast):
            await chat.consent()
            await chat.send("/tambah_kk", expect="Kirim")
        await slow.send(SLOW_NIK, expect="Memproses")
        await fast.send(NIK_A, expect="Kode OTP 6 angka sudah dikirim")
        done = bot.emulator.updates[-1]["update_id"]
        code = bot.last_code()
        await asyncio.sleep(0.3)  # the state commit right after the answer
        assert "Kode OTP 6 angka sudah dikirim" not in slow.reply, "still in hand"
        assert done in [u["update_id"] for u in bot.emulator.updates], "not confirmed"
        sms = len(bot.sms)
        assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
        fast._mark = len(bot.emulator.events)
        await bot.start()
        await slow.until("Kode OTP 6 angka sudah dikirim", timeout=30)
        await bot.caught_up()
        await asyncio.sleep(0.5)
        assert fast.reply == "", "the done update was not answered again"
        assert len(bot.sms) == sms + 1, "only the update in hand sent its code"
        await fast.send(code, expect="Kode benar")
    assert "already handled before the restart: skipped" in bot.stderr
