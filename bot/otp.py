"""OTP challenge rules: issue, resend, verify (no Telegram here).

The phone always comes from the backend's participant record; the user never chooses
where the code goes. Codes are 6 random digits from :mod:`secrets`, stored only as a
keyed hash, valid ``ttl`` seconds, single use, at most ``max_attempts`` wrong tries.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.identity import mask_phone
from bot.sms.base import SmsError, SmsSender, otp_message
from storage.crypto import Vault, VaultError
from storage.otp_repo import Challenge, OtpRepo, SendBlock, VerifyResult

_LOGGER = logging.getLogger(__name__)
SMS_TIMEOUT = 15.0


class SendOutcome(enum.StrEnum):
    SENT = "sent"
    SMS_FAILED = "sms_failed"
    CAP_PHONE = "cap_phone"
    CAP_CHAT = "cap_chat"
    TOO_EARLY = "too_early"
    NO_CHALLENGE = "no_challenge"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    masked_phone: str = ""
    wait_seconds: int = 0


def _pending_aad(chat_id: int) -> bytes:
    return Vault.aad("chat_data", chat_id, "pending", "payload")


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class OtpService:
    def __init__(self, repo: OtpRepo, vault: Vault, sender: SmsSender, *, ttl: int,
                 max_attempts: int, resend_seconds: int, clock: Callable[[], float],
                 code_factory: Callable[[], str] = new_code) -> None:
        self.repo = repo
        self.vault = vault
        self.sender = sender
        self.ttl = ttl
        self.max_attempts = max_attempts
        self.resend_seconds = resend_seconds
        self.clock = clock
        self.code_factory = code_factory

    async def _deliver(self, chat_id: int, phone: str) -> tuple[SendResult, str | None]:
        """Reserve a send under the caps, send a fresh code; the code on success."""
        phone_index = self.vault.global_index(phone, "phone")
        reserved = await self.repo.reserve_send(chat_id, phone_index, self.clock())
        if isinstance(reserved, SendBlock):
            outcome = (SendOutcome.CAP_PHONE if reserved is SendBlock.PHONE_HOURLY
                       else SendOutcome.CAP_CHAT)
            return SendResult(outcome), None
        code = self.code_factory()
        try:
            async with asyncio.timeout(SMS_TIMEOUT):
                await self.sender.send(phone, otp_message(code, self.ttl))
        except (SmsError, TimeoutError) as exc:
            _LOGGER.warning("OTP SMS failed: %s", type(exc).__name__)
            await self.repo.release_send(reserved)
            return SendResult(SendOutcome.SMS_FAILED), None
        return SendResult(SendOutcome.SENT, mask_phone(phone)), code

    async def issue(self, chat_id: int, *, purpose: str, nik: str, phone: str,
                    payload: dict[str, Any]) -> SendResult:
        """Send a new code for ``nik`` to ``phone`` and make it the chat's live challenge."""
        result, code = await self._deliver(chat_id, phone)
        if code is not None:
            await self.repo.put(
                chat_id, purpose=purpose, subject=self.vault.blind_index(chat_id, nik),
                phone_index=self.vault.global_index(phone, "phone"), code=code,
                payload=payload, now=self.clock(), ttl=self.ttl)
        return result

    async def resend(self, chat_id: int) -> SendResult:
        challenge = await self.repo.get(chat_id)
        if challenge is None or challenge.consumed_at is not None:
            return SendResult(SendOutcome.NO_CHALLENGE)
        wait = challenge.last_sent_at + self.resend_seconds - self.clock()
        if wait > 0:
            return SendResult(SendOutcome.TOO_EARLY, wait_seconds=max(1, int(wait + 0.999)))
        result, code = await self._deliver(chat_id, str(challenge.payload["phone"]))
        if code is not None and not await self.repo.replace_code(
                chat_id, code, now=self.clock(), ttl=self.ttl):
            return SendResult(SendOutcome.NO_CHALLENGE)
        return result

    async def allow_lookup(self, chat_id: int) -> bool:
        """Whether the chat may look up one more participant today."""
        return await self.repo.reserve_lookup(chat_id, self.clock())

    async def verify(self, chat_id: int, code: str) -> VerifyResult:
        return await self.repo.verify(chat_id, code, now=self.clock(),
                                      max_attempts=self.max_attempts)

    async def challenge(self, chat_id: int) -> Challenge | None:
        return await self.repo.get(chat_id)

    async def verified_payload(self, chat_id: int, max_age: float = 1800.0
                               ) -> dict[str, Any] | None:
        """The payload of a challenge whose code was accepted recently (label step)."""
        challenge = await self.repo.get(chat_id)
        if (challenge is None or challenge.consumed_at is None
                or self.clock() - challenge.consumed_at > max_age):
            return None
        return challenge.payload

    def seal(self, chat_id: int, payload: dict[str, Any]) -> str:
        """Encrypt an in-flight payload for keeping in (persisted) chat data."""
        blob = self.vault.encrypt(json.dumps(payload), _pending_aad(chat_id))
        return base64.b64encode(blob).decode("ascii")

    def unseal(self, chat_id: int, sealed: str) -> dict[str, Any] | None:
        """The payload sealed for this chat, or None if it is damaged or not this chat's."""
        try:
            plain = self.vault.decrypt(base64.b64decode(sealed), _pending_aad(chat_id))
        except (VaultError, binascii.Error, ValueError):
            return None
        data: dict[str, Any] = json.loads(plain)
        return data

    async def cancel(self, chat_id: int) -> None:
        await self.repo.delete(chat_id)
