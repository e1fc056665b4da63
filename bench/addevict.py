"""Add + evict through the bot (issue 24 item 6): a chat holding three cards adds a fourth,
picks which one goes, enters the code and names the new account; the figure is completed
adds per second, on SQLite and on PostgreSQL in the same interleaved rounds.

One add is five user actions, each issued when the previous one completed (one in flight
per chat, since a conversation is sequential; 64 chats at once):

====  ==============================  =================================================
step  the user                        complete when the bot has
====  ==============================  =================================================
0     sends ``/tambah_kk``            sent the NIK question
1     sends a new NIK                 sent "Maksimal 3 akun …, pilih akun yang diganti"
2     taps the first account listed   answered, edited the question and sent the 📱 tip
      (the sandbox look-up and the    (the SMS is sent before that message)
      SMS happen here)
3     sends the code from the SMS     sent "Kode benar" and the label question
4     taps the first label            answered and sent "Tersimpan …" (the eviction and
                                      the insert, one unit of work)
====  ==============================  =================================================

The rate is :class:`bench.common.ClosedLoop`'s (actions per second, the first tenth of them
warm-up); adds per second is that / 5. A step whose answer is not the expected one fails
the round (no figure from a flow that went elsewhere). The NIKs are valid, distinct for every
chat and add (so the phones the sandbox gives them are too: a phone gets 5 codes an hour),
and avoid the sandbox's special endings (0000-0005): the sandbox answers at once with a
participant and a phone. The SMS caps stay the bot's defaults except the
global hourly budget (raised: 64 chats × 4 adds in a few seconds is more than 200 an hour);
each round starts on a fresh database in process, and has 64 chats of its own over HTTP, so
no chat nears its 10 codes a day.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bench.common import (
    BenchError,
    ClosedLoop,
    LoopResult,
    Pending,
    QuietSender,
    TrackingEmulator,
    nik_from,
)
from bench.inprocess import bot_session
from bench.params import Params
from bot import texts
from bot.identity import Identifier, IdKind
from bot.jkn.sandbox import SandboxBackend
from handlers.keyboards import ADD_EVICT, LABEL

STEPS = 5
SAVED = texts.SAVED.split("<", 1)[0]  # "Tersimpan. «"
CODE = re.compile(r"\b(\d{6})\b")
#: The global SMS budget for the add rounds (SMS_MAX_PER_HOUR; its maximum).
SMS_BUDGET = 100_000


#: Adds per chat below this get distinct NIKs (and so, from the sandbox, distinct phones).
ADDS_PER_CHAT = 1009


def nik_for_add(chat_id: int, add: int) -> str:
    """A valid NIK (Bali, 5171), distinct for every (chat, add) with ``add`` below
    :data:`ADDS_PER_CHAT`, also across rounds in other chats (the phone behind a NIK may
    receive only 5 codes an hour), and none of the sandbox's special cases."""
    return nik_from(chat_id * ADDS_PER_CHAT + add, "5171")


class CodeSender(QuietSender):
    """Keeps the latest code sent to each phone (the user reads it off the SMS)."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: dict[str, str] = {}

    async def send(self, phone_e164: str, message: str) -> None:
        match = CODE.search(message)
        if match:
            self.latest[phone_e164] = match.group(1)


class AddFlow:
    """The issuer of :class:`ClosedLoop` for adds: each chat's next action from where its
    flow stands. ``code_for(phone)`` is the latest code the SMS gateway got for a phone."""

    def __init__(self, emulator: TrackingEmulator, chat_ids: list[int],
                 code_for: Callable[[str], str | None]) -> None:
        self.emulator = emulator
        self.code_for = code_for
        self.sandbox = SandboxBackend()
        self.step = dict.fromkeys(chat_ids, 0)
        self.adds = dict.fromkeys(chat_ids, 0)
        self.kinds: dict[int, int] = {}  # id(pending) -> step
        self.trouble: list[str] = []
        self.saved = 0

    def nik(self, chat_id: int) -> str:
        return nik_for_add(chat_id, self.adds[chat_id])

    def phone(self, nik: str) -> str | None:
        return self.sandbox.participant(Identifier(IdKind.NIK, nik)).phone

    def _last_buttons(self, chat_id: int) -> tuple[int, list[tuple[str, str]]]:
        messages = self.emulator.bot_messages(chat_id)
        if not messages:
            return 0, []
        return messages[-1].message_id, messages[-1].buttons

    def _lost(self, chat_id: int, why: str) -> Pending:
        """A flow that went elsewhere: noted (the round fails), the chat starts over."""
        self.trouble.append(f"chat {chat_id}, step {self.step[chat_id]}: {why}")
        self.step[chat_id] = 0
        return self.emulator.send(chat_id, "/batal")

    def issue(self, chat_id: int, _number: int) -> Pending:
        step = self.step[chat_id]
        em = self.emulator
        if step == 0:
            item = em.send(chat_id, "/tambah_kk")
        elif step == 1:
            item = em.send(chat_id, self.nik(chat_id))
        elif step == 2:
            message_id, buttons = self._last_buttons(chat_id)
            slots = [data for _, data in buttons if ADD_EVICT.arg_of(data) is not None]
            if len(slots) != 3:
                return self._lost(chat_id, f"{len(slots)} accounts offered to replace")
            item = em.tap(chat_id, message_id, slots[0],
                          needs=("answercallbackquery", "editmessagetext", "sendmessage"))
        elif step == 3:
            phone = self.phone(self.nik(chat_id))
            code = self.code_for(phone) if phone else None
            if code is None:
                return self._lost(chat_id, "no code was sent")
            item = em.send(chat_id, code, replies=2)
        else:
            message_id, buttons = self._last_buttons(chat_id)
            labels = [data for _, data in buttons if LABEL.arg_of(data) is not None]
            if not labels:
                return self._lost(chat_id, "no label question")
            item = em.tap(chat_id, message_id, labels[0],
                          needs=("answercallbackquery", "sendmessage"))
            self.adds[chat_id] += 1
        self.kinds[id(item)] = step
        self.step[chat_id] = (step + 1) % STEPS
        return item

    def check(self, item: Pending) -> bool:
        """The last step's answer is "Tersimpan …"."""
        return self.kinds.get(id(item)) != STEPS - 1 or item.text.startswith(SAVED)


async def run_add(p: Params, database_url: str | None = None) -> LoopResult:
    """A closed loop of adds (``p.add_adds`` per round, ``p.max_seconds`` at most) in
    ``p.chats`` chats of three accounts each, on a fresh SQLite file or the fresh
    PostgreSQL database ``database_url``."""
    sender = CodeSender()
    async with bot_session(p.chats, database_url=database_url, sms=sender,
                           listings=False, sms_max_per_hour=SMS_BUDGET) as s:
        flow = AddFlow(s.emulator, s.chat_ids, sender.latest.get)
        loop = ClosedLoop(s.emulator, s.chat_ids, flow.issue, total=p.add_adds * STEPS,
                          per_chat=1, max_seconds=p.max_seconds, check=flow.check)
        result = await loop.run()
        if flow.trouble:
            raise BenchError(f"{len(flow.trouble)} add flows went astray, first: "
                             f"{flow.trouble[0]}")
        if result.anomalies:
            raise BenchError(f"{result.anomalies} adds did not end in 'Tersimpan'")
        api = s.bot_api()
        result.errors = api["bot_api_errors"]
        result.info["transport_retries"] = api["transport_retries"]
        result.info["adds_completed"] = sum(flow.adds.values())
        return result
