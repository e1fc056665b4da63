"""Adding an account and re-verifying one: the rules, without Telegram (decision 49).

The conversation in handlers/tambah_kk.py asks this service what happens next and maps
the typed outcome to a text, a keyboard and a conversation state. The rules live here:

- a NIK the chat already holds switches to it (or re-verifies it) without asking BPJS;
- a full cache asks which account goes *before* the look-up, so the question reveals
  nothing about the identifier;
- the chat's caps are checked before the look-up, for the same reason;
- "not found", "no phone on file", "locked / out of codes" and "SMS failed" read the same
  to a stranger, and "not found" does the database work of "found but blocked"
  (decisions 32 and 41); a participant without a NIK is counted by their card;
- an owner's allowance (a re-verification) is re-checked at every step: the chat must
  still hold the account (decision 39);
- after the code the participant is looked up again, the phone checked against the one
  the code went to, and only then saved (insert and eviction in one transaction).

The flow's state between updates is a :class:`PendingStep`, serialised and sealed here
and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from bot.accounts import (
    Account,
    AccountService,
    Brief,
    CacheFullError,
    DuplicateAccountError,
    NewAccount,
)
from bot.identity import Identifier, IdKind, carries_identifier, parse_identifier, phone_tail
from bot.jkn.base import (
    JknBackend,
    JknCredentialsRejected,
    JknError,
    JknInvalidRequest,
    JknNotFound,
    Participant,
)
from bot.otp import (
    PENDING_TTL,
    OtpService,
    SendOutcome,
    SendResult,
    VerifyOutcome,
    VerifyResult,
)
from bot.status import identifier_of, lookup

#: Where the sealed step and the count of bad inputs sit in the chat's (persisted) data.
PENDING_KEY = "pending"
BAD_KEY = "bad_inputs"
MAX_BAD_INPUTS = 5
MAX_LABEL = 32

ChatData = MutableMapping[Any, Any]


class Purpose(enum.StrEnum):
    ADD = "add"
    REVERIFY = "reverify"


@dataclass(frozen=True, slots=True)
class PendingStep:
    """What the flow carries between updates: sealed in chat data before the code is sent,
    and as the challenge's payload after. Never more than sending and checking the code
    needs: the identifier as typed, and the phone once the code went to it."""

    VERSION: ClassVar[int] = 2

    purpose: Purpose
    kind: IdKind
    value: str
    evict: str | None = None  # adding to a full cache: the slot the user agreed to replace
    slot: str | None = None   # re-verifying: the account's slot
    phone: str | None = None  # the phone the code went to (E.164), once sent

    @property
    def identifier(self) -> Identifier:
        return Identifier(self.kind, self.value)

    @property
    def owner(self) -> bool:
        """A re-verification: the chat holds the account, so strangers' caps do not bind."""
        return self.purpose is Purpose.REVERIFY

    def about(self, slot: str) -> bool:
        return slot in (self.slot, self.evict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": self.VERSION, "purpose": self.purpose.value,
                                "kind": self.kind.value, "value": self.value}
        if self.purpose is Purpose.ADD:
            data["evict"] = self.evict
        else:
            data["slot"] = self.slot
        if self.phone is not None:
            data["phone"] = self.phone
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingStep | None:
        """A step as this or the previous release wrote it (version 1 had no ``v``; its
        keys were the same), or None if it is not one this code can read."""
        version = data.get("v", 1)
        if version not in (1, 2):
            return None
        try:
            purpose = Purpose(str(data["purpose"]))
            kind = IdKind(str(data["kind"]))
            value = str(data["value"])
        except (KeyError, ValueError):
            return None
        evict, slot, phone = data.get("evict"), data.get("slot"), data.get("phone")
        if purpose is Purpose.REVERIFY and not slot:
            return None
        return cls(purpose, kind, value,
                   evict=str(evict) if evict and purpose is Purpose.ADD else None,
                   slot=str(slot) if slot and purpose is Purpose.REVERIFY else None,
                   phone=str(phone) if phone else None)


