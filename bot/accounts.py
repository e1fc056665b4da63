"""The per-chat account cache as the conversations see it (no Telegram here).

Rules: at most ``max_accounts`` per chat; a new account beyond that replaces the one the
user picks before the OTP, removed in the same transaction as the insert; an account is
switchable without OTP for ``session_days`` after its last verification.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot import metrics
from storage.accounts_repo import (
    Account,
    AccountsRepo,
    Brief,
    CacheFullError,
    DuplicateAccountError,
    Listing,
    NewAccount,
)

__all__ = [
    "Account", "AccountService", "AddOutcome", "Brief", "CacheFullError",
    "DuplicateAccountError", "NewAccount", "SwitchOutcome",
]


class SwitchOutcome(enum.StrEnum):
    SWITCHED = "switched"
    ALREADY_ACTIVE = "already_active"
    NEEDS_OTP = "needs_otp"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class AddOutcome:
    account: Account
    evicted: Account | None


class AccountService:
    def __init__(self, repo: AccountsRepo, *, max_accounts: int, session_days: int,
                 clock: Callable[[], float]) -> None:
        self.repo = repo
        self.max_accounts = max_accounts
        self.session_days = session_days
        self.clock = clock

    def is_fresh(self, account: Account | Brief) -> bool:
        return self.clock() - account.verified_at < self.session_days * 86400

    def fresh_since(self) -> float:
        """Accounts verified after this moment are within ``session_days``."""
        return self.clock() - self.session_days * 86400

    async def list(self, chat_id: int) -> list[Account]:
        return await self.repo.list(chat_id)

    async def list_brief(self, chat_id: int) -> Listing:
        """Labels and NIKs only: what a listing shows."""
        return await self.repo.list_brief(chat_id)

    async def tap(self, chat_id: int, slot: str
                  ) -> tuple[SwitchOutcome, Brief | None, Listing]:
        """A tap on an account button: switch if allowed; the tapped account and the
        listing after it, in one round trip to the database."""
        now = self.clock()
        outcome, listing = await self.repo.tap(chat_id, slot, now=now,
                                               fresh_since=now - self.session_days * 86400)
        tapped = next((b for b in listing if b.slot == slot), None)
        return SwitchOutcome(outcome), tapped, listing

    async def get(self, chat_id: int, slot: str) -> Account | None:
        return await self.repo.get(chat_id, slot)

    async def find_by_nik(self, chat_id: int, nik: str) -> Account | None:
        return await self.repo.find_by_nik(chat_id, nik)

    async def find_same(self, chat_id: int, nik: str, card: str) -> Account | None:
        """The chat's account of this participant: same NIK (when known) or same card."""
        return (await self.repo.find_by_nik(chat_id, nik)
                or await self.repo.find_by_card(chat_id, card))

    async def when_full(self, chat_id: int) -> Listing | None:
        """The chat's accounts if a new one would have to replace one of them."""
        listing = await self.repo.list_brief(chat_id)
        return listing if len(listing) >= self.max_accounts else None

    async def eviction_candidate(self, chat_id: int) -> Account | None:
        """The account a new one would push out: the least recently used, if full."""
        accounts = await self.repo.list(chat_id)
        if len(accounts) < self.max_accounts:
            return None
        return min(accounts, key=lambda a: a.last_used_at)  # ties: the oldest entry

    async def add(self, chat_id: int, new: NewAccount, *, evict_slot: str | None
                  ) -> AddOutcome:
        """Insert (and evict) atomically, consuming the chat's verified OTP challenge."""
        evicted = await self.repo.get(chat_id, evict_slot) if evict_slot else None
        account, evicted_slot = await self.repo.add(
            chat_id, new, max_accounts=self.max_accounts, evict_slot=evict_slot,
            now=self.clock(), consume_challenge=True)
        return AddOutcome(account, evicted if evicted_slot else None)

    async def switch(self, chat_id: int, slot: str) -> tuple[SwitchOutcome, Account | None]:
        account = await self.repo.get(chat_id, slot)
        if account is None:
            return SwitchOutcome.NOT_FOUND, None
        if not self.is_fresh(account):
            return SwitchOutcome.NEEDS_OTP, account
        if account.active:
            return SwitchOutcome.ALREADY_ACTIVE, account
        if not await self.repo.switch(chat_id, slot, now=self.clock()):
            return SwitchOutcome.NOT_FOUND, None
        return SwitchOutcome.SWITCHED, account

    async def reverified(self, chat_id: int, slot: str) -> Account | None:
        """A fresh OTP was accepted for a cached account: renew it and make it active."""
        if not await self.repo.mark_verified(chat_id, slot, now=self.clock(),
                                             consume_challenge=True):
            return None
        return await self.repo.get(chat_id, slot)

    async def remove(self, chat_id: int, slot: str) -> Account | None:
        account = await self.repo.get(chat_id, slot)
        if account is None or not await self.repo.remove(chat_id, slot):
            return None
        metrics.ERASES.labels("account").inc()
        return account

    async def save_status(self, chat_id: int, slot: str, status: dict[str, Any]) -> None:
        await self.repo.update_status(chat_id, slot, status, now=self.clock())

    async def set_remind(self, chat_id: int, slot: str, on: bool) -> bool:
        """Reminders for one account of the chat on or off; False if it is not there."""
        return await self.repo.set_remind(chat_id, slot, on)

    def status_blob(self, conn: sqlite3.Connection, chat_id: int, slot: str,
                    status: dict[str, Any]) -> bytes | None:
        """Inside the reminder log's unit of work: a status sealed for its account's row
        under the chat's key (None if the chat holds nothing any more)."""
        return self.repo.status_blob(conn, chat_id, slot, status)
