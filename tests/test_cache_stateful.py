"""The account cache against a plain in-memory model, driven by hypothesis.

Random add / switch / remove / re-add / erase across several chats; after every step the
database must equal the model: same accounts, same order, one active at most, never more
than the bound, evicting the least recently used one.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot.accounts import AccountService
from storage.accounts_repo import AccountsRepo, DuplicateAccountError, NewAccount
from storage.crypto import Vault, generate_master_key
from storage.db import Database

CHATS = (1, 2, 3)
NIKS = tuple(f"31740145069{i:05d}" for i in range(1, 7))
MAX = 3


@dataclass
class Entry:
    nik: str
    label: str
    last_used: float


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.now = 1000.0
        self.db = self.run(Database.open(Path(self.tmp.name) / "kk.sqlite3",
                                         clock=lambda: self.now))
        self.service = AccountService(AccountsRepo(self.db, Vault(generate_master_key())),
                                      max_accounts=MAX, session_days=30,
                                      clock=lambda: self.now)
        self.model: dict[int, list[Entry]] = {c: [] for c in CHATS}
        self.active: dict[int, str | None] = {c: None for c in CHATS}

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.db.close())
        self.loop.close()
        self.tmp.cleanup()

    def tick(self) -> None:
        self.now += 1.0

    async def slot_of(self, chat: int, nik: str) -> str | None:
        account = await self.service.find_by_nik(chat, nik)
        return account.slot if account else None

    @rule(chat=st.sampled_from(CHATS), nik=st.sampled_from(NIKS),
          label=st.text(min_size=1, max_size=32))
    def add(self, chat: int, nik: str, label: str) -> None:
        self.tick()
        entries = self.model[chat]
        victim = self.run(self.service.eviction_candidate(chat))
        expected_victim = (min(entries, key=lambda e: e.last_used)
                           if len(entries) >= MAX else None)
        assert (victim.nik if victim else None) == (expected_victim.nik
                                                    if expected_victim else None)
        new = NewAccount(nik=nik, card="0001" + nik[-9:], name="NAMA", phone="+6281200000000",
                         label=label)
        if any(e.nik == nik for e in entries):
            try:
                self.run(self.service.add(chat, new, evict_slot=victim.slot if victim else None))
            except DuplicateAccountError:
                return
            raise AssertionError("a duplicate NIK was accepted")
        self.run(self.service.add(chat, new, evict_slot=victim.slot if victim else None))
        if expected_victim is not None:
            entries.remove(expected_victim)
        entries.append(Entry(nik, label, self.now))
        self.active[chat] = nik

    @rule(chat=st.sampled_from(CHATS), nik=st.sampled_from(NIKS))
    def switch(self, chat: int, nik: str) -> None:
        self.tick()
        slot = self.run(self.slot_of(chat, nik)) or "missing"
        outcome, _ = self.run(self.service.switch(chat, slot))
        entry = next((e for e in self.model[chat] if e.nik == nik), None)
        if entry is None:
            assert outcome.value == "not_found"
            return
        if self.active[chat] == nik:
            assert outcome.value == "already_active"
            return
        assert outcome.value == "switched"
        entry.last_used = self.now
        self.active[chat] = nik

    @rule(chat=st.sampled_from(CHATS), nik=st.sampled_from(NIKS))
    def remove(self, chat: int, nik: str) -> None:
        slot = self.run(self.slot_of(chat, nik)) or "missing"
        removed = self.run(self.service.remove(chat, slot))
        entry = next((e for e in self.model[chat] if e.nik == nik), None)
        assert (removed is not None) == (entry is not None)
        if entry is None:
            return
        self.model[chat].remove(entry)
        if self.active[chat] == nik:
            remaining = self.model[chat]
            self.active[chat] = (max(remaining, key=lambda e: e.last_used).nik
                                 if remaining else None)

    @rule(chat=st.sampled_from(CHATS), other=st.sampled_from(CHATS))
    def foreign_slot_does_nothing(self, chat: int, other: int) -> None:
        if chat == other or not self.model[other]:
            return
        slot = self.run(self.slot_of(other, self.model[other][0].nik))
        assert slot is not None
        assert self.run(self.service.switch(chat, slot))[0].value == "not_found"
        assert self.run(self.service.remove(chat, slot)) is None

    @rule(chat=st.sampled_from(CHATS))
    def erase(self, chat: int) -> None:
        self.run(self.db.erase_chat(chat))
        self.model[chat] = []
        self.active[chat] = None

    @invariant()
    def database_equals_model(self) -> None:
        for chat in CHATS:
            accounts = self.run(self.service.list(chat))
            assert len(accounts) <= MAX
            assert [(a.nik, a.label) for a in accounts] == [
                (e.nik, e.label) for e in self.model[chat]]
            active = [a.nik for a in accounts if a.active]
            assert active == ([self.active[chat]] if self.active[chat] else [])


CacheMachine.TestCase.settings = hyp_settings(max_examples=40, stateful_step_count=30,
                                              deadline=None)
TestCache = CacheMachine.TestCase
