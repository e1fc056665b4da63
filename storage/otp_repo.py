"""OTP challenges and the SMS send log.

One live challenge per chat (the primary key). The code is stored only as a keyed hash
bound to the chat and the participant; verification and consumption are one conditional
``UPDATE`` inside a ``BEGIN IMMEDIATE`` transaction, so a code can never succeed twice.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from storage.crypto import Vault
from storage.db import Database

PHONE_HOURLY_CAP = 5
CHAT_DAILY_CAP = 10
LOOKUP_DAILY_CAP = 20
_HOUR = 3600.0
_DAY = 86400.0


class VerifyOutcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    USED = "used"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    outcome: VerifyOutcome
    attempts_left: int = 0
    payload: dict[str, Any] | None = None


class SendBlock(enum.StrEnum):
    PHONE_HOURLY = "phone_hourly"
    CHAT_DAILY = "chat_daily"


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


async def _count(conn: aiosqlite.Connection, sql: str, *params: object) -> int:
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


class OtpRepo:
    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    def _aad(self, chat_id: int) -> bytes:
        return Vault.aad("challenges", chat_id, "live", "payload")

    # -- SMS caps -------------------------------------------------------------------------

    async def reserve_send(self, chat_id: int, phone_index: bytes, now: float
                           ) -> int | SendBlock:
        """Check the per-phone and per-chat caps and, if allowed, record the send.

        Returns the log row id (to :meth:`release_send` if the SMS then fails) or the cap
        that blocks it.
        """
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sms_log WHERE sent_at < ?", (now - _DAY,))
            if await _count(conn, "SELECT count(*) FROM sms_log WHERE phone_index = ? "
                            "AND sent_at > ?", phone_index, now - _HOUR) >= PHONE_HOURLY_CAP:
                return SendBlock.PHONE_HOURLY
            if await _count(conn, "SELECT count(*) FROM sms_log WHERE chat_id = ? "
                            "AND sent_at > ?", chat_id, now - _DAY) >= CHAT_DAILY_CAP:
                return SendBlock.CHAT_DAILY
            cur2 = await conn.execute(
                "INSERT INTO sms_log (chat_id, phone_index, sent_at) VALUES (?, ?, ?)",
                (chat_id, phone_index, now))
            return int(cur2.lastrowid or 0)

    async def reserve_lookup(self, chat_id: int, now: float) -> bool:
        """Count one participant look-up for the chat; False once today's cap is reached.

        Look-ups that find nothing send no SMS, so the SMS caps alone would not stop
        someone from probing which NIKs exist."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM lookup_log WHERE at < ?", (now - _DAY,))
            if await _count(conn, "SELECT count(*) FROM lookup_log WHERE chat_id = ? "
                            "AND at > ?", chat_id, now - _DAY) >= LOOKUP_DAILY_CAP:
                return False
            await conn.execute("INSERT INTO lookup_log (chat_id, at) VALUES (?, ?)",
                               (chat_id, now))
        return True

    async def release_send(self, log_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sms_log WHERE rowid = ?", (log_id,))

    # -- challenges -----------------------------------------------------------------------

    async def put(self, chat_id: int, *, purpose: str, subject: bytes, phone_index: bytes,
                  code: str, payload: dict[str, Any], now: float, ttl: float) -> None:
        """Store a new live challenge for the chat, replacing any earlier one."""
        code_hash = self.vault.otp_hash(chat_id, subject, code)
        blob = self.vault.encrypt(json.dumps(payload), self._aad(chat_id))
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO challenges (chat_id, purpose, subject, phone_index, "
                "code_hash, payload_ct, created_at, expires_at, last_sent_at, attempts, "
                "resends, consumed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL)",
                (chat_id, purpose, subject, phone_index, code_hash, blob, now, now + ttl, now))

    async def replace_code(self, chat_id: int, code: str, *, now: float, ttl: float) -> bool:
        """A resend: the new code replaces the old one; the attempt counter is kept."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                    "SELECT subject FROM challenges WHERE chat_id = ? AND consumed_at IS NULL",
                    (chat_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return False
            code_hash = self.vault.otp_hash(chat_id, bytes(row[0]), code)
            await conn.execute(
                "UPDATE challenges SET code_hash = ?, expires_at = ?, last_sent_at = ?, "
                "resends = resends + 1 WHERE chat_id = ?", (code_hash, now + ttl, now, chat_id))
        return True

    async def get(self, chat_id: int) -> Challenge | None:
        async with self.db.read() as conn, conn.execute(
                "SELECT purpose, payload_ct, created_at, expires_at, last_sent_at, attempts, "
                "resends, consumed_at FROM challenges WHERE chat_id = ?", (chat_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        payload = json.loads(self.vault.decrypt(bytes(row[1]), self._aad(chat_id)))
        return Challenge(chat_id, str(row[0]), payload, row[2], row[3], row[4], int(row[5]),
                         int(row[6]), row[7])

    async def verify(self, chat_id: int, code: str, *, now: float, max_attempts: int
                     ) -> VerifyResult:
        """Check ``code`` and consume the challenge atomically on success."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                    "SELECT subject, payload_ct, expires_at, attempts, consumed_at "
                    "FROM challenges WHERE chat_id = ?", (chat_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return VerifyResult(VerifyOutcome.NONE)
            subject, blob, expires_at, attempts, consumed_at = row
            if consumed_at is not None:
                return VerifyResult(VerifyOutcome.USED)
            if expires_at <= now:
                return VerifyResult(VerifyOutcome.EXPIRED)
            if attempts >= max_attempts:
                return VerifyResult(VerifyOutcome.EXHAUSTED)
            code_hash = self.vault.otp_hash(chat_id, bytes(subject), code)
            cur2 = await conn.execute(
                "UPDATE challenges SET consumed_at = ? WHERE chat_id = ? AND code_hash = ? "
                "AND consumed_at IS NULL AND expires_at > ? AND attempts < ?",
                (now, chat_id, code_hash, now, max_attempts))
            if cur2.rowcount == 1:
                payload = json.loads(self.vault.decrypt(bytes(blob), self._aad(chat_id)))
                return VerifyResult(VerifyOutcome.OK, payload=payload)
            await conn.execute(
                "UPDATE challenges SET attempts = attempts + 1 WHERE chat_id = ?", (chat_id,))
            left = max_attempts - attempts - 1
            if left <= 0:
                return VerifyResult(VerifyOutcome.EXHAUSTED)
            return VerifyResult(VerifyOutcome.WRONG, attempts_left=left)

    async def delete(self, chat_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM challenges WHERE chat_id = ?", (chat_id,))

    async def reencrypt_all(self, conn: aiosqlite.Connection, new_vault: Vault) -> None:
        """Inside the caller's transaction (key rotation): codes are hashed under the old key
        and cannot be carried over, so live challenges and the SMS log are dropped."""
        await conn.execute("DELETE FROM challenges")
        await conn.execute("DELETE FROM sms_log")