# -- outcomes ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Switched:
    """The chat already holds this participant with a live session: now chosen."""
    account: Account


@dataclass(frozen=True, slots=True)
class Expired:
    """The chat holds this participant but the session ran out: say so, then
    :meth:`Enrolment.send_code` the step (a fresh look-up, then a code)."""
    account: Account
    step: PendingStep


@dataclass(frozen=True, slots=True)
class AskEviction:
    """The cache is full: the user picks the account the new one replaces, before any
    look-up (:meth:`Enrolment.choose_eviction`); ``accounts`` are the chat's."""
    step: PendingStep
    accounts: list[Brief]


@dataclass(frozen=True, slots=True)
class Blocked:
    """A cap refused the look-up before it was made (``cap`` None: the look-up cap)."""
    cap: SendOutcome | None


@dataclass(frozen=True, slots=True)
class CannotSend:
    """Adding: one and the same reply for not found, no phone, locked, out of codes and a
    failed SMS. A bad input: the user may try another identifier."""


@dataclass(frozen=True, slots=True)
class BackendDown:
    rejected: bool   # BPJS refused the bot's credentials (the operator's problem)
    ask_again: bool  # adding: the identifier is gone from the chat, so it is asked again
    #: adding: the step, to be kept sealed briefly for 🔁 Coba lagi (no retyping the NIK)
    step: PendingStep | None = None


@dataclass(frozen=True, slots=True)
class Gone:
    """The account a re-verification was for left the chat: the challenge is dropped."""


@dataclass(frozen=True, slots=True)
class NoPhone:
    """Re-verifying: BPJS has no phone for the chat's own account."""


@dataclass(frozen=True, slots=True)
class CodeSent:
    step: PendingStep
    phone_tail: str


@dataclass(frozen=True, slots=True)
class SendFailed:
    """Re-verifying: the code could not go out (an SMS failure: ``step`` may be sent
    again; a cap: ``cap``)."""
    step: PendingStep
    cap: SendOutcome | None


@dataclass(frozen=True, slots=True)
class Reverified:
    account: Account


@dataclass(frozen=True, slots=True)
class AskLabel:
    """The code was accepted for a new account: the label comes next."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The code was not accepted (wrong, expired, used up, locked, or none pending)."""
    result: VerifyResult


@dataclass(frozen=True, slots=True)
class Saved:
    account: Account
    participant: Participant
    evicted: Account | None


class SaveProblem(enum.StrEnum):
    NOTHING_VERIFIED = "nothing_verified"  # no accepted code for an add (or too old)
    BACKEND_DOWN = "backend_down"          # the second look-up failed: try the label again
    PHONE_CHANGED = "phone_changed"        # gone, or not the phone the code went to
    CACHE_CHANGED = "cache_changed"        # the cache filled up meanwhile


@dataclass(frozen=True, slots=True)
class AlreadyCached:
    """Saving found the participant already in the chat (added meanwhile): now chosen."""
    account: Account | None


Begun = Switched | Expired | AskEviction | Blocked | CannotSend | BackendDown | Gone \
    | NoPhone | CodeSent | SendFailed
Verified = Reverified | AskLabel | Gone | Refused
SaveResult = Saved | SaveProblem | AlreadyCached

