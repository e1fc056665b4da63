"""Updates are concurrent across chats and strictly ordered within a chat."""

from __future__ import annotations

import asyncio

from telegram import Chat, Message, Update, User

from bot.processor import ChatOrderedProcessor
from bot.services import Services
from tests.conftest import FastSandbox, Phone, add_account, consent, start_bot


def update(update_id: int, chat_id: int) -> Update:
    user = User(chat_id, "U", False)
    return Update(update_id, message=Message(update_id, None,  # type: ignore[arg-type]
                                             Chat(chat_id, "private"), from_user=user))


async def settled(processor: ChatOrderedProcessor, handed_over: int) -> None:
    """Until every update handed over was handled or dropped."""
    async with asyncio.timeout(5):
        while processor.completed < handed_over:
            await asyncio.sleep(0.001)


async def test_one_chat_is_ordered_and_other_chats_are_not_blocked() -> None:
    processor = ChatOrderedProcessor(max_concurrent_updates=8)
    log: list[tuple[int, int, str]] = []
    slow_chat_gate = asyncio.Event()

    async def work(uid: int, chat: int) -> None:
        log.append((chat, uid, "start"))
        if chat == 1 and uid == 1:
            await slow_chat_gate.wait()
        log.append((chat, uid, "end"))

    tasks = [asyncio.create_task(processor.process_update(update(uid, chat), work(uid, chat)))
             for uid, chat in ((1, 1), (2, 1), (3, 2), (4, 1), (5, 2))]
    await asyncio.sleep(0.05)
    assert (2, 3, "end") in log and (2, 5, "end") in log, "chat 2 ran while chat 1 waited"
    assert (1, 2, "start") not in log, "chat 1's second update waits for its first"
    slow_chat_gate.set()
    await asyncio.gather(*tasks)
    await settled(processor, 5)
    chat1 = [uid for chat, uid, what in log if chat == 1 and what == "start"]
    assert chat1 == [1, 2, 4]
    assert processor.completed == 5 and processor.active_chats == 0


async def test_a_flooding_chat_holds_one_slot_and_its_backlog_is_bounded() -> None:
    processor = ChatOrderedProcessor(max_concurrent_updates=2, max_backlog=3)
    gate = asyncio.Event()
    done: list[int] = []

    async def work(uid: int) -> None:
        await gate.wait()
        done.append(uid)

    flood = [asyncio.create_task(processor.process_update(update(i, 1), work(i)))
             for i in range(10)]
    await asyncio.sleep(0.02)
    other = asyncio.create_task(processor.process_update(update(100, 2), work(100)))
    await asyncio.sleep(0.02)
    assert processor.dropped == 6, "only the worker and a backlog of 3 are kept"
    gate.set()
    await asyncio.gather(*flood, other)
    await settled(processor, 11)
    assert 100 in done and [u for u in done if u != 100] == [0, 1, 2, 3]


async def test_a_slow_backend_in_one_chat_does_not_delay_another(
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
        await slow.send("3174014506900003", settle=False)
        await asyncio.sleep(0.05)
        await quick.send("/tambah_kk", settle=False)
        for _ in range(200):
            if "Kirim NIK" in (quick.bot_messages[-1].text if quick.bot_messages else ""):
                break
            await asyncio.sleep(0.01)
        assert "Kirim NIK" in quick.last_text, "chat 2 answered while chat 1's lookup hung"
        assert "Memproses" in slow.last_text
        release.set()
        await harness.settle()
        assert "Kode OTP 6 angka sudah dikirim" in slow.reply
        await add_account(quick, phone, "3273012304850022", "Cepat")
    finally:
        await harness.stop()
