"""The per-chat account cache table. Every sensitive field is a ciphertext under the chat's
own data key (storage/chat_keys.py), bound to ``accounts|chat|slot|field``; duplicates
are found through the NIK blind index (keyed by the chat's key too) and, since BPJS may
not give a participant's NIK (an empty ``noKTP``), through the card number too: an account
whose NIK is unknown (``""``) is indexed by its card number (13 digits, so never equal to
a 16-digit NIK), and every insert also compares the chat's cards (a chat holds a
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

from storage.chat_keys import ChatKeys
from storage.crypto import Vault
from storage.db import Database, count, immediate

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


def _select(conn: sqlite3.Connection, chat_id: int) -> list[sqlite3.Row]:
    return conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE chat_id = ? {_ORDER}",  # noqa: S608
                        (chat_id,)).fetchall()


def new_slot_token() -> str:
    """A short random token for callback data, never derived from any identifier."""
    return secrets.token_urlsafe(6)


class AccountsRepo:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault
        self.keys = ChatKeys.of(db, vault)

    # -- encoding -------------------------------------------------------------------------

    @staticmethod
    def _aad(chat_id: int, slot: str, field: str) -> bytes:
        """Binds a field's ciphertext to its table, chat, row and field."""
        return Vault.aad("accounts", chat_id, slot, field)

    def _enc(self, key: Vault, chat_id: int, slot: str, field: str, value: str) -> bytes:
        return key.encrypt(value, self._aad(chat_id, slot, field))

    def _dec(self, key: Vault | None, chat_id: int, slot: str, field: str, blob: bytes
             ) -> str:
        return self.keys.open(key, bytes(blob), self._aad(chat_id, slot, field))

    def _row_to_account(self, key: Vault | None, chat_id: int, row: sqlite3.Row) -> Account:
        slot = str(row["slot"])
        nik, card, name, phone, label = (self._dec(key, chat_id, slot, f, row[f"{f}_ct"])
                                         for f in SENSITIVE_FIELDS)
        status = (json.loads(self._dec(key, chat_id, slot, "status", row["status_ct"]))
                  if row["status_ct"] is not None else None)
        return Account(chat_id, slot, nik, card, name, phone, label, status=status,
                       status_at=row["status_at"], verified_at=row["verified_at"],
                       last_used_at=row["last_used_at"], created_at=row["created_at"],
                       active=bool(row["active"]), lookup_kind=str(row["lookup_kind"]))

    def _brief(self, key: Vault | None, chat_id: int, row: sqlite3.Row,
               active: bool | None = None) -> Brief:
        slot = str(row["slot"])
        return Brief(chat_id, slot, self._dec(key, chat_id, slot, "nik", row["nik_ct"]),
                     self._dec(key, chat_id, slot, "label", row["label_ct"]),
                     float(row["verified_at"]),
                     bool(row["active"]) if active is None else active, bool(row["remind"]))

    def _encrypt_new(self, key: Vault, chat_id: int, slot: str, new: NewAccount | Account
                     ) -> tuple[bytes, ...]:
        return tuple(self._enc(key, chat_id, slot, f, getattr(new, f))
                     for f in SENSITIVE_FIELDS)

    # -- reads ----------------------------------------------------------------------------

    async def list(self, chat_id: int) -> list[Account]:
        def unit(conn: sqlite3.Connection) -> tuple[Vault | None, list[sqlite3.Row]]:
            return self.keys.load(conn, chat_id), _select(conn, chat_id)
        key, rows = await self.db.run(unit)
        return [self._row_to_account(key, chat_id, row) for row in rows]

    async def list_brief(self, chat_id: int) -> Listing:
        def unit(conn: sqlite3.Connection) -> tuple[Vault | None, list[sqlite3.Row]]:
            return self.keys.load(conn, chat_id), conn.execute(
                f"SELECT {_BRIEF} FROM accounts WHERE chat_id = ? {_ORDER}",  # noqa: S608
                (chat_id,)).fetchall()
        key, rows = await self.db.run(unit)
        return [self._brief(key, chat_id, row) for row in rows]

    async def tap(self, chat_id: int, slot: str, *, now: float, fresh_since: float
                  ) -> tuple[str, Listing]:
        """A tap on an account, in one unit of work: it becomes active if it is the chat's,
        its session is fresh and it is not active yet. Returns what happened ("switched",
        "already_active", "needs_otp", "not_found") and the chat's listing after it."""
        def unit(conn: sqlite3.Connection
                 ) -> tuple[str, Vault | None, list[sqlite3.Row]]:
            key = self.keys.load(conn, chat_id)
            rows = conn.execute(f"SELECT {_BRIEF} FROM accounts WHERE chat_id = ? {_ORDER}",  # noqa: S608
                                (chat_id,)).fetchall()
            row = next((r for r in rows if r["slot"] == slot), None)
            if row is None:
                return "not_found", key, rows
            if row["verified_at"] < fresh_since:
                return "needs_otp", key, rows
            if row["active"]:
                return "already_active", key, rows
            with immediate(conn):  # nothing ran on this connection since the read
                conn.execute("UPDATE accounts SET active = 0 WHERE chat_id = ? AND active = 1",
                             (chat_id,))
                conn.execute("UPDATE accounts SET active = 1, last_used_at = ? "
                             "WHERE chat_id = ? AND slot = ?", (now, chat_id, slot))
            return "switched", key, rows
        outcome, key, rows = await self.db.run(unit)
        if outcome == "switched":  # the rows were read before the switch
            return outcome, [self._brief(key, chat_id, row, active=row["slot"] == slot)
                             for row in rows]
        return outcome, [self._brief(key, chat_id, row) for row in rows]

    async def get(self, chat_id: int, slot: str) -> Account | None:
        def unit(conn: sqlite3.Connection) -> tuple[Vault | None, sqlite3.Row | None]:
            row: sqlite3.Row | None = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                "WHERE chat_id = ? AND slot = ?", (chat_id, slot)).fetchone()
            return (self.keys.load(conn, chat_id) if row else None), row
        key, row = await self.db.run(unit)
        return self._row_to_account(key, chat_id, row) if row else None

    async def find_by_nik(self, chat_id: int, nik: str) -> Account | None:
        if not nik:  # unknown: matches nothing (such accounts are indexed by card)
            return None

        def unit(conn: sqlite3.Connection) -> tuple[Vault | None, sqlite3.Row | None]:
            key = self.keys.load(conn, chat_id)
            if key is None:  # the chat holds nothing
                return None, None
            row: sqlite3.Row | None = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                "WHERE chat_id = ? AND nik_index = ?",
                (chat_id, key.blind_index(chat_id, nik))).fetchone()
            return key, row
        key, row = await self.db.run(unit)
        return self._row_to_account(key, chat_id, row) if row else None

    def _card_slot(self, conn: sqlite3.Connection, key: Vault | None, chat_id: int,
                   card: str) -> str | None:
        """Inside a unit of work: the chat's account with this card number, if any."""
        for row in conn.execute("SELECT slot, card_ct FROM accounts WHERE chat_id = ?",
                                (chat_id,)).fetchall():
            if self._dec(key, chat_id, str(row["slot"]), "card", row["card_ct"]) == card:
                return str(row["slot"])
        return None

    async def find_by_card(self, chat_id: int, card: str) -> Account | None:
        def unit(conn: sqlite3.Connection) -> tuple[Vault | None, sqlite3.Row | None]:
            key = self.keys.load(conn, chat_id)
            slot = self._card_slot(conn, key, chat_id, card)
            if slot is None:
                return None, None
            row: sqlite3.Row | None = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts "  # noqa: S608
                "WHERE chat_id = ? AND slot = ?", (chat_id, slot)).fetchone()
            return key, row
        key, row = await self.db.run(unit)
        return self._row_to_account(key, chat_id, row) if row else None

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
        status_at = now if new.status is not None else None

        def unit(conn: sqlite3.Connection) -> str | None:
            evicted: str | None = None
            consumed = 0
            with immediate(conn):
                key = self.keys.ensure(conn, chat_id)  # created with the first account
                index = key.blind_index(chat_id, index_key(new.nik, new.card))
                fields = self._encrypt_new(key, chat_id, slot, new)
                status_ct = (self._enc(key, chat_id, slot, "status", json.dumps(new.status))
                             if new.status is not None else None)
                if conn.execute("SELECT 1 FROM accounts WHERE chat_id = ? AND nik_index = ?",
                                (chat_id, index)).fetchone() or self._card_slot(
                                    conn, key, chat_id, new.card) is not None:
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
                    consumed = conn.execute("DELETE FROM challenges WHERE chat_id = ?",
                                            (chat_id,)).rowcount
            if evicted is not None or consumed:  # the evicted row, the used code's payload
                self.db.scrub(conn)
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
            consumed = 0
            with immediate(conn):
                if conn.execute("UPDATE accounts SET verified_at = ?, last_used_at = ? "
                                "WHERE chat_id = ? AND slot = ?",
                                (now, now, chat_id, slot)).rowcount != 1:
                    return False
                _activate(conn, chat_id, slot)
                if consume_challenge:
                    consumed = conn.execute("DELETE FROM challenges WHERE chat_id = ?",
                                            (chat_id,)).rowcount
            if consumed:  # the used code's payload leaves the WAL too
                self.db.scrub(conn)
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
            self.db.scrub(conn)
            return True
        return await self.db.run(unit)

    def status_blob(self, conn: sqlite3.Connection, chat_id: int, slot: str,
                    status: dict[str, Any]) -> bytes | None:
        """Inside a unit of work (also one outside this repository): a status as its
        column holds it, under the chat's key; None if the chat holds nothing (erased)."""
        key = self.keys.load(conn, chat_id)
        return None if key is None else self._enc(key, chat_id, slot, "status",
                                                  json.dumps(status))

    async def set_remind(self, chat_id: int, slot: str, on: bool) -> bool:
        """Opt an account in or out of reminders; False if the chat has no such account."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute("UPDATE accounts SET remind = ? WHERE chat_id = ? AND "
                                    "slot = ?", (int(on), chat_id, slot)).rowcount == 1
        return await self.db.run(unit)

    async def update_status(self, chat_id: int, slot: str, status: dict[str, Any], *,
                            now: float) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                blob = self.status_blob(conn, chat_id, slot, status)
                if blob is not None:
                    conn.execute("UPDATE accounts SET status_ct = ?, status_at = ? "
                                 "WHERE chat_id = ? AND slot = ?", (blob, now, chat_id, slot))
        await self.db.run(unit)
