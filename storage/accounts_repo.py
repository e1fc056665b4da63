"""The per-chat account cache table. Every sensitive field is a vault ciphertext bound to
``accounts|chat|slot|field``; duplicates are found through the NIK blind index and, since
BPJS may not give a participant's NIK (an empty ``noKTP``), through the card number too: an
account whose NIK is unknown (``""``) is indexed by its card number (13 digits, so never
equal to a 16-digit NIK), and every insert also compares the chat's cards (a chat holds a
handful of accounts).

Every method is one unit of work (:meth:`storage.db.Database.run`): one hop to the database
thread, its statements and transaction back to back.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from storage.crypto import Vault
from storage.db import Database, checkpoint_truncate, count, immediate

SENSITIVE_FIELDS = ("nik", "card", "name", "phone", "label")
_COLUMNS = ("slot, nik_ct, card_ct, name_ct, phone_ct, label_ct, status_ct, status_at, "
            "verified_at, last_used_at, created_at, active, lookup_kind")
_ORDER = "ORDER BY created_at, rowid"


class CacheFullError(Exception):
    """The chat already holds the maximum and no (still existing) account was named to evict."""


class DuplicateAccountError(Exception):
    """The participant (same NIK, or same card number) is already cached in this chat."""


def index_key(nik: str, card: str) -> str:
    """What the blind index is made of: the NIK, or the card number when it is unknown."""
    return nik or card


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


@dataclass(frozen=True, slots=True)
class Brief:
    """What a listing shows of an account (its label and, masked by the caller, its NIK)
    and what a switch decides on: only these two fields are decrypted."""

    chat_id: int
    slot: str
    nik: str
    label: str
    verified_at: float
    active: bool
    remind: bool = False


_BRIEF = "slot, nik_ct, label_ct, verified_at, active, remind"
#: A chat's accounts as a listing shows them (an alias: ``list`` is a method name below).
Listing = list[Brief]


def _activate(conn: sqlite3.Connection, chat_id: int, slot: str) -> None:
    """Inside a transaction: ``slot`` becomes the chat's one active account."""
    conn.execute("UPDATE accounts SET active = 0 WHERE chat_id = ? AND active = 1 "
                 "AND slot <> ?", (chat_id, slot))
    conn.execute("UPDATE accounts SET active = 1 WHERE chat_id = ? AND slot = ?",
                 (chat_id, slot))


def _select(conn: sqlite3.Connection, chat_id: int) -> list[Any]:
    return conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE chat_id = ? {_ORDER}",  # noqa: S608
                        (chat_id,)).fetchall()


def new_slot_token() -> str:
    """A short random token for callback data, never derived from any identifier."""
    return secrets.token_urlsafe(6)


