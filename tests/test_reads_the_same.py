"""Replies that must not tell a stranger anything are compared call by call (issue 19,
class 3): the whole sequence of Bot API calls each path makes in the chat (method and
every parameter, with chat and message ids, callback data and the masked NIK normalised),
not only the last text. A path that sends a new message where another edits the progress
message, deletes differently, or adds a keyboard, tells the difference.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import mask_nik
from tests.conftest import NIK_B, NIK_C, NIK_D, Phone, consent

NOT_FOUND = "3174014506900000"
NO_PHONE = "3174014506900002"
Call = tuple[str, str]


class Recorder:
    """Every Bot API call the bot makes, as the stand-in receives it."""

    def __init__(self, bot: BotHarness) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        emulator = bot.emulator
        inner = emulator.handle

        async def handle(method: str, params: Any) -> Any:
            if method != "getUpdates":
                self.calls.append((method, dict(params)))
            return await inner(method, params)

        emulator.handle = handle  # type: ignore[method-assign]

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int, chat: EmulatedChat, nik: str) -> list[Call]:
        """The calls for ``chat`` since ``mark``, ids and the NIK normalised."""
        ids: dict[str, str] = {}
        out = []
        for method, params in self.calls[mark:]:
            if str(params.get("chat_id")) != str(chat.chat_id):
                continue
            shown = {}
            for key, value in sorted(params.items()):
                text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                if key == "chat_id":
                    text = "C"
                elif key == "message_id":
                    text = ids.setdefault(text, f"M{len(ids)}")
                text = re.sub(r'"callback_data": "[^"]*"', '"callback_data": "D"', text)
                shown[key] = text.replace(mask_nik(nik), "<NIK>")
            out.append((method, json.dumps(shown, sort_keys=True)))
        return out


async def _stranger(bot: BotHarness, chat_id: int) -> EmulatedChat:
    chat = bot.chat(chat_id)
    await consent(chat)
    return chat


async def _probe(recorder: Recorder, chat: EmulatedChat, nik: str) -> list[Call]:
    """/tambah_kk, the NIK, then a word: everything the chat is shown until it waits."""
    mark = recorder.mark()
    await chat.send("/tambah_kk")
    await chat.send(nik)
    await chat.send("hai")
    calls = recorder.since(mark, chat, nik)
    assert calls, "the bot answered"
    return calls


async def test_every_way_a_code_cannot_go_out_makes_the_same_calls_as_not_found(
        bot: BotHarness, phone: Phone) -> None:
    recorder = Recorder(bot)
    other = await _stranger(bot, 9100)
    baseline = await _probe(recorder, await _stranger(bot, 9001), NOT_FOUND)
    assert any(method == "editMessageText" for method, _ in baseline), \
        "the answer replaces the progress message"
    assert await _probe(recorder, await _stranger(bot, 9002), NO_PHONE) == baseline, \
        "no phone on file"
    phone.fail_next = 1
    assert await _probe(recorder, await _stranger(bot, 9003), NIK_B) == baseline, \
        "the SMS gateway failed"
    for _ in range(2):  # ten wrong codes for NIK_C from another chat: it is locked
        await other.send("/tambah_kk")
        await other.send(NIK_C)
        for _ in range(5):
            code = phone.last_code()
            await other.send(f"{(int(code) + 1) % 1_000_000:06d}")
    assert await _probe(recorder, await _stranger(bot, 9004), NIK_C) == baseline, \
        "a locked participant"
    for _ in range(5):  # NIK_D's phone had its codes this hour, from another chat
        await other.send("/tambah_kk")
        await other.send(NIK_D)
    assert await _probe(recorder, await _stranger(bot, 9005), NIK_D) == baseline, \
        "a phone out of codes"


async def test_the_chat_cap_makes_the_same_calls_for_a_nik_that_exists_and_one_that_does_not(
        bot: BotHarness, phone: Phone) -> None:
    recorder = Recorder(bot)
    probe = await _stranger(bot, 9200)
    for i in range(10):  # ten codes today: the chat's cap
        await probe.send("/tambah_kk")
        await probe.send(f"31740145069001{i:02d}")
    assert len(phone.inbox) == 10
    found = await _probe(recorder, probe, NIK_B)
    missing = await _probe(recorder, probe, NOT_FOUND)
    assert found == missing
    assert "Batas kode OTP hari ini" in "".join(params for _, params in found)
