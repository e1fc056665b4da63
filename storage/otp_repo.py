"""OTP challenges and the rate records that cap codes, look-ups and backend calls.

One live challenge per chat (the primary key). The code is stored only as a keyed hash
bound to the chat and the participant; checking and consuming it is one unit of work in
one ``BEGIN IMMEDIATE`` transaction, so a code can never succeed twice.

Rate records (``rate_events``) carry keyed hashes only: of the chat, of the participant's
NIK (``subject_key``) and of the phone. Caps that protect a participant count across every
chat, so a dozen Telegram accounts get no more guesses at one person's code than one does.
A chat re-verifying an account it already holds (an owner) is counted against the records
of owners only (``owner = 1``), across all chats: strangers cannot lock the owner out, and
someone who once added a participant in many chats does not get a cap in each.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.chat_keys import ChatKeys
from storage.crypto import Vault
from storage.db import Database, count, immediate

HOUR = 3600.0
DAY = 86400.0
#: Rate records older than this are deleted; every cap looks at most this far back.
RATE_RETENTION = DAY


@dataclass(frozen=True, slots=True)
class Caps:
    """Every cap in one place (docs/decisions.md 6, 7, 12); the global budget is a setting."""

    phone_hourly: int = 5
    phone_daily: int = 10
    chat_daily: int = 10
    participant_wrong_daily: int = 10
    global_hourly: int = 200
    lookups_daily: int = 20
    backend_hourly: int = 30


class VerifyOutcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    LOCKED = "locked"  # too many wrong codes for this participant across chats
    SUPERSEDED = "superseded"  # the code a resend replaced: no try is used
    USED = "used"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    outcome: VerifyOutcome
    attempts_left: int = 0
    payload: dict[str, Any] | None = None


class SendBlock(enum.StrEnum):
    CHAT_DAILY = "chat_daily"
    PARTICIPANT_LOCKED = "participant_locked"
    PHONE_HOURLY = "phone_hourly"
    PHONE_DAILY = "phone_daily"
    GLOBAL_BUDGET = "global_budget"


@dataclass(frozen=True, slots=True)
class Keys:
    """The keyed hashes one send or check is counted under."""

    chat: bytes
    subject: bytes
    phone: bytes


@dataclass(frozen=True, slots=True)
class Challenge:
    chat_id: int
    purpose: str
    payload: dict[str, Any]
    created_at: float
    expires_at: float
    last_sent_at: float
    attempts: int
    resends: int
    consumed_at: float | None
    owner: bool = False


_CHALLENGE_COLUMNS = ("purpose, payload_ct, created_at, expires_at, last_sent_at, attempts, "
                      "resends, consumed_at, owner")


def _record(conn: sqlite3.Connection, kind: str, keys: Keys | bytes, now: float,
            owner: bool = False) -> int:
    if isinstance(keys, bytes):
        cur = conn.execute("INSERT INTO rate_events (kind, chat_key, at) VALUES (?, ?, ?) "
                           "RETURNING rowid", (kind, keys, now))
    else:
        cur = conn.execute(
            "INSERT INTO rate_events (kind, chat_key, subject_key, phone_key, owner, at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING rowid",
            (kind, keys.chat, keys.subject, keys.phone, int(owner), now))
    return int(cur.fetchone()["rowid"])  # SQLite's own rowid; a column on PostgreSQL


def _prune(conn: sqlite3.Connection, kind: str, now: float) -> None:
    conn.execute("DELETE FROM rate_events WHERE kind = ? AND at < ?", (kind, now - RATE_RETENTION))


def _per_chat(conn: sqlite3.Connection, kind: str, chat_key: bytes, since: float) -> int:
    return count(conn, "SELECT count(*) FROM rate_events WHERE kind = ? AND chat_key = ? "
                 "AND at > ?", kind, chat_key, since)


def _per_key(conn: sqlite3.Connection, kind: str, column: str, key: bytes, since: float,
             owners_only: bool) -> int:
    """Records of ``kind`` under one participant or phone key, across all chats: all of
    them, or (for an owner) only those of owners."""
    sql = f"SELECT count(*) FROM rate_events WHERE kind = ? AND {column} = ? AND at > ?"  # noqa: S608
    return count(conn, sql + (" AND owner = 1" if owners_only else ""), kind, key, since)


def _chat_day_full(conn: sqlite3.Connection, caps: Caps, chat_key: bytes, now: float) -> bool:
    return _per_chat(conn, "sms", chat_key, now - DAY) >= caps.chat_daily


def _global_hour_full(conn: sqlite3.Connection, caps: Caps, now: float) -> bool:
    return count(conn, "SELECT count(*) FROM rate_events WHERE kind = 'sms' AND at > ?",
                 now - HOUR) >= caps.global_hourly


def _wrong_codes(conn: sqlite3.Connection, keys: Keys, now: float, owner: bool) -> int:
    since = now - DAY
    return max(_per_key(conn, "wrong", "subject_key", keys.subject, since, owner),
               _per_key(conn, "wrong", "phone_key", keys.phone, since, owner))


class OtpRepo:
    def __init__(self, db: Database, vault: Vault, caps: Caps | None = None) -> None:
        self.db = db
        self.vault = vault
        self.caps = caps or Caps()
        self.keys = ChatKeys.of(db, vault)

    def _aad(self, chat_id: int) -> bytes:
        return Vault.aad("challenges", chat_id, "live", "payload")

    # -- caps -----------------------------------------------------------------------------

    async def reserve_send(self, keys: Keys, now: float, *, owner: bool = False,
                           dry_run: bool = False) -> int | SendBlock | None:
        """Check every cap that guards a code and, if none blocks it, record the send.

        Returns the record id (to :meth:`release_send` if the SMS then fails) or the cap
        that blocks it. ``owner``: the chat re-verifies an account it already holds, so
        caps that protect the participant count only owners' records, and the global
        budget (which strangers could use up) does not apply.

        Every cap is counted whichever blocks (the same queries, found or not), and
        ``dry_run`` does all of it without recording anything (None when nothing blocks):
        what a look-up that found no one does, so that it costs what a blocked one does."""
        caps = self.caps

        def unit(conn: sqlite3.Connection) -> int | SendBlock | None:
            with immediate(conn):
                _prune(conn, "sms", now)
                _prune(conn, "wrong", now)
                blocks = [
                    (_chat_day_full(conn, caps, keys.chat, now), SendBlock.CHAT_DAILY),
                    (_wrong_codes(conn, keys, now, owner) >= caps.participant_wrong_daily,
                     SendBlock.PARTICIPANT_LOCKED),
                    (_per_key(conn, "sms", "phone_key", keys.phone, now - HOUR,
                              owner) >= caps.phone_hourly, SendBlock.PHONE_HOURLY),
                    (_per_key(conn, "sms", "phone_key", keys.phone, now - DAY,
                              owner) >= caps.phone_daily, SendBlock.PHONE_DAILY),
                    (_global_hour_full(conn, caps, now) and not owner,
                     SendBlock.GLOBAL_BUDGET),
                ]
                block = next((b for blocked, b in blocks if blocked), None)
                if block is not None or dry_run:
                    return block
                return _record(conn, "sms", keys, now, owner)
        return await self.db.run(unit)

    async def blocked_for_chat(self, chat_key: bytes, now: float) -> SendBlock | None:
        """The caps that do not depend on the participant (the chat's day, the global
        budget), checked before a look-up so that hitting them says nothing about it."""
        caps = self.caps

        def unit(conn: sqlite3.Connection) -> SendBlock | None:
            if _chat_day_full(conn, caps, chat_key, now):
                return SendBlock.CHAT_DAILY
            if _global_hour_full(conn, caps, now):
                return SendBlock.GLOBAL_BUDGET
            return None
        return await self.db.run(unit)

    async def release_send(self, record_id: int) -> None:
        """The SMS could not be handed over: it does not count against any cap."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("DELETE FROM rate_events WHERE rowid = ? AND kind = 'sms'",
                             (record_id,))
        await self.db.run(unit)

    async def _reserve(self, kind: str, chat_key: bytes, now: float, cap: int,
                       window: float) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                _prune(conn, kind, now)
                if _per_chat(conn, kind, chat_key, now - window) >= cap:
                    return False
                _record(conn, kind, chat_key, now)
            return True
        return await self.db.run(unit)

    async def reserve_lookup(self, chat_key: bytes, now: float) -> bool:
        """Count one participant look-up; False once today's cap is reached.

        Look-ups that find nothing send no SMS, so the SMS caps alone would not stop
        someone from probing which NIKs exist."""
        return await self._reserve("lookup", chat_key, now, self.caps.lookups_daily, DAY)

    async def reserve_backend_call(self, chat_key: bytes, now: float) -> bool:
        """Count one status or history call to the backend; False past the hourly cap."""
        return await self._reserve("backend", chat_key, now, self.caps.backend_hourly, HOUR)

    async def prune(self, now: float) -> int:
        """Delete rate records that no cap looks at any more."""
        def unit(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return conn.execute("DELETE FROM rate_events WHERE at < ?",
                                    (now - RATE_RETENTION,)).rowcount
        return await self.db.run(unit)

    # -- challenges -----------------------------------------------------------------------

    async def put(self, chat_id: int, *, purpose: str, keys: Keys, code: str,
                  payload: dict[str, Any], now: float, ttl: float, owner: bool = False
                  ) -> None:
        """Store a new live challenge for the chat, replacing any earlier one."""
        code_hash = self.vault.otp_hash(chat_id, keys.subject, code)
        plain = json.dumps(payload)

        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):  # the payload under the chat's key (created if needed)
                blob = self.keys.ensure(conn, chat_id).encrypt(plain, self._aad(chat_id))
                replaced = conn.execute("SELECT 1 FROM challenges WHERE chat_id = ?",
                                        (chat_id,)).fetchone() is not None
                conn.execute(
                    "INSERT INTO challenges (chat_id, purpose, subject, phone_index, "
                    "code_hash, payload_ct, created_at, expires_at, last_sent_at, attempts, "
                    "resends, consumed_at, owner) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, ?) "
                    "ON CONFLICT (chat_id) DO UPDATE SET purpose = excluded.purpose, "
                    "subject = excluded.subject, phone_index = excluded.phone_index, "
                    "code_hash = excluded.code_hash, payload_ct = excluded.payload_ct, "
                    "created_at = excluded.created_at, expires_at = excluded.expires_at, "
                    "last_sent_at = excluded.last_sent_at, attempts = 0, resends = 0, "
                    "consumed_at = NULL, owner = excluded.owner",
                    (chat_id, purpose, keys.subject, keys.phone, code_hash, blob, now,
                     now + ttl, now, int(owner)))
            if replaced:  # the dropped code's payload leaves the WAL too
                self.db.scrub(conn)
        await self.db.run(unit)

    async def replace_code(self, chat_id: int, code: str, *, now: float, ttl: float) -> bool:
        """A resend: the new code replaces the old one, whose hash is kept so that it is
        answered as replaced (not as a wrong try); the attempt counter is kept."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                row = conn.execute("SELECT subject FROM challenges WHERE chat_id = ? "
                                   "AND consumed_at IS NULL", (chat_id,)).fetchone()
                if row is None:
                    return False
                code_hash = self.vault.otp_hash(chat_id, bytes(row["subject"]), code)
                conn.execute(
                    "UPDATE challenges SET prior_hash = code_hash, code_hash = ?, "
                    "expires_at = ?, last_sent_at = ?, resends = resends + 1 WHERE chat_id = ?",
                    (code_hash, now + ttl, now, chat_id))
            return True
        return await self.db.run(unit)

    async def keys_of(self, chat_id: int) -> tuple[Keys, bool] | None:
        """The participant and phone keys of the chat's live challenge, and its owner flag."""
        def unit(conn: sqlite3.Connection) -> tuple[bytes, bytes, int] | None:
            row = conn.execute("SELECT subject, phone_index, owner FROM challenges "
                               "WHERE chat_id = ?", (chat_id,)).fetchone()
            return None if row is None else (bytes(row["subject"]), bytes(row["phone_index"]),
                                             int(row["owner"]))
        found = await self.db.run(unit)
        if found is None:
            return None
        return Keys(self.vault.chat_key(chat_id), found[0], found[1]), bool(found[2])

    async def get(self, chat_id: int) -> Challenge | None:
        def unit(conn: sqlite3.Connection) -> tuple[Vault | None, sqlite3.Row | None]:
            row: sqlite3.Row | None = conn.execute(
                f"SELECT {_CHALLENGE_COLUMNS} FROM challenges "  # noqa: S608
                "WHERE chat_id = ?", (chat_id,)).fetchone()
            return (self.keys.load(conn, chat_id) if row else None), row
        key, row = await self.db.run(unit)
        if row is None:
            return None
        payload = json.loads(self.keys.open(key, bytes(row["payload_ct"]), self._aad(chat_id)))
        return Challenge(chat_id, str(row["purpose"]), payload, row["created_at"],
                         row["expires_at"], row["last_sent_at"], int(row["attempts"]),
                         int(row["resends"]), row["consumed_at"], bool(row["owner"]))

    async def verify(self, chat_id: int, code: str, *, now: float, max_attempts: int
                     ) -> VerifyResult:
        """Check a typed code and consume the challenge atomically on success."""
        def matches(keys: Keys, code_hash: bytes) -> bool:
            return self.vault.hash_matches(code_hash,
                                           self.vault.otp_hash(chat_id, keys.subject, code))
        return await self._check(chat_id, matches, now=now, max_attempts=max_attempts,
                                 replaced=matches)

    async def verify_contact(self, chat_id: int, phone_key: bytes | None, *, now: float,
                             max_attempts: int) -> VerifyResult:
        """Check a shared contact: ``phone_key`` is the key of the user's own number (None
        if the contact is not the user's own), which must be the phone the code went to."""
        def matches(keys: Keys, code_hash: bytes) -> bool:
            return phone_key is not None and self.vault.hash_matches(keys.phone, phone_key)
        return await self._check(chat_id, matches, now=now, max_attempts=max_attempts)

    async def _check(self, chat_id: int, matches: Callable[[Keys, bytes], bool], *,
                     now: float, max_attempts: int,
                     replaced: Callable[[Keys, bytes], bool] | None = None) -> VerifyResult:
        """One attempt at the chat's challenge, decided by ``matches``.

        A wrong attempt counts against the challenge and against the participant across
        chats; once the participant has had ``participant_wrong_daily`` wrong attempts in 24
        hours, the challenge dies (LOCKED) and no code is sent for them until the day has
        passed. An owner counts only owners' wrong attempts (across chats). A typed code
        that ``replaced`` finds equal to the code a resend replaced costs no try."""
        cap = self.caps.participant_wrong_daily
        chat_key = self.vault.chat_key(chat_id)

        def unit(conn: sqlite3.Connection) -> tuple[VerifyOutcome, int, str | None]:
            outcome = attempt(conn)
            if outcome[0] is VerifyOutcome.LOCKED:  # the challenge was deleted: its
                self.db.scrub(conn)                 # payload leaves the WAL too
            return outcome

        def attempt(conn: sqlite3.Connection) -> tuple[VerifyOutcome, int, str | None]:
            with immediate(conn):
                row = conn.execute(
                    "SELECT subject, phone_index, code_hash, payload_ct, expires_at, attempts, "
                    "consumed_at, owner, prior_hash FROM challenges WHERE chat_id = ?",
                    (chat_id,)).fetchone()
                if row is None:
                    return VerifyOutcome.NONE, 0, None
                keys = Keys(chat_key, bytes(row["subject"]), bytes(row["phone_index"]))
                code_hash, blob = row["code_hash"], row["payload_ct"]
                expires_at, attempts = row["expires_at"], row["attempts"]
                consumed_at, owner = row["consumed_at"], row["owner"]
                if consumed_at is not None:
                    return VerifyOutcome.USED, 0, None
                if expires_at <= now:
                    return VerifyOutcome.EXPIRED, 0, None
                if attempts >= max_attempts:
                    return VerifyOutcome.EXHAUSTED, 0, None
                if _wrong_codes(conn, keys, now, bool(owner)) >= cap:
                    conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))
                    return VerifyOutcome.LOCKED, 0, None
                if matches(keys, bytes(code_hash)):
                    conn.execute("UPDATE challenges SET consumed_at = ? WHERE chat_id = ? "
                                 "AND consumed_at IS NULL", (now, chat_id))
                    return VerifyOutcome.OK, 0, self.keys.open(
                        self.keys.load(conn, chat_id), bytes(blob), self._aad(chat_id))
                prior = row["prior_hash"]
                if replaced is not None and prior is not None and replaced(keys, bytes(prior)):
                    return VerifyOutcome.SUPERSEDED, max_attempts - attempts, None
                conn.execute("UPDATE challenges SET attempts = attempts + 1 WHERE chat_id = ?",
                             (chat_id,))
                _record(conn, "wrong", keys, now, bool(owner))
                if _wrong_codes(conn, keys, now, bool(owner)) >= cap:
                    conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))
                    return VerifyOutcome.LOCKED, 0, None
                left = max_attempts - attempts - 1
                if left <= 0:
                    return VerifyOutcome.EXHAUSTED, 0, None
                return VerifyOutcome.WRONG, left, None

        outcome, left, plain = await self.db.run(unit)
        if outcome is VerifyOutcome.OK and plain is not None:
            payload = json.loads(plain)
            return VerifyResult(outcome, payload=payload)
        return VerifyResult(outcome, attempts_left=left)

    async def delete(self, chat_id: int) -> None:
        """Drop the chat's challenge (and, if there was one, its copy in the WAL)."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                gone = conn.execute("DELETE FROM challenges WHERE chat_id = ?",
                                    (chat_id,)).rowcount
            if gone:
                self.db.scrub(conn)
        await self.db.run(unit)

    async def purge_expired(self, now: float, *, grace: float, verified_for: float) -> int:
        """Delete challenges nobody can use any more: unconsumed ones ``grace`` seconds
        after they expired (Kirim ulang still works that long), verified ones
        ``verified_for`` seconds after the code was accepted."""
        def unit(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                gone = conn.execute(
                    "DELETE FROM challenges WHERE (consumed_at IS NULL AND expires_at < ?) "
                    "OR (consumed_at IS NOT NULL AND consumed_at < ?)",
                    (now - grace, now - verified_for)).rowcount
            if gone:
                self.db.scrub(conn)
            return int(gone)
        return await self.db.run(unit)

    async def purge_unused_keys(self, before: float) -> int:
        """Delete the data keys of chats that hold nothing under them any more (a stranger
        whose code expired, a step abandoned), created before ``before``: no chat id is
        kept for ever in ``chat_keys``. A key is created again when the chat next needs one."""
        def unit(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                gone = [int(row["chat_id"]) for row in conn.execute(
                    "DELETE FROM chat_keys AS k WHERE created_at < ? "
                    "AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.chat_id = k.chat_id) "
                    "AND NOT EXISTS (SELECT 1 FROM challenges c WHERE c.chat_id = k.chat_id) "
                    "AND NOT EXISTS (SELECT 1 FROM chat_data d WHERE d.chat_id = k.chat_id) "
                    "RETURNING chat_id", (before,)).fetchall()]
            for chat_id in gone:
                self.keys.forget(chat_id)
            if gone:
                self.db.scrub(conn)
            return len(gone)
        return await self.db.run(unit)

    @staticmethod
    def reencrypt_all(conn: sqlite3.Connection) -> None:
        """Inside the caller's transaction (key rotation): live codes are hashed under the
        old key and cannot be carried over, so they are dropped. Rate records stay: they
        are keyed by the rate key, which the rotation carries over, so no cap is reset."""
        conn.execute("DELETE FROM challenges")

    # -- a chat's own seals (the pending step in chat data) -------------------------------

    async def seal(self, chat_id: int, plaintext: str, aad: bytes) -> bytes:
        """Encrypt under the chat's key (created if needed), in one unit of work."""
        return await self.keys.seal(self.db, chat_id, plaintext, aad)

    async def unseal(self, chat_id: int, blob: bytes, aad: bytes) -> str:
        """Decrypt a seal of the chat; :class:`VaultError` if its key is gone or wrong."""
        return await self.keys.unseal(self.db, chat_id, blob, aad)
