"""Issue 22: the three journeys of the issue, counted in messages typed and buttons tapped.

    python -m bench.journeys            # this tree
    PYTHONPATH=/path/to/other/tree python -m bench.journeys   # another version

A user takes a button when the newest message offers it, else types the command: the
same goals on any version of the bot, so the counts compare the bots, not the scripts.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import open_services
from tests.conftest import (
    NIK_A,
    NIK_B,
    NIK_C,
    CodeBook,
    FakeClock,
    FastSandbox,
    Phone,
    make_settings,
)

KK_NUMBER = "3174010101200000"  # the Nomor KK at the top of a Kartu Keluarga


class User:
    def __init__(self, chat: EmulatedChat, phone: Phone, backend: FastSandbox) -> None:
        self.chat, self.phone, self.backend = chat, phone, backend
        self.messages = self.taps = self.digits = 0

    async def send(self, text: str) -> None:
        self.messages += 1
        self.digits += any(ch.isdigit() for ch in text)  # a NIK, a Nomor KK or a code
        await self.chat.send(text)

    async def tap(self, label: str) -> None:
        self.taps += 1
        await self.chat.tap(label)

    def offered(self, label: str) -> bool:
        return any(label in text for text, _ in self.chat.last_message.buttons)

    async def tap_or(self, label: str, command: str) -> None:
        if self.offered(label):
            await self.tap(label)
        else:
            await self.send(command)

    async def consent(self) -> None:
        await self.send("/start")
        await self.tap("Saya setuju")

    async def code(self, spaced: bool = False) -> None:
        code = self.phone.last_code()
        await self.send(f"{code[:3]} {code[3:]}" if spaced else code)
        if "6 angka" in self.chat.last_text:  # refused: typed again without the space
            await self.send(code)

    async def add(self, nik: str, label: str, *, kk_first: bool = False,
                  backend_down: bool = False, spaced: bool = False) -> None:
        await self.tap_or("Tambah", "/tambah_kk")
        if kk_first:
            await self.send(KK_NUMBER)
        self.backend.down = backend_down
        await self.send(nik)
        self.backend.down = False
        if backend_down:
            await self.tap_or("Coba lagi", nik)
        await self.code(spaced)
        if self.offered(label):
            await self.tap(label)
        else:
            await self.send(label)
        assert "Tersimpan" in self.chat.reply, self.chat.reply

    async def see_card_of(self, label: str) -> None:
        await self.send("/akun")
        await self.tap(label)
        if not self.chat.last_text.startswith(label):
            await self.send("/status")
        assert self.chat.last_text.startswith(label), self.chat.last_text


async def mother(user: User) -> None:
    """A 45-year-old mother keeps her own, her parents' and her in-laws' cards: adds all
    three, looks at all of them, opens her parents' card and history, turns on their
    reminder."""
    await user.consent()
    for nik, label in ((NIK_A, "KK Saya"), (NIK_B, "KK Orang Tua"), (NIK_C, "KK Mertua")):
        await user.add(nik, label)
    await user.tap_or("Semua akun", "/status semua")
    await user.see_card_of("KK Orang Tua")
    await user.tap_or("Riwayat", "/riwayat")
    await user.tap_or("Pengingat", "/pengingat")
    await user.tap("KK Orang Tua")


async def rt_head(user: User) -> None:
    """An RT head helps three neighbours in turn: one first gives the Nomor KK, for one the
    BPJS service is down at the first try; each card is looked at, then removed."""
    await user.consent()
    for i, nik in enumerate((NIK_A, NIK_B, NIK_C)):
        await user.add(nik, f"Tetangga {i + 1}", kk_first=i == 0, backend_down=i == 1)
        await user.send("/status")
        await user.send("/hapus_kk")
        await user.tap(f"Tetangga {i + 1}")
        await user.tap("Ya, hapus")


async def impatient(user: User) -> None:
    """A 24-year-old: says hello first, types the code with a space, looks at the card,
    taps refresh three times, then asks for the history and erases everything."""
    await user.consent()
    await user.send("halo")
    await user.add(NIK_A, "KK Saya", spaced=True)
    await user.tap_or("Semua akun", "/status")
    for _ in range(3):
        await user.tap("Perbarui")
    await user.tap_or("Riwayat", "/riwayat")
    await user.send("/hapus_data")
    await user.tap("Ya, hapus semua")


async def run(journey: object) -> tuple[int, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        phone, backend = Phone(), FastSandbox()
        services = await open_services(make_settings(data), clock=FakeClock(), backend=backend,
                                       sms=phone, code_factory=CodeBook())
        harness = await BotHarness(services).start()
        try:
            user = User(harness.chat(1001), phone, backend)
            await journey(user)  # type: ignore[operator]
            return user.messages, user.taps, user.digits
        finally:
            await harness.stop()
            await services.close()


async def main() -> None:
    for journey in (mother, rt_head, impatient):
        messages, taps, digits = await run(journey)
        sys.stdout.write(f"{journey.__name__:10} messages {messages:3} (numbers typed "
                         f"{digits:2})  taps {taps:3}  total {messages + taps:3}\n")


if __name__ == "__main__":
    asyncio.run(main())
