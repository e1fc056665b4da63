"""The per-chat account cache table. Every sensitive field is a vault ciphertext bound to
``accounts|chat|slot|field``; duplicates are found through the NIK blind index."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import aiosqlite

from storage.crypto import Vault
from storage.db import Database

SENSITIVE_FIELDS = ("nik", "card", "name", "phone", "label")
_COLUMNS = ("slot, nik_ct, card_ct, name_ct, phone_ct, label_ct, status_ct, status_at, "
            "verified_at, last_used_at, created_at, active, lookup_kind")


class CacheFullError(Exception):
    """The chat already holds the maximum and no (still existing) account was named to evict."""


class DuplicateAccountError(Exception):
    """The NIK is already cached in this chat."""


@dataclass(frozen=True, slots=True)
class NewAccount:
    nik: str
    card: str
    name: str
    phone: str
    label: str
    status: dict[str, Any] | None = None
    lookup_kind: str = "nik"


@dataclass(frozen=True, slots=True)
class Account:
    chat_id: int
    slot: str
    nik: str
    card: str
    name: str
    phone: str
    label: str
    status: dict[str, Any] | None
    status_at: float | None
    verified_at: float
    last_used_at: float
    created_at: float
    active: bool
    lookup_kind: str = "nik"


async def _activate(conn: aiosqlite.Connection, chat_id: int, slot: str) -> None:
    """Inside a transaction: ``slot`` becomes the chat's one active account."""
    await conn.execute(
        "UPDATE accounts SET active = 0 WHERE chat_id = ? AND active = 1 AND slot <> ?",
        (chat_id, slot))
    await conn.execute("UPDATE accounts SET active = 1 WHERE chat_id = ? AND slot = ?",
                       (chat_id, slot))


def new_slot_token() -> str:
    """A short random token for callback data, never derived from any identifier."""
    return secrets.token_urlsafe(6)


