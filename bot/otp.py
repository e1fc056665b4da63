"""OTP challenge rules: issue, resend, verify (no Telegram here).

The phone always comes from the backend's participant record; the user never chooses
where the code goes. Codes are 6 random digits from :mod:`secrets`, stored only as a keyed
hash bound to the chat and the participant, valid ``ttl`` seconds, single use, at most
``max_attempts`` wrong tries per challenge and ``Caps.participant_wrong_daily`` per
participant across all chats (see storage/otp_repo.py and docs/security.md).

Before the code is accepted the challenge holds only what sending and checking it needs:
the identifier the user typed, the phone, and the flow's next step. Everything else about
the participant is fetched again once the code is accepted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot import metrics
from bot.identity import phone_tail
from bot.sms.base import SmsError, SmsSender, otp_message
from storage.crypto import Vault, VaultError
from storage.otp_repo import Challenge, Keys, OtpRepo, SendBlock
from storage.otp_repo import VerifyOutcome as VerifyOutcome  # re-exported for handlers/
from storage.otp_repo import VerifyResult as VerifyResult  # re-exported for handlers/

_LOGGER = logging.getLogger(__name__)
SMS_TIMEOUT = 15.0
#: A sealed pending payload (the step before the code is sent) is void after this long.
PENDING_TTL = 1800.0
#: How long the identifier of a look-up the backend did not answer stays sealed for
#: 🔁 Coba lagi (issue 22): a few minutes, then it must be typed again.
RETRY_TTL = 300.0
#: How long after its code was accepted a challenge still carries the flow to the label.
VERIFIED_TTL = 1800.0
#: How long after it expired an unused challenge is kept, so "Kirim ulang" still works.
EXPIRED_GRACE = 900.0


class SendOutcome(enum.StrEnum):
    SENT = "sent"
    SMS_FAILED = "sms_failed"
    CAP_CHAT = "cap_chat"
    CAP_PARTICIPANT = "cap_participant"
    CAP_PHONE = "cap_phone"
    CAP_GLOBAL = "cap_global"
    TOO_EARLY = "too_early"
    NO_CHALLENGE = "no_challenge"


_BLOCKS = {
    SendBlock.CHAT_DAILY: SendOutcome.CAP_CHAT,
    SendBlock.PARTICIPANT_LOCKED: SendOutcome.CAP_PARTICIPANT,
    SendBlock.PHONE_HOURLY: SendOutcome.CAP_PHONE,
    SendBlock.PHONE_DAILY: SendOutcome.CAP_PHONE,
    SendBlock.GLOBAL_BUDGET: SendOutcome.CAP_GLOBAL,
}


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    phone_tail: str = ""
    wait_seconds: int = 0


def _pending_aad(chat_id: int) -> bytes:
    return Vault.aad("chat_data", chat_id, "pending", "payload")


#: A phone number no participant has, for :meth:`OtpService.as_if_issued`.
_NO_PHONE = "+620000000000"


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
        self._budget_warned_at = float("-inf")
        #: Told when the budget is spent (the operators' alert, bot/operator.py).
        self.on_budget_spent: Callable[[], object] | None = None

    def keys(self, chat_id: int, nik: str, phone: str) -> Keys:
        return Keys(self.vault.chat_key(chat_id), self.vault.participant_key(nik),
                    self.vault.phone_key(phone))

    async def _deliver(self, keys: Keys, phone: str, owner: bool
                       ) -> tuple[SendResult, str | None]:
        """Reserve a send under the caps, send a fresh code; the code on success."""
        now = self.clock()
        reserved = await self.repo.reserve_send(keys, now, owner=owner)
        assert reserved is not None
        if isinstance(reserved, SendBlock):
            if reserved is SendBlock.GLOBAL_BUDGET:
                self._warn_budget(now)
            metrics.SMS_REFUSED.labels(_BLOCKS[reserved].value).inc()
            return SendResult(_BLOCKS[reserved]), None
        code = self.code_factory()
        try:
            async with asyncio.timeout(SMS_TIMEOUT):
                await self.sender.send(phone, otp_message(code, self.ttl))
        except (SmsError, TimeoutError) as exc:
            _LOGGER.warning("OTP SMS failed: %s", type(exc).__name__)
            metrics.SMS_FAILED.inc()
            if isinstance(exc, SmsError) and not exc.maybe_delivered:
                await self.repo.release_send(reserved)  # it never left: it costs nothing
            return SendResult(SendOutcome.SMS_FAILED), None
        metrics.SMS_SENT.inc()
        return SendResult(SendOutcome.SENT, phone_tail(phone)), code

    async def issue(self, chat_id: int, *, purpose: str, nik: str, phone: str,
                    payload: dict[str, Any], owner: bool = False) -> SendResult:
        """Send a new code for participant ``nik`` to ``phone`` and make it the chat's live
        challenge. ``payload`` is what the flow needs after the code (kept encrypted);
        ``owner``: the chat already holds this participant's account (re-verification)."""
        keys = self.keys(chat_id, nik, phone)
        result, code = await self._deliver(keys, phone, owner)
        if code is not None:
            await self.repo.put(chat_id, purpose=purpose, keys=keys, code=code,
                                payload={**payload, "phone": phone}, now=self.clock(),
                                ttl=self.ttl, owner=owner)
        return result

    async def as_if_issued(self, chat_id: int, nik: str) -> None:
        """What :meth:`issue` asks of the database, for a look-up that found no one (or no
        phone on file): the same keys and the same caps counted, nothing recorded. So
        "not found" and "found but blocked" (locked, out of codes) cost the same."""
        keys = self.keys(chat_id, nik, _NO_PHONE)
        await self.repo.reserve_send(keys, self.clock(), dry_run=True)

    async def resend(self, chat_id: int, *,
                     held: Callable[[dict[str, Any]], Awaitable[bool]] | None = None
                     ) -> SendResult:
        """A new code for the chat's live challenge. For an owner's challenge (a
        re-verification), ``held(payload)`` must confirm that the chat still holds the
        account before the owner's allowance is used; if not, the challenge is dropped."""
        challenge = await self.repo.get(chat_id)
        if challenge is None or challenge.consumed_at is not None:
            return SendResult(SendOutcome.NO_CHALLENGE)
        wait = challenge.last_sent_at + self.resend_seconds - self.clock()
        if wait > 0:
            return SendResult(SendOutcome.TOO_EARLY, wait_seconds=max(1, int(wait + 0.999)))
        found = await self.repo.keys_of(chat_id)
        if found is None:
            return SendResult(SendOutcome.NO_CHALLENGE)
        keys, owner = found
        if owner and (held is None or not await held(challenge.payload)):
            await self.repo.delete(chat_id)
            return SendResult(SendOutcome.NO_CHALLENGE)
        result, code = await self._deliver(keys, str(challenge.payload["phone"]), owner)
        if code is not None and not await self.repo.replace_code(
                chat_id, code, now=self.clock(), ttl=self.ttl):
            return SendResult(SendOutcome.NO_CHALLENGE)
        return result

    async def blocked_for_chat(self, chat_id: int) -> SendOutcome | None:
        """Whether a code could be sent to anyone from this chat now (its daily cap, the
        global budget): asked before a look-up, so the answer reveals nothing about it."""
        block = await self.repo.blocked_for_chat(self.vault.chat_key(chat_id), self.clock())
        if block is SendBlock.GLOBAL_BUDGET:
            self._warn_budget(self.clock())
        return None if block is None else _BLOCKS[block]

    def _warn_budget(self, now: float) -> None:
        if self.on_budget_spent is not None:
            self.on_budget_spent()  # logged (once an hour) and sent to the operators there
            return
        if now - self._budget_warned_at >= 3600:
            self._budget_warned_at = now
            _LOGGER.warning("the hourly SMS budget (SMS_MAX_PER_HOUR) is used up; new codes "
                            "are refused until it frees up")

    async def allow_lookup(self, chat_id: int) -> bool:
        """Whether the chat may look up one more participant today."""
        return await self.repo.reserve_lookup(self.vault.chat_key(chat_id), self.clock())

    async def allow_backend_call(self, chat_id: int) -> bool:
        """Whether the chat may make one more status or history call this hour."""
        return await self.repo.reserve_backend_call(self.vault.chat_key(chat_id), self.clock())

    async def verify(self, chat_id: int, code: str) -> VerifyResult:
        return await self.repo.verify(chat_id, code, now=self.clock(),
                                      max_attempts=self.max_attempts)

    async def verify_contact(self, chat_id: int, own_phone: str | None) -> VerifyResult:
        """A shared contact as proof: ``own_phone`` is the user's own number (E.164), or
        None when the contact is someone else's or not a mobile number."""
        key = self.vault.phone_key(own_phone) if own_phone else None
        return await self.repo.verify_contact(chat_id, key, now=self.clock(),
                                              max_attempts=self.max_attempts)

    async def challenge(self, chat_id: int) -> Challenge | None:
        return await self.repo.get(chat_id)

    async def verified_payload(self, chat_id: int) -> dict[str, Any] | None:
        """The payload of a challenge whose code was accepted recently (label step)."""
        challenge = await self.repo.get(chat_id)
        if (challenge is None or challenge.consumed_at is None
                or self.clock() - challenge.consumed_at > VERIFIED_TTL):
            return None
        return challenge.payload

    async def seal(self, chat_id: int, payload: dict[str, Any], *,
                   ttl: float = PENDING_TTL) -> str:
        """Encrypt an in-flight payload for keeping in (persisted) chat data, under the
        chat's own key (an erase destroys it); it opens for ``ttl`` seconds (at most
        :data:`PENDING_TTL`)."""
        stamped = {"data": payload, "at": self.clock(), "ttl": min(ttl, PENDING_TTL)}
        blob = await self.repo.seal(chat_id, json.dumps(stamped), _pending_aad(chat_id))
        return base64.b64encode(blob).decode("ascii")

    async def unseal(self, chat_id: int, sealed: str) -> dict[str, Any] | None:
        """The payload sealed for this chat, or None if it is damaged, not this chat's, its
        key is gone, or it is older than the time it was sealed for."""
        try:
            blob = base64.b64decode(sealed)
            plain = await self.repo.unseal(chat_id, blob, _pending_aad(chat_id))
        except (VaultError, binascii.Error, ValueError):
            return None
        stamped = json.loads(plain)
        if not isinstance(stamped, dict):
            return None
        ttl = min(float(stamped.get("ttl", PENDING_TTL)), PENDING_TTL)
        if self.clock() - float(stamped.get("at", 0)) > ttl:
            return None
        data: dict[str, Any] = stamped["data"]
        return data

    async def cancel(self, chat_id: int) -> None:
        await self.repo.delete(chat_id)

    async def purge(self) -> int:
        """Delete challenges nobody can use any more, and rate records past their day."""
        now = self.clock()
        gone = await self.repo.purge_expired(now, grace=EXPIRED_GRACE,
                                             verified_for=VERIFIED_TTL)
        await self.repo.prune(now)
        await self.repo.purge_unused_keys(now - PENDING_TTL)  # a sealed step's whole life
        return gone
