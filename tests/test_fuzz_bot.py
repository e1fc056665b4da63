"""Whole-bot stateful fuzzing: hypothesis drives several chats through the Bot API
stand-in with random commands, texts, identifiers, codes, taps (valid, stale, forged),
restarts and clock jumps, and after every step checks what must always hold:

- no exception reaches the error handler, and Telegram refused no call;
- every callback query was answered (exactly once: a second answer is a refused call);
- no chat ever holds more than KK_MAX_ACCOUNTS accounts;
- no chat is ever shown another chat's data (a name, a masked NIK or a card it never gave);
- no reply holds an unmasked NIK, card number or phone number.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import Identifier, IdKind, mask_card, mask_nik
from bot.jkn.sandbox import SandboxBackend
from bot.services import Services, open_services
from tests.conftest import (
    CARD_A,
    NIKS,
    CodeBook,
    FakeClock,
    FastSandbox,
    Phone,
    make_settings,
    start_bot,
)

CHATS = (11, 12, 13)
IDENTIFIERS = (*NIKS, CARD_A, "3174014506900000", "3174014506900001", "3174014506900002",
               "3174014506900004", "3174 0145 0690 0011")
TEXTS = ("/start", "/tambah_kk", "/akun", "/status", "/status semua", "/hapus_kk",
         "/hapus_data", "/batal", "/bantuan", "/privasi", "halo", "KK Saya", "Ibu & <b>Ayah</b>",
         "12345", "000000", "x" * 40, "١٢٣٤٥٦", "/foo", "/tambah_kk 3273012304850022")
FORGED = ("acct:switch:AAAAAAAA", "rm:yes:zzz", "rm:pick:", "add:label:9", "st:all",
          "st:one", "add:go", "add:resend", "erase:yes", "consent:yes", "garbage", "x" * 64)
UNMASKED = re.compile(r"(?<!\d)(?:\d{16}|\d{13}|(?:\+?62|0)8\d{8,11})(?!\d)")
SANDBOX = SandboxBackend()
PANDAWA = "08118165165"  # BPJS's public WhatsApp service number, named in replies


def person(identifier: str) -> tuple[str, str, str] | None:
    """(name, masked NIK, masked card) the sandbox answers for a typed identifier."""
    digits = identifier.replace(" ", "")
    kind = IdKind.CARD if len(digits) == 13 else IdKind.NIK
    if digits.endswith(("0000", "0004")):
        return None
    found = SANDBOX.participant(Identifier(kind, digits))
    return found.name, mask_nik(found.nik), mask_card(found.card)


class ErrorsSeen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class BotMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="kk-fuzz-"))
        self.clock, self.phone, self.backend = FakeClock(), Phone(), FastSandbox()
        self.codes = CodeBook()
        self.services = self.run(self._open())
        self.harness: BotHarness = self.run(start_bot(self.services))
        self.chats = {chat_id: self.harness.chat(chat_id, title=f"Chat {chat_id}")
                      for chat_id in CHATS}
        self.typed: dict[int, set[str]] = {chat_id: set() for chat_id in CHATS}
        self.last_code: dict[int, str] = {}
        self.errors = ErrorsSeen()
        logging.getLogger("handlers.errors").addHandler(self.errors)
        self.steps = 0
        self.restarts = 0

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _open(self) -> Services:
        return await open_services(make_settings(self.tmp), clock=self.clock,
                                   backend=self.backend, sms=self.phone,
                                   code_factory=self.codes)

    def teardown(self) -> None:
        logging.getLogger("handlers.errors").removeHandler(self.errors)
        try:
            self.run(self.harness.stop())
            self.run(self.services.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _after(self, chat_id: int, sms_before: int) -> None:
        self.steps += 1
        if len(self.phone.inbox) > sms_before:
            self.last_code[chat_id] = self.phone.last_code()

    # -- what users and attackers do ------------------------------------------------------

    @rule(chat_id=st.sampled_from(CHATS), text=st.sampled_from(TEXTS))
    def send_text(self, chat_id: int, text: str) -> None:
        before = len(self.phone.inbox)
        if text.startswith("/tambah_kk "):
            self.typed[chat_id].add(text.split(maxsplit=1)[1])
        self.run(self.chats[chat_id].send(text))
        self._after(chat_id, before)

    @rule(chat_id=st.sampled_from(CHATS), identifier=st.sampled_from(IDENTIFIERS))
    def send_identifier(self, chat_id: int, identifier: str) -> None:
        before = len(self.phone.inbox)
        self.typed[chat_id].add(identifier)
        self.run(self.chats[chat_id].send(identifier))
        self._after(chat_id, before)

    @precondition(lambda self: bool(self.last_code))
    @rule(data=st.data())
    def send_the_code(self, data: st.DataObject) -> None:
        chat_id = data.draw(st.sampled_from(sorted(self.last_code)))
        before = len(self.phone.inbox)
        self.run(self.chats[chat_id].send(self.last_code[chat_id]))
        self._after(chat_id, before)

    @rule(chat_id=st.sampled_from(CHATS), data=st.data())
    def tap_a_button(self, chat_id: int, data: st.DataObject) -> None:
        """A real button of any message still in the chat: current or stale."""
        chat = self.chats[chat_id]
        with_buttons = [m for m in chat.bot_messages if m.buttons]
        if not with_buttons:
            return
        message = data.draw(st.sampled_from(with_buttons[-4:]))
        _, callback = data.draw(st.sampled_from(message.buttons))
        before = len(self.phone.inbox)
        self.run(chat.tap_data(callback, message=message))
        self._after(chat_id, before)

    @rule(chat_id=st.sampled_from(CHATS), other=st.sampled_from(CHATS), data=st.data())
    def tap_forged_data(self, chat_id: int, other: int, data: st.DataObject) -> None:
        """Forged data, or the button data of another chat's message."""
        chat = self.chats[chat_id]
        if not chat.bot_messages:
            return
        theirs = [d for m in self.chats[other].bot_messages for _, d in m.buttons]
        forged = data.draw(st.sampled_from(FORGED + tuple(theirs[-6:])))
        before = len(self.phone.inbox)
        self.run(chat.tap_data(forged, message=chat.last_message))
        self._after(chat_id, before)

    @rule(chat_id=st.sampled_from(CHATS), nik=st.sampled_from(NIKS),
          label=st.sampled_from(("KK Saya", "Ibu", "<i>Nenek</i>")))
    def add_a_card(self, chat_id: int, nik: str, label: str) -> None:
        """The whole happy path in one step, so accounts exist for the other rules."""
        chat = self.chats[chat_id]
        self.typed[chat_id].add(nik)
        for text in ("/start", "#Saya setuju", "/tambah_kk", nik, "#Lanjutkan", "CODE", label):
            before = len(self.phone.inbox)
            if text == "#Lanjutkan" and "Pilih akun yang diganti" in chat.last_text:
                self.run(chat.tap(chat.buttons[0]))  # the fourth card replaces the first
            elif text.startswith("#"):
                if text[1:] in chat.buttons:
                    self.run(chat.tap(text[1:]))
            elif text == "CODE":
                if chat_id in self.last_code:
                    self.run(chat.send(self.last_code[chat_id]))
            else:
                self.run(chat.send(text))
            self._after(chat_id, before)

    @rule()
    def restart(self) -> None:
        async def again() -> tuple[BotHarness, Services]:
            await self.harness.stop()
            await self.services.close()
            services = await self._open()
            return await start_bot(services, self.harness.emulator), services

        self.harness, self.services = self.run(again())
        self.chats = {chat_id: EmulatedChat(self.harness, chat_id) for chat_id in CHATS}
        self.restarts += 1

    @rule(seconds=st.sampled_from((61, 301, 1801, 3601, 86401, 31 * 86400)))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # -- what must always hold ------------------------------------------------------------

    @invariant()
    def nothing_failed_and_telegram_refused_nothing(self) -> None:
        assert self.errors.records == [], [r.getMessage() for r in self.errors.records]
        refused = self.harness.emulator.errors
        if self.restarts:  # what each message shows is remembered in memory only: after a
            # restart an edit to identical content is sent once, and "not modified" is fine
            refused = [e for e in refused if "message is not modified" not in e[1]]
        assert refused == [], refused
        assert self.harness.emulator.unanswered_queries() == []

    @invariant()
    def at_most_three_accounts_per_chat(self) -> None:
        for chat_id in CHATS:
            assert len(self.run(self.services.accounts.list(chat_id))) <= 3

    @invariant()
    def each_chat_sees_only_its_own(self) -> None:
        for chat_id in CHATS:
            shown = "\n".join(m.text for m in self.harness.emulator.bot_messages(chat_id))
            leaked = UNMASKED.search(shown.replace(PANDAWA, ""))
            assert not leaked, leaked
            mine = {p for i in self.typed[chat_id] if (p := person(i)) is not None}
            for other in CHATS:
                if other == chat_id:
                    continue
                for identifier in self.typed[other] - self.typed[chat_id]:
                    theirs = person(identifier)
                    if theirs is None or theirs in mine:
                        continue
                    name, masked_nik, masked_card = theirs
                    assert name not in shown, f"chat {chat_id} saw {other}'s participant"
                    assert masked_nik not in shown and masked_card not in shown


BotMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_whole_bot_fuzzing = BotMachine.TestCase


class LongBotMachine(BotMachine):
    """The same, longer (make test-slow)."""


LongBotMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_whole_bot_fuzzing_long = pytest.mark.slow(LongBotMachine.TestCase)