#: Called right before the participant is looked up (the handler shows "looking up").
BeforeLookup = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class LabelProblem(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    LOOKS_LIKE_ID = "looks_like_id"  # a NIK or card number typed as a label: deleted


def clean_label(text: str) -> tuple[str, LabelProblem | None]:
    """A typed label, printable and with single spaces, and what is wrong with it."""
    label = " ".join("".join(ch for ch in text if ch.isprintable() or ch == " ").split())
    if not label:
        return label, LabelProblem.EMPTY
    if len(label) > MAX_LABEL:
        return label, LabelProblem.TOO_LONG
    if carries_identifier(label) or isinstance(parse_identifier(label), Identifier):
        return label, LabelProblem.LOOKS_LIKE_ID
    return label, None


class Enrolment:
    def __init__(self, accounts: AccountService, otp: OtpService, backend: JknBackend
                 ) -> None:
        self.accounts = accounts
        self.otp = otp
        self.backend = backend

    # -- the step between updates, sealed in the chat's data ----------------------------

    async def keep(self, chat_data: ChatData, chat_id: int, step: PendingStep, *,
                   ttl: float = PENDING_TTL) -> None:
        """Seal the step, under the chat's own key, for ``ttl`` seconds (at most
        ``otp.PENDING_TTL``)."""
        chat_data[PENDING_KEY] = await self.otp.seal(chat_id, step.to_dict(), ttl=ttl)

    async def kept(self, chat_data: Mapping[Any, Any] | None, chat_id: int
                   ) -> PendingStep | None:
        """The step sealed for this chat, or None (not a step, damaged, another chat's,
        its key erased, or older than ``otp.PENDING_TTL``)."""
        sealed = (chat_data or {}).get(PENDING_KEY)
        data = await self.otp.unseal(chat_id, sealed) if isinstance(sealed, str) else None
        return None if data is None else PendingStep.from_dict(data)

    @staticmethod
    def clear(chat_data: ChatData | None) -> None:
        if chat_data is not None:
            chat_data.pop(PENDING_KEY, None)
            chat_data.pop(BAD_KEY, None)

    async def forget_steps_of(self, chat_data: ChatData | None, chat_id: int, slot: str
                              ) -> None:
        """An account left the chat (/hapus_kk): a sealed step about it (a re-verification
        waiting for "Kirim kode", an eviction question naming it) goes with it."""
        step = await self.kept(chat_data, chat_id)
        if step is not None and step.about(slot):
            self.clear(chat_data)

    async def drop_stale(self, every_chat: Mapping[int, ChatData]) -> int:
        """Forget sealed steps that no longer open (abandoned longer than PENDING_TTL)."""
        stale = [data for chat_id, data in list(every_chat.items())
                 if isinstance(data.get(PENDING_KEY), str)
                 and await self.kept(data, chat_id) is None]
        for data in stale:
            data.pop(PENDING_KEY, None)
        return len(stale)

    @staticmethod
    def strike(chat_data: ChatData) -> bool:
        """One more bad input; True when it is the last allowed (the flow ends: this also
        bounds how many look-ups one conversation can make)."""
        count = int(chat_data.get(BAD_KEY, 0)) + 1
        chat_data[BAD_KEY] = count
        if count >= MAX_BAD_INPUTS:
            Enrolment.clear(chat_data)
            return True
        return False

    async def code_pending(self, chat_id: int) -> bool:
        challenge = await self.otp.challenge(chat_id)
        return challenge is not None and challenge.consumed_at is None

    async def sent_for(self, chat_id: int, typed: Identifier) -> str | None:
        """The last four digits of the phone if the chat's waiting code went out for
        ``typed`` (the same NIK sent twice, the second while BPJS was slow): no new code."""
        challenge = await self.otp.challenge(chat_id)
        step = (None if challenge is None or challenge.consumed_at is not None
                else PendingStep.from_dict(challenge.payload))
        if step is None or step.identifier != typed or step.phone is None:
            return None
        return phone_tail(step.phone)

    async def forget_account(self, chat_id: int, slot: str) -> None:
        """An account left the chat: a re-verification of it goes too (its identifier)."""
        challenge = await self.otp.challenge(chat_id)
        step = None if challenge is None else PendingStep.from_dict(challenge.payload)
        if step is not None and step.slot == slot:
            await self.otp.cancel(chat_id)

    # -- before the code ----------------------------------------------------------------

    async def begin(self, chat_id: int, typed: Identifier,
                    before_lookup: BeforeLookup = _nothing) -> Begun:
        """A NIK or card number was typed to add an account."""
        if typed.kind is IdKind.NIK:  # already cached: no question to BPJS at all
            cached = await self.accounts.find_by_nik(chat_id, typed.value)
            if cached is not None:
                return await self._cached(cached)
        step = PendingStep(Purpose.ADD, typed.kind, typed.value)
        full = await self.accounts.when_full(chat_id)
        if full is not None:  # asked before the look-up: it reveals nothing of the NIK
            return AskEviction(step, full)
        return await self.send_code(chat_id, step, before_lookup)

    async def choose_eviction(self, chat_id: int, step: PendingStep, slot: str
                              ) -> PendingStep | None:
        """The user picked the account to replace: the step that sends the code, or None
        if the chat holds no such account (a stale or forged button)."""
        if step.purpose is not Purpose.ADD or await self.accounts.get(chat_id, slot) is None:
            return None
        return replace(step, evict=slot)

    async def _cached(self, account: Account) -> Switched | Expired:
        if not self.accounts.is_fresh(account):
            return self.reverify_step(account)
        await self.accounts.switch(account.chat_id, account.slot)
        return Switched(account)

    def reverify_step(self, account: Account) -> Expired:
        typed = identifier_of(account)
        return Expired(account, PendingStep(Purpose.REVERIFY, typed.kind, typed.value,
                                            slot=account.slot))

    async def held(self, chat_id: int, step: PendingStep, nik: str | None = None) -> bool:
        """Does the chat still hold the account a re-verification is for (and is it this
        participant)? Asked at every step before an owner's allowance is used."""
        account = await self.accounts.get(chat_id, str(step.slot))
        return account is not None and (nik is None or account.nik == nik)

    async def _gone(self, chat_id: int) -> Gone:
        await self.otp.cancel(chat_id)
        return Gone()

    async def _find(self, typed: Identifier) -> Participant | None:
        """The participant, or None if BPJS knows no one by this identifier or refused it
        as invalid (both read as "cannot send"; other backend errors propagate)."""
        try:
            return await lookup(self.backend, typed)
        except (JknNotFound, JknInvalidRequest):
            return None

    async def send_code(self, chat_id: int, step: PendingStep,
                        before_lookup: BeforeLookup = _nothing) -> Begun:
        """The caps, then the look-up by the identifier as typed, then the code."""
        adding = not step.owner
        if not adding and not await self.held(chat_id, step):
            return await self._gone(chat_id)
        blocked = await self.otp.blocked_for_chat(chat_id) if adding else None
        if blocked is not None or not await self.otp.allow_lookup(chat_id):
            return Blocked(blocked)
        await before_lookup()
        try:
            participant = await self._find(step.identifier)
        except JknCredentialsRejected:
            return BackendDown(rejected=True, ask_again=False)
        except JknError:
            return BackendDown(rejected=False, ask_again=adding, step=step if adding else None)
        if participant is None or participant.phone is None:
            if adding:  # one and the same reply, next step and database work as when found
                await self._as_if_found(chat_id, participant or step.identifier)
                return CannotSend()
            return NoPhone()  # the chat's own account: no secret to keep from its owner
        if adding:
            existing = await self.accounts.find_same(chat_id, participant.nik, participant.card)
            if existing is not None:
                return await self._cached(existing)
        return await self._issue(chat_id, step, participant)

    async def _as_if_found(self, chat_id: int, who: Participant | Identifier) -> None:
        """The database round trips a found participant costs before the shared "cannot
        send" reply (is it cached here? may a code go out?), for one that was not found: a
        stranger timing the replies cannot tell "not found" from "locked / out of codes"
        (tests/test_timing.py counts the round trips and compares the medians)."""
        nik, card = ((who.nik, who.card) if isinstance(who, Participant)
                     else (who.value, who.value))
        await self.accounts.find_same(chat_id, nik, card)
        await self.otp.as_if_issued(chat_id, nik or card)

    async def _issue(self, chat_id: int, step: PendingStep, participant: Participant
                     ) -> Begun:
        """Issue the code. When adding, a code that cannot go out for this participant
        (too many wrong codes or codes for them today, an SMS failure) reads exactly like
        "not found": anything else tells a stranger the NIK exists. The owner is told."""
        assert participant.phone is not None
        owner = step.owner
        if owner and not await self.held(chat_id, step, participant.nik or None):
            return await self._gone(chat_id)  # removed while BPJS answered
        result = await self.otp.issue(chat_id, purpose=step.purpose.value,
                                      nik=participant.nik or participant.card,  # NIK unknown
                                      phone=participant.phone,
                                      payload=step.to_dict(), owner=owner)
        if result.outcome is not SendOutcome.SENT and not owner:
            return CannotSend()
        if result.outcome is SendOutcome.SENT:
            return CodeSent(replace(step, phone=participant.phone), result.phone_tail)
        return SendFailed(step, None if result.outcome is SendOutcome.SMS_FAILED
                          else result.outcome)

    async def resend(self, chat_id: int) -> SendResult:
        """Kirim ulang: the owner's allowance only while the chat still holds the account."""
        async def held(payload: dict[str, Any]) -> bool:
            step = PendingStep.from_dict(payload)
            return step is not None and await self.held(chat_id, step)

        result = await self.otp.resend(chat_id, held=held)
        if result.outcome not in (SendOutcome.SENT, SendOutcome.SMS_FAILED,
                                  SendOutcome.TOO_EARLY, SendOutcome.NO_CHALLENGE):
            await self.otp.cancel(chat_id)
        return result

    # -- the code -----------------------------------------------------------------------

    async def verify_code(self, chat_id: int, code: str) -> Verified:
        return await self._after(chat_id, await self.otp.verify(chat_id, code))

    async def verify_contact(self, chat_id: int, own_phone: str | None) -> Verified:
        """A shared contact: ``own_phone`` is the user's own number (E.164), or None when
        the contact is someone else's. Anything but the phone on file is a wrong try."""
        return await self._after(chat_id, await self.otp.verify_contact(chat_id, own_phone))

    async def _after(self, chat_id: int, result: VerifyResult) -> Verified:
        step = PendingStep.from_dict(result.payload) if result.payload is not None else None
        if result.outcome is not VerifyOutcome.OK or step is None:
            if result.outcome in (VerifyOutcome.EXHAUSTED, VerifyOutcome.LOCKED):
                await self.otp.cancel(chat_id)
            return Refused(result if result.outcome is not VerifyOutcome.OK
                           else VerifyResult(VerifyOutcome.NONE))
        if step.purpose is Purpose.REVERIFY:
            account = await self.accounts.reverified(chat_id, str(step.slot))
            if account is None:
                return await self._gone(chat_id)
            return Reverified(account)
        return AskLabel()

    # -- saving -------------------------------------------------------------------------

    async def save(self, chat_id: int, label: str) -> SaveResult:
        """Look the verified participant up again (nothing of them was kept before the
        code), check the code went to the phone BPJS still has, then insert (and evict)
        atomically."""
        payload = await self.otp.verified_payload(chat_id)
        step = None if payload is None else PendingStep.from_dict(payload)
        if step is None or step.purpose is not Purpose.ADD:
            return SaveProblem.NOTHING_VERIFIED
        try:
            participant = await self._find(step.identifier)
        except JknError:
            return SaveProblem.BACKEND_DOWN
        if participant is None or participant.phone != step.phone:
            await self.otp.cancel(chat_id)
            return SaveProblem.PHONE_CHANGED
        new = NewAccount(nik=participant.nik, card=participant.card, name=participant.name,
                         phone=str(step.phone), label=label, status=participant.to_dict(),
                         lookup_kind=step.kind.value)
        try:
            outcome = await self.accounts.add(chat_id, new, evict_slot=step.evict)
        except DuplicateAccountError:
            await self.otp.cancel(chat_id)
            existing = await self.accounts.find_same(chat_id, participant.nik, participant.card)
            if existing is not None:
                await self.accounts.switch(chat_id, existing.slot)
            return AlreadyCached(existing)
        except CacheFullError:
            await self.otp.cancel(chat_id)
            return SaveProblem.CACHE_CHANGED
        return Saved(outcome.account, participant, outcome.evicted)