class AccountsRepo:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    # -- encoding -------------------------------------------------------------------------

    def _enc(self, chat_id: int, slot: str, field: str, value: str) -> bytes:
        return self.vault.encrypt(value, Vault.aad("accounts", chat_id, slot, field))

    def _dec(self, chat_id: int, slot: str, field: str, blob: bytes) -> str:
        return self.vault.decrypt(bytes(blob), Vault.aad("accounts", chat_id, slot, field))

    def _row_to_account(self, chat_id: int, row: aiosqlite.Row | tuple[Any, ...]) -> Account:
        slot = str(row[0])
        nik, card, name, phone, label = (self._dec(chat_id, slot, f, row[i + 1])
                                         for i, f in enumerate(SENSITIVE_FIELDS))
        status = (json.loads(self._dec(chat_id, slot, "status", row[6]))
                  if row[6] is not None else None)
        return Account(chat_id, slot, nik, card, name, phone, label, status=status,
                       status_at=row[7], verified_at=row[8], last_used_at=row[9],
                       created_at=row[10], active=bool(row[11]), lookup_kind=str(row[12]))

    # -- reads ----------------------------------------------------------------------------

    async def list(self, chat_id: int) -> list[Account]:
        async with self.db.read() as conn, conn.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE chat_id = ? "  # noqa: S608
                "ORDER BY created_at, rowid", (chat_id,)) as cur:
            rows = await cur.fetchall()
        return [self._row_to_account(chat_id, row) for row in rows]

    async def get(self, chat_id: int, slot: str) -> Account | None:
        async with self.db.read() as conn, conn.execute(
                f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                "WHERE chat_id = ? AND slot = ?", (chat_id, slot)) as cur:
            row = await cur.fetchone()
        return self._row_to_account(chat_id, row) if row else None

    async def find_by_nik(self, chat_id: int, nik: str) -> Account | None:
        index = self.vault.blind_index(chat_id, nik)
        async with self.db.read() as conn, conn.execute(
                f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                "WHERE chat_id = ? AND nik_index = ?", (chat_id, index)) as cur:
            row = await cur.fetchone()
        return self._row_to_account(chat_id, row) if row else None

    async def count(self, chat_id: int) -> int:
        async with self.db.read() as conn, conn.execute(
                "SELECT count(*) FROM accounts WHERE chat_id = ?", (chat_id,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- writes ---------------------------------------------------------------------------

    async def add(self, chat_id: int, new: NewAccount, *, max_accounts: int,
                  evict_slot: str | None = None, now: float,
                  consume_challenge: bool = False) -> tuple[Account, str | None]:
        """Insert ``new`` as the active account, evicting ``evict_slot`` if the cache is full.

        Insert, eviction, re-activation and (optionally) deleting the chat's verified OTP
        challenge happen in one ``BEGIN IMMEDIATE`` transaction. Returns the new account and
        the evicted slot, if any.
        """
        slot = new_slot_token()
        index = self.vault.blind_index(chat_id, new.nik)
        evicted: str | None = None
        async with self.db.transaction() as conn:
            async with conn.execute(
                    "SELECT 1 FROM accounts WHERE chat_id = ? AND nik_index = ?",
                    (chat_id, index)) as cur:
                if await cur.fetchone():
                    raise DuplicateAccountError
            async with conn.execute(
                    "SELECT count(*) FROM accounts WHERE chat_id = ?", (chat_id,)) as cur:
                row = await cur.fetchone()
            count = int(row[0]) if row else 0
            if count >= max_accounts:
                if evict_slot is None:
                    raise CacheFullError
                cur2 = await conn.execute(
                    "DELETE FROM accounts WHERE chat_id = ? AND slot = ?", (chat_id, evict_slot))
                if cur2.rowcount != 1 or count - 1 >= max_accounts:
                    raise CacheFullError
                evicted = evict_slot
            await conn.execute("UPDATE accounts SET active = 0 WHERE chat_id = ? AND active = 1",
                               (chat_id,))
            status_ct = (self._enc(chat_id, slot, "status", json.dumps(new.status))
                         if new.status is not None else None)
            await conn.execute(
                "INSERT INTO accounts (chat_id, slot, nik_index, nik_ct, card_ct, name_ct, "
                "phone_ct, label_ct, status_ct, status_at, verified_at, last_used_at, "
                "created_at, active, lookup_kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (chat_id, slot, index,
                 *(self._enc(chat_id, slot, f, getattr(new, f)) for f in SENSITIVE_FIELDS),
                 status_ct, now if new.status is not None else None, now, now, now,
                 new.lookup_kind))
            if consume_challenge:
                await conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))
        account = Account(chat_id, slot, new.nik, new.card, new.name, new.phone, new.label,
                          new.status, now if new.status is not None else None, now, now, now,
                          True, new.lookup_kind)
        return account, evicted

    async def switch(self, chat_id: int, slot: str, *, now: float) -> bool:
        """Make ``slot`` the active account; False if the chat has no such account."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE accounts SET last_used_at = ? WHERE chat_id = ? AND slot = ?",
                (now, chat_id, slot))
            if cur.rowcount != 1:
                return False
            await _activate(conn, chat_id, slot)
        return True

    async def mark_verified(self, chat_id: int, slot: str, *, now: float,
                            consume_challenge: bool = False) -> bool:
        """A fresh OTP for a cached account: renew its session and make it active."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE accounts SET verified_at = ?, last_used_at = ? "
                "WHERE chat_id = ? AND slot = ?", (now, now, chat_id, slot))
            if cur.rowcount != 1:
                return False
            await _activate(conn, chat_id, slot)
            if consume_challenge:
                await conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))
        return True

    async def remove(self, chat_id: int, slot: str) -> bool:
        """Erase one account; if it was active, the most recently used one becomes active."""
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM accounts WHERE chat_id = ? AND slot = ?",
                                     (chat_id, slot))
            if cur.rowcount != 1:
                return False
            async with conn.execute(
                    "SELECT count(*) FROM accounts WHERE chat_id = ? AND active = 1",
                    (chat_id,)) as c:
                row = await c.fetchone()
            if row and int(row[0]) == 0:
                await conn.execute(
                    "UPDATE accounts SET active = 1 WHERE chat_id = ? AND slot = ("
                    "SELECT slot FROM accounts WHERE chat_id = ? "
                    "ORDER BY last_used_at DESC, slot LIMIT 1)", (chat_id, chat_id))
        return True

    async def update_status(self, chat_id: int, slot: str, status: dict[str, Any], *,
                            now: float) -> None:
        blob = self._enc(chat_id, slot, "status", json.dumps(status))
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE accounts SET status_ct = ?, status_at = ? WHERE chat_id = ? AND slot = ?",
                (blob, now, chat_id, slot))

    async def reencrypt_all(self, conn: aiosqlite.Connection, new_vault: Vault) -> int:
        """Inside the caller's transaction: rewrite every row under ``new_vault``."""
        async with conn.execute(f"SELECT chat_id, {_COLUMNS} FROM accounts") as cur:  # noqa: S608
            rows = list(await cur.fetchall())
        target = AccountsRepo(self.db, new_vault)
        for row in rows:
            chat_id = int(row[0])
            account = self._row_to_account(chat_id, row[1:])
            slot = account.slot
            status_ct = (target._enc(chat_id, slot, "status", json.dumps(account.status))
                         if account.status is not None else None)
            await conn.execute(
                "UPDATE accounts SET nik_index = ?, nik_ct = ?, card_ct = ?, name_ct = ?, "
                "phone_ct = ?, label_ct = ?, status_ct = ? WHERE chat_id = ? AND slot = ?",
                (new_vault.blind_index(chat_id, account.nik),
                 *(target._enc(chat_id, slot, f, getattr(account, f)) for f in SENSITIVE_FIELDS),
                 status_ct, chat_id, slot))
        return len(rows)