class AccountsRepo:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    # -- encoding -------------------------------------------------------------------------

    @staticmethod
    def _aad(chat_id: int, slot: str, field: str) -> bytes:
        """Binds a field's ciphertext to its table, chat, row and field."""
        return Vault.aad("accounts", chat_id, slot, field)

    def _enc(self, chat_id: int, slot: str, field: str, value: str) -> bytes:
        return self.vault.encrypt(value, self._aad(chat_id, slot, field))

    def _dec(self, chat_id: int, slot: str, field: str, blob: bytes) -> str:
        return self.vault.decrypt(bytes(blob), self._aad(chat_id, slot, field))

    def _row_to_account(self, chat_id: int, row: Any) -> Account:
        slot = str(row[0])
        nik, card, name, phone, label = (self._dec(chat_id, slot, f, row[i + 1])
                                         for i, f in enumerate(SENSITIVE_FIELDS))
        status = (json.loads(self._dec(chat_id, slot, "status", row[6]))
                  if row[6] is not None else None)
        return Account(chat_id, slot, nik, card, name, phone, label, status=status,
                       status_at=row[7], verified_at=row[8], last_used_at=row[9],
                       created_at=row[10], active=bool(row[11]), lookup_kind=str(row[12]))

    def _brief(self, chat_id: int, row: Any) -> Brief:
        slot = str(row[0])
        return Brief(chat_id, slot, self._dec(chat_id, slot, "nik", row[1]),
                     self._dec(chat_id, slot, "label", row[2]), float(row[3]), bool(row[4]),
                     bool(row[5]))

    def _encrypt_new(self, chat_id: int, slot: str, new: NewAccount | Account
                     ) -> tuple[bytes, ...]:
        return tuple(self._enc(chat_id, slot, f, getattr(new, f)) for f in SENSITIVE_FIELDS)

    # -- reads ----------------------------------------------------------------------------

    async def list(self, chat_id: int) -> list[Account]:
        return [self._row_to_account(chat_id, row) for row in await self.db.run(_select, chat_id)]

    async def list_brief(self, chat_id: int) -> Listing:
        def unit(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(f"SELECT {_BRIEF} FROM accounts WHERE chat_id = ? {_ORDER}",  # noqa: S608
                                (chat_id,)).fetchall()
        return [self._brief(chat_id, row) for row in await self.db.run(unit)]

    async def tap(self, chat_id: int, slot: str, *, now: float, fresh_since: float
                  ) -> tuple[str, Listing]:
        """A tap on an account, in one unit of work: it becomes active if it is the chat's,
        its session is fresh and it is not active yet. Returns what happened ("switched",
        "already_active", "needs_otp", "not_found") and the chat's listing after it."""
        def unit(conn: sqlite3.Connection) -> tuple[str, list[Any]]:
            rows = conn.execute(f"SELECT {_BRIEF} FROM accounts WHERE chat_id = ? {_ORDER}",  # noqa: S608
                                (chat_id,)).fetchall()
            row = next((r for r in rows if r[0] == slot), None)
            if row is None:
                return "not_found", rows
            if row[3] < fresh_since:
                return "needs_otp", rows
            if row[4]:
                return "already_active", rows
            with immediate(conn):  # nothing ran on this connection since the read
                conn.execute("UPDATE accounts SET active = 0 WHERE chat_id = ? AND active = 1",
                             (chat_id,))
                conn.execute("UPDATE accounts SET active = 1, last_used_at = ? "
                             "WHERE chat_id = ? AND slot = ?", (now, chat_id, slot))
            return "switched", [(*r[:4], int(r[0] == slot), r[5]) for r in rows]
        outcome, rows = await self.db.run(unit)
        return outcome, [self._brief(chat_id, row) for row in rows]

    async def get(self, chat_id: int, slot: str) -> Account | None:
        def unit(conn: sqlite3.Connection) -> Any:
            return conn.execute(f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                                "WHERE chat_id = ? AND slot = ?", (chat_id, slot)).fetchone()
        row = await self.db.run(unit)
        return self._row_to_account(chat_id, row) if row else None

    async def find_by_nik(self, chat_id: int, nik: str) -> Account | None:
        if not nik:  # unknown: matches nothing (such accounts are indexed by card)
            return None
        index = self.vault.blind_index(chat_id, nik)

        def unit(conn: sqlite3.Connection) -> Any:
            return conn.execute(f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                                "WHERE chat_id = ? AND nik_index = ?", (chat_id, index)
                                ).fetchone()
        row = await self.db.run(unit)
        return self._row_to_account(chat_id, row) if row else None

    def _card_slot(self, conn: sqlite3.Connection, chat_id: int, card: str) -> str | None:
        """Inside a unit of work: the chat's account with this card number, if any."""
        for slot, blob in conn.execute("SELECT slot, card_ct FROM accounts WHERE chat_id = ?",
                                       (chat_id,)).fetchall():
            if self._dec(chat_id, str(slot), "card", blob) == card:
                return str(slot)
        return None

    async def find_by_card(self, chat_id: int, card: str) -> Account | None:
        def unit(conn: sqlite3.Connection) -> Any:
            slot = self._card_slot(conn, chat_id, card)
            if slot is None:
                return None
            return conn.execute(f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                                "WHERE chat_id = ? AND slot = ?", (chat_id, slot)).fetchone()
        row = await self.db.run(unit)
        return self._row_to_account(chat_id, row) if row else None

    async def count(self, chat_id: int) -> int:
        return await self.db.run(count, "SELECT count(*) FROM accounts WHERE chat_id = ?",
                                 chat_id)

    # -- writes ---------------------------------------------------------------------------

    async def add(self, chat_id: int, new: NewAccount, *, max_accounts: int,
                  evict_slot: str | None = None, now: float,
                  consume_challenge: bool = False) -> tuple[Account, str | None]:
        """Insert ``new`` as the active account, evicting ``evict_slot`` if the cache is full.

        Insert, eviction, re-activation and (optionally) deleting the chat's verified OTP
        challenge happen in one ``BEGIN IMMEDIATE`` transaction; after an eviction the WAL
        is truncated so the evicted row leaves no copy behind. Returns the new account and
        the evicted slot, if any.
        """
        slot = new_slot_token()
        index = self.vault.blind_index(chat_id, index_key(new.nik, new.card))
        fields = self._encrypt_new(chat_id, slot, new)
        status_ct = (self._enc(chat_id, slot, "status", json.dumps(new.status))
                     if new.status is not None else None)
        status_at = now if new.status is not None else None

        def unit(conn: sqlite3.Connection) -> str | None:
            evicted: str | None = None
            with immediate(conn):
                if conn.execute("SELECT 1 FROM accounts WHERE chat_id = ? AND nik_index = ?",
                                (chat_id, index)).fetchone() or self._card_slot(
                                    conn, chat_id, new.card) is not None:
                    raise DuplicateAccountError
                held = count(conn, "SELECT count(*) FROM accounts WHERE chat_id = ?", chat_id)
                if held >= max_accounts:
                    if evict_slot is None:
                        raise CacheFullError
                    gone = conn.execute("DELETE FROM accounts WHERE chat_id = ? AND slot = ?",
                                        (chat_id, evict_slot)).rowcount
                    if gone != 1 or held - 1 >= max_accounts:
                        raise CacheFullError
                    evicted = evict_slot
                conn.execute("UPDATE accounts SET active = 0 WHERE chat_id = ? AND active = 1",
                             (chat_id,))
                conn.execute(
                    "INSERT INTO accounts (chat_id, slot, nik_index, nik_ct, card_ct, name_ct, "
                    "phone_ct, label_ct, status_ct, status_at, verified_at, last_used_at, "
                    "created_at, active, lookup_kind) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                    (chat_id, slot, index, *fields, status_ct, status_at, now, now, now,
                     new.lookup_kind))
                if consume_challenge:
                    conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))
            if evicted is not None:
                checkpoint_truncate(conn)
            return evicted

        evicted = await self.db.run(unit)
        account = Account(chat_id, slot, new.nik, new.card, new.name, new.phone, new.label,
                          new.status, status_at, now, now, now, True, new.lookup_kind)
        return account, evicted

    async def switch(self, chat_id: int, slot: str, *, now: float) -> bool:
        """Make ``slot`` the active account; False if the chat has no such account."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                if conn.execute("UPDATE accounts SET last_used_at = ? WHERE chat_id = ? "
                                "AND slot = ?", (now, chat_id, slot)).rowcount != 1:
                    return False
                _activate(conn, chat_id, slot)
            return True
        return await self.db.run(unit)

    async def mark_verified(self, chat_id: int, slot: str, *, now: float,
                            consume_challenge: bool = False) -> bool:
        """A fresh OTP for a cached account: renew its session and make it active."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                if conn.execute("UPDATE accounts SET verified_at = ?, last_used_at = ? "
                                "WHERE chat_id = ? AND slot = ?",
                                (now, now, chat_id, slot)).rowcount != 1:
                    return False
                _activate(conn, chat_id, slot)
                if consume_challenge:
                    conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))
            return True
        return await self.db.run(unit)

    async def remove(self, chat_id: int, slot: str) -> bool:
        """Erase one account (and truncate the WAL, so no copy of it is left); if it was
        active, the most recently used one becomes active."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                if conn.execute("DELETE FROM accounts WHERE chat_id = ? AND slot = ?",
                                (chat_id, slot)).rowcount != 1:
                    return False
                if count(conn, "SELECT count(*) FROM accounts WHERE chat_id = ? "
                         "AND active = 1", chat_id) == 0:
                    conn.execute(
                        "UPDATE accounts SET active = 1 WHERE chat_id = ? AND slot = ("
                        "SELECT slot FROM accounts WHERE chat_id = ? "
                        "ORDER BY last_used_at DESC, slot LIMIT 1)", (chat_id, chat_id))
            checkpoint_truncate(conn)
            return True
        return await self.db.run(unit)

    def status_blob(self, chat_id: int, slot: str, status: dict[str, Any]) -> bytes:
        """A status as its column holds it (for units of work outside this repository)."""
        return self._enc(chat_id, slot, "status", json.dumps(status))

    async def set_remind(self, chat_id: int, slot: str, on: bool) -> bool:
        """Opt an account in or out of reminders; False if the chat has no such account."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute("UPDATE accounts SET remind = ? WHERE chat_id = ? AND "
                                    "slot = ?", (int(on), chat_id, slot)).rowcount == 1
        return await self.db.run(unit)

    async def update_status(self, chat_id: int, slot: str, status: dict[str, Any], *,
                            now: float) -> None:
        blob = self.status_blob(chat_id, slot, status)

        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("UPDATE accounts SET status_ct = ?, status_at = ? "
                             "WHERE chat_id = ? AND slot = ?", (blob, now, chat_id, slot))
        await self.db.run(unit)

    def reencrypt_all(self, conn: sqlite3.Connection, new_vault: Vault) -> int:
        """Inside the caller's transaction, on the database thread: rewrite every row under
        ``new_vault``, a batch at a time."""
        target = AccountsRepo(self.db, new_vault)
        done = 0
        last: tuple[int, str] = (-(2 ** 63), "")
        while True:
            batch = conn.execute(
                f"SELECT chat_id, {_COLUMNS} FROM accounts WHERE (chat_id, slot) > (?, ?) "  # noqa: S608
                "ORDER BY chat_id, slot LIMIT 500", last).fetchall()
            if not batch:
                return done
            for row in batch:
                chat_id = int(row[0])
                account = self._row_to_account(chat_id, row[1:])
                slot = account.slot
                status_ct = (target._enc(chat_id, slot, "status", json.dumps(account.status))
                             if account.status is not None else None)
                conn.execute(
                    "UPDATE accounts SET nik_index = ?, nik_ct = ?, card_ct = ?, name_ct = ?, "
                    "phone_ct = ?, label_ct = ?, status_ct = ? WHERE chat_id = ? AND slot = ?",
                    (new_vault.blind_index(chat_id, index_key(account.nik, account.card)),
                     *target._encrypt_new(chat_id, slot, account), status_ct, chat_id, slot))
            done += len(batch)
            last = (int(batch[-1][0]), str(batch[-1][1]))
