"""`python -m bot demo`: the whole bot in the terminal, no token, no network.

Sandbox backend, console SMS, a throwaway data directory. Bot messages print as text with
their buttons numbered; typing ``#1`` taps button 1 of the newest message with buttons,
``#kontak`` taps the 📱 button (the demo user's Telegram number is the phone on file of
the sample NIK, so it proves that participant and no other); anything else is sent as a
message; ``/keluar`` or end of input exits 0.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.config import Settings
from bot.devtools.emulator import BotApiEmulator
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import Identifier, IdKind
from bot.jkn.sandbox import SandboxBackend
from bot.services import open_services

DEMO_CHAT = 1001
SAMPLE_NIK = "3174014506900011"
CONTACT = "#kontak"

BANNER = (
    "Asisten KK — demo di terminal (mode sandbox, tanpa jaringan, data dibuang saat keluar).\n"
    "Ketik pesan seperti di Telegram. '#1' mengetuk tombol [1]. '/keluar' untuk berhenti.\n"
    "'#kontak' mengetuk tombol 📱 (di demo, nomor Telegram Anda = nomor HP NIK contoh).\n"
    "Coba: /start, lalu /tambah_kk dengan NIK contoh 3174014506900011 "
    "(akhiran 0000–0004 = kasus khusus).\n"
)


class Screen:
    """Prints what the bot does in the chat since the last look."""

    def __init__(self, emulator: BotApiEmulator, out: TextIO) -> None:
        self.emulator = emulator
        self.out = out
        self.seen = 0

    def flush(self) -> None:
        events = self.emulator.events[self.seen:]
        # A message sent and then edited during one action is shown once, as it ends up.
        last_index = {e.message_id: i for i, e in enumerate(events)
                      if e.kind in ("message", "edit")}
        new_ids = {e.message_id for e in events if e.kind == "message"}
        shown: set[int | None] = set()
        for event in events:
            if event.kind in ("message", "edit") and event.message_id not in shown:
                shown.add(event.message_id)
                fresh = event.message_id in new_ids
                self._message(event.message_id, "🤖 " if fresh else "🤖 (diperbarui) ",
                              events[last_index[event.message_id]].text)
            elif event.kind == "delete" and event.text == "user":
                self.out.write("   (pesan Anda dihapus oleh bot demi keamanan)\n")
            elif event.kind == "answer":
                self.out.write(f"   💬 {event.text}\n")
        self.seen = len(self.emulator.events)
        self.out.flush()

    def _message(self, message_id: int | None, prefix: str, text: str) -> None:
        message = self.emulator.chats[DEMO_CHAT].messages.get(message_id or 0)
        if message is None:
            return
        body = text.replace("\n", "\n   ")
        self.out.write(f"\n{prefix}{body}\n")
        if message.buttons:
            labels = "  ".join(f"[{i}] {label}" for i, (label, _) in
                               enumerate(message.buttons, 1))
            self.out.write(f"   {labels}\n")
        for button in message.keyboard:
            hint = f"  (ketik {CONTACT})" if button.get("request_contact") else ""
            self.out.write(f"   ⌨ {button.get('text', '')}{hint}\n")


async def _read_line(interactive: bool) -> str | None:
    if interactive:
        sys.stdout.write("> ")
        sys.stdout.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.rstrip("\r\n") if line else None


def demo_telegram_number() -> str:
    """The demo user's own Telegram number, as Telegram sends it (no "+")."""
    phone = SandboxBackend().participant(Identifier(IdKind.NIK, SAMPLE_NIK)).phone
    assert phone is not None
    return phone.lstrip("+")


async def _act(chat: EmulatedChat, screen: Screen, line: str) -> None:
    if line == CONTACT:
        await chat.share_contact(demo_telegram_number())
    elif line.startswith("#") and line[1:].strip().isdigit():
        number = int(line[1:].strip())
        for message in reversed(chat.bot_messages):
            if message.buttons:
                if 1 <= number <= len(message.buttons):
                    await chat.tap_data(message.buttons[number - 1][1], message=message)
                else:
                    screen.out.write(f"   (tidak ada tombol [{number}])\n")
                break
        else:
            screen.out.write("   (belum ada tombol untuk diketuk)\n")
    else:
        await chat.send(line)


async def run_demo(settings: Settings | None = None) -> int:
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="asisten-kk-demo-") as tmp:
        settings = settings or Settings(_env_file=None,  # type: ignore[call-arg]
                                        kk_data_dir=Path(tmp), jkn_backend="sandbox",
                                        otp_sender="console")
        services = await open_services(settings)
        harness = BotHarness(services)
        screen = Screen(harness.emulator, out)
        interactive = sys.stdin.isatty()
        out.write(BANNER)
        try:
            await harness.start()
            chat = harness.chat(DEMO_CHAT, title="Demo")
            while True:
                line = await _read_line(interactive)
                if line is None or line.strip() == "/keluar":
                    break
                if not line.strip():
                    continue
                if not interactive:
                    out.write(f"\n> {line}\n")
                await _act(chat, screen, line.strip())
                screen.flush()
        finally:
            await harness.stop()
            await services.close()
        out.write("\nSampai jumpa! 👋\n")
        out.flush()
    return 0
