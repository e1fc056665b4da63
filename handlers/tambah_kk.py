"""The /tambah_kk conversation: identifier → (eviction notice) → lookup → OTP → label.

The same conversation also re-verifies a cached account whose session ran out (entered
from a tap in /akun or /status). Its state survives restarts through the persistence.

What a stranger learns before the code is accepted is kept to "a code was sent to a phone
ending in 1234": "not found" and "no phone on file" read the same, the eviction question
comes before the lookup, and a card-number look-up never shows the NIK. Before the code,
the flow keeps only the identifier as typed (sealed with the vault in chat data) and, once
the code is sent, the encrypted challenge row; the participant's data is fetched again
after the code is accepted.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from telegram import Message, Update
from telegram.ext import ConversationHandler

from bot import texts
from bot.accounts import (
    Account,
    CacheFullError,
    DuplicateAccountError,
    NewAccount,
)
from bot.identity import (
    Identifier,
    IdError,
    IdKind,
    carries_identifier,
    contact_phone,
    mask_nik,
    parse_identifier,
    parse_otp,
)
from bot.jkn.base import (
    JknCredentialsRejected,
    JknError,
    JknInvalidRequest,
    JknNotFound,
    Participant,
)
from bot.otp import PENDING_TTL, RETRY_TTL, OtpService, SendOutcome, VerifyOutcome, VerifyResult
from bot.status import Source, StatusView, identifier_of, lookup
from handlers import keyboards, render
from handlers.common import (
    Context,
    answer,
    chat_id_of,
    delete_user_message,
    drop_keyboard,
    edit,
    edit_query,
    has_consent,
    send,
    services,
)

ASK_ID, CONFIRM, ASK_OTP, ASK_LABEL = range(4)
END = ConversationHandler.END
MAX_BAD_INPUTS = 5
MAX_LABEL = 32
_PENDING = "pending"
_BAD = "bad_inputs"
_CONTACT_KEYBOARD = "contact_keyboard"

_CAP_TEXTS = {
    SendOutcome.CAP_CHAT: texts.SMS_CAP_CHAT,
    SendOutcome.CAP_PHONE: texts.SMS_CAP_PHONE,
    SendOutcome.CAP_PARTICIPANT: texts.SMS_CAP_PARTICIPANT,
    SendOutcome.CAP_GLOBAL: texts.SMS_CAP_GLOBAL,
}


# -- the pending step, sealed, in chat data (stored in the database as JSON) -------------

def _seal(context: Context, chat_id: int, payload: dict[str, Any], *,
          ttl: float = PENDING_TTL) -> None:
    assert context.chat_data is not None
    context.chat_data[_PENDING] = services(context).otp.seal(chat_id, payload, ttl=ttl)


def _unseal(context: Context, chat_id: int) -> dict[str, Any] | None:
    sealed = (context.chat_data or {}).get(_PENDING)
    return services(context).otp.unseal(chat_id, sealed) if isinstance(sealed, str) else None


def _clear(context: Context) -> None:
    if context.chat_data is not None:
        context.chat_data.pop(_PENDING, None)
        context.chat_data.pop(_BAD, None)


def forget_steps_of(context: Context, chat_id: int, slot: str) -> None:
    """An account left the chat (/hapus_kk): a sealed step about it (a re-verification
    waiting for "Kirim kode", an eviction question naming it) goes with it."""
    payload = _unseal(context, chat_id)
    if payload is not None and slot in (payload.get("slot"), payload.get("evict")):
        _clear(context)


async def _held(context: Context, chat_id: int, payload: Mapping[str, Any],
                nik: str | None = None) -> bool:
    """Does the chat still hold the account a re-verification is for (and is it this
    participant)? Asked at every step before an owner's allowance is used."""
    account = await services(context).accounts.get(chat_id, str(payload.get("slot")))
    return account is not None and (nik is None or account.nik == nik)


async def _gone(update: Update, context: Context, progress: Message | None) -> int:
    """The account a re-verification was for left the chat: nothing is sent."""
    await services(context).otp.cancel(chat_id_of(update))
    off = _end_flow(context)
    if progress is not None and off is None:
        await edit(context, progress, texts.VERIFY_SESSION_GONE)
    else:  # a new message: only a sent one can take the 📱 keyboard away
        await send(update, context, texts.VERIFY_SESSION_GONE, off)
    return END


def drop_stale_pending(chat_data: Mapping[int, dict[Any, Any]], otp: OtpService) -> int:
    """Forget sealed steps that no longer open (abandoned longer than PENDING_TTL)."""
    stale = [data for chat_id, data in chat_data.items()
             if isinstance(data.get(_PENDING), str)
             and otp.unseal(chat_id, data[_PENDING]) is None]
    for data in stale:
        data.pop(_PENDING, None)
    return len(stale)


def _typed(payload: dict[str, Any]) -> Identifier:
    return Identifier(IdKind(str(payload["kind"])), str(payload["value"]))


async def _find(context: Context, typed: Identifier) -> Participant | None:
    """The participant, or None if BPJS knows no one by this identifier or refused it as
    invalid (both read as "cannot send"; other backend errors are the caller's to word)."""
    try:
        return await lookup(services(context).backend, typed)
    except (JknNotFound, JknInvalidRequest):
        return None


# -- entry ------------------------------------------------------------------------------

async def start_add(update: Update, context: Context) -> int:
    """/tambah_kk (optionally with the identifier: ``/tambah_kk 3174…``) or ➕ Tambah KK."""
    if update.callback_query is not None:
        await answer(context, update.callback_query)
    if not await has_consent(update, context):
        await send(update, context, texts.CONSENT_REQUIRED)
        return END
    await services(context).otp.cancel(chat_id_of(update))
    _clear(context)
    given = " ".join(context.args or []) if update.callback_query is None else ""
    if given.strip():
        await delete_user_message(update, context)  # whatever the scrubber made of it
        return await _identifier(update, context, given)
    await send(update, context, texts.ASK_ID)
    return ASK_ID


async def _bad_input(update: Update, context: Context, text: str,
                     progress: Message | None = None) -> int:
    """Explain what was wrong (in place of the progress message, if any); five strikes end
    the flow, which also bounds how many lookups one conversation can make."""
    assert context.chat_data is not None
    count = int(context.chat_data.get(_BAD, 0)) + 1
    context.chat_data[_BAD] = count
    state = ASK_ID
    if count >= MAX_BAD_INPUTS:
        _clear(context)
        text += "\n\n" + texts.ID_TOO_MANY
        state = END
    else:
        text += "\n" + texts.ID_TRIES_LEFT.format(left=MAX_BAD_INPUTS - count)
    await _show(update, context, progress, text, None)
    return state


async def receive_id(update: Update, context: Context) -> int:
    """A NIK or card number arrived (the message is deleted in any case)."""
    message = update.effective_message
    assert message is not None
    text = message.text or ""
    if parse_otp(text) is not None and await _code_pending(context, chat_id_of(update)):
        # The state was not yet on disk when the bot died after sending the code: the
        # challenge is, so this is the code (ASK_ID never has a live challenge otherwise).
        return await receive_code(update, context)
    await delete_user_message(update, context)
    return await _identifier(update, context, text)


async def _identifier(update: Update, context: Context, text: str) -> int:
    parsed = parse_identifier(text)
    if isinstance(parsed, IdError):
        problem = texts.ID_PROBLEMS[parsed.problem.value].format(length=parsed.length)
        return await _bad_input(update, context, problem)
    svc = services(context)
    chat_id = chat_id_of(update)
    if parsed.kind is IdKind.NIK:  # already cached: no question to BPJS at all
        cached = await svc.accounts.find_by_nik(chat_id, parsed.value)
        if cached is not None:
            return await _cached(update, context, cached, None)
    victim = await svc.accounts.eviction_candidate(chat_id)
    if victim is not None:  # asked before the lookup, so it reveals nothing about the NIK
        _seal(context, chat_id, {"purpose": "add", "kind": parsed.kind.value,
                                 "value": parsed.value, "evict": victim.slot})
        await send(update, context, texts.CACHE_FULL.format(
            max_accounts=svc.accounts.max_accounts, label=html.escape(victim.label),
            masked=mask_nik(victim.nik)), keyboards.confirm_send())
        return CONFIRM
    return await _lookup_and_send(update, context, {
        "purpose": "add", "kind": parsed.kind.value, "value": parsed.value, "evict": None})


async def _cached(update: Update, context: Context, account: Account,
                  progress: Message | None) -> int:
    """The chat already holds this participant: switch to it, or re-verify it if its
    session ran out."""
    svc = services(context)
    if not svc.accounts.is_fresh(account):
        return await _reverify(update, context, account, progress)
    await svc.accounts.switch(account.chat_id, account.slot)
    _clear(context)
    await _show(update, context, progress,
                texts.ALREADY_CACHED.format(label=html.escape(account.label)),
                keyboards.next_steps())
    return END


async def _lookup_and_send(update: Update, context: Context, payload: dict[str, Any],
                           progress: Message | None = None) -> int:
    """Look the participant up by the identifier as typed, then send the code."""
    svc = services(context)
    chat_id = chat_id_of(update)
    typed = _typed(payload)
    adding = payload["purpose"] == "add"
    if not adding and not await _held(context, chat_id, payload):
        return await _gone(update, context, progress)
    blocked = await svc.otp.blocked_for_chat(chat_id) if adding else None
    if blocked is not None or not await svc.otp.allow_lookup(chat_id):
        _clear(context)
        await _show(update, context, progress,
                    _CAP_TEXTS[blocked] if blocked else texts.LOOKUP_CAP, None)
        return END
    progress = await _show(update, context, progress,
                           texts.LOOKING_UP.format(masked=typed.masked), None)
    try:
        participant = await _find(context, typed)
    except JknCredentialsRejected:
        _clear(context)
        await edit(context, progress, texts.BACKEND_REJECTED)
        return END
    except JknError:
        if adding:  # the identifier is gone from the chat: sealed briefly for 🔁 Coba lagi
            _seal(context, chat_id, payload, ttl=RETRY_TTL)
            await edit(context, progress,
                       texts.BACKEND_DOWN.format(minutes=int(RETRY_TTL // 60)),
                       keyboards.retry())
            return CONFIRM
        _clear(context)
        await edit(context, progress, texts.BACKEND_DOWN_SHORT)
        return END
    if participant is None or participant.phone is None:
        if adding:  # one and the same reply, next step and database work as when found
            await _as_if_found(context, chat_id, participant or typed)
            return await _bad_input(update, context,
                                    texts.LOOKUP_FAILED.format(masked=typed.masked), progress)
        _clear(context)  # the chat's own account: no secret to keep from its owner
        await edit(context, progress, texts.REVERIFY_NO_PHONE)
        return END
    if adding:
        existing = await svc.accounts.find_same(chat_id, participant.nik, participant.card)
        if existing is not None:
            return await _cached(update, context, existing, progress)
    return await _send_code(update, context, payload, participant, progress)


async def _as_if_found(context: Context, chat_id: int, who: Participant | Identifier
                       ) -> None:
    """The database round trips a found participant costs before the shared "cannot send"
    reply (is it cached here? may a code go out?), for one that was not found: a stranger
    timing the replies cannot tell "not found" from "locked / out of codes" (tests/
    test_timing.py counts the round trips and compares the medians)."""
    svc = services(context)
    nik, card = ((who.nik, who.card) if isinstance(who, Participant)
                 else (who.value, who.value))
    await svc.accounts.find_same(chat_id, nik, card)
    await svc.otp.as_if_issued(chat_id, nik or card)


async def _code_pending(context: Context, chat_id: int) -> bool:
    challenge = await services(context).otp.challenge(chat_id)
    return challenge is not None and challenge.consumed_at is None


async def _send_code(update: Update, context: Context, payload: dict[str, Any],
                     participant: Participant, message: Message | None) -> int:
    """Issue the OTP and show where it went (a phone's last four digits, nothing more).

    When adding, a code that cannot be sent for this participant (too many wrong codes or
    codes for them today, an SMS gateway failure) reads exactly like "not found": anything
    else would tell a stranger the NIK exists. The owner re-verifying is told why."""
    svc = services(context)
    chat_id = chat_id_of(update)
    assert participant.phone is not None
    owner = payload["purpose"] == "reverify"
    if owner and not await _held(context, chat_id, payload, participant.nik or None):
        return await _gone(update, context, message)  # removed while BPJS answered
    result = await svc.otp.issue(chat_id, purpose=str(payload["purpose"]),
                                 nik=participant.nik or participant.card,  # NIK unknown
                                 phone=participant.phone,
                                 payload=payload, owner=owner)
    if result.outcome is not SendOutcome.SENT and not owner:
        return await _bad_input(update, context,
                                texts.LOOKUP_FAILED.format(masked=_typed(payload).masked),
                                message)
    if result.outcome is SendOutcome.SENT:
        if context.chat_data is not None:
            context.chat_data.pop(_PENDING, None)
            context.chat_data[_CONTACT_KEYBOARD] = True
        text = texts.OTP_SENT.format(tail=result.phone_tail, masked=_typed(payload).masked,
                                     minutes=max(1, svc.otp.ttl // 60),
                                     days=svc.accounts.session_days)
        await _show(update, context, message, text, keyboards.otp())
        await send(update, context, texts.CONTACT_PROMPT.format(tail=result.phone_tail),
                   keyboards.contact_request())
        return ASK_OTP
    if result.outcome is SendOutcome.SMS_FAILED:
        _seal(context, chat_id, payload)
        await _show(update, context, message, texts.SMS_FAILED,
                    keyboards.confirm_send(texts.SEND_CODE_BUTTON))
        return CONFIRM
    _clear(context)
    await _show(update, context, message, _CAP_TEXTS[result.outcome], None)
    return END


async def _show(update: Update, context: Context, message: Message | None, text: str,
                keyboard: Any) -> Message:
    """Edit ``message`` (a progress message) or send a new one; returns what shows it."""
    if message is not None:
        await edit(context, message, text, keyboard)
        return message
    return await send(update, context, text, keyboard)


async def confirm_send(update: Update, context: Context) -> int:
    """Lanjutkan (after the eviction notice) or Kirim kode (after an SMS failure)."""
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    payload = _unseal(context, chat_id_of(update))
    if payload is None:
        _clear(context)
        await edit_query(context, query, texts.VERIFY_SESSION_GONE)
        return END
    target = query.message if isinstance(query.message, Message) else None
    return await _lookup_and_send(update, context, payload, target)


async def press_a_button(update: Update, context: Context) -> int:
    await send(update, context, texts.PRESS_A_BUTTON)
    return CONFIRM


# -- OTP --------------------------------------------------------------------------------

async def receive_code(update: Update, context: Context) -> int:
    """The user typed a code: delete it, verify it atomically, go on or explain."""
    message = update.effective_message
    assert message is not None
    await delete_user_message(update, context)
    code = parse_otp(message.text or "")
    chat_id = chat_id_of(update)
    if code is None:
        otp = services(context).otp
        challenge = await otp.challenge(chat_id)
        if challenge is None or challenge.consumed_at is not None:  # nothing left to type for
            _clear(context)
            await send(update, context, texts.OTP_NONE)
            return END
        await send(update, context, texts.OTP_FORMAT.format(
            left=max(0, otp.max_attempts - challenge.attempts)))
        return ASK_OTP
    return await _verified(update, context, await services(context).otp.verify(chat_id, code))


def _keyboard_off(context: Context, *, used: bool = False) -> keyboards.Keyboard | None:
    """Remove the 📱 reply keyboard if this flow showed it or the user just ``used`` it
    (once the code no longer waits)."""
    shown = context.chat_data is not None and context.chat_data.pop(_CONTACT_KEYBOARD, False)
    return keyboards.REMOVE_REPLY_KEYBOARD if shown or used else None


def contact_keyboard_shown(context: Context) -> bool:
    """Does the chat show this flow's 📱 reply keyboard (a code is awaited)?"""
    return context.chat_data is not None and bool(context.chat_data.get(_CONTACT_KEYBOARD))


def _end_flow(context: Context, *, used: bool = False) -> keyboards.Keyboard | None:
    """The flow is over: forget its chat data; returns the 📱 keyboard's removal, if due."""
    off = _keyboard_off(context, used=used)
    _clear(context)
    return off


async def _verified(update: Update, context: Context, result: VerifyResult, *,
                    by_contact: bool = False) -> int:
    """What an attempt at the challenge leads to (a typed code or a shared contact)."""
    svc = services(context)
    chat_id = chat_id_of(update)
    if result.outcome is VerifyOutcome.WRONG:
        await send(update, context, texts.OTP_WRONG.format(left=result.attempts_left))
        return ASK_OTP
    if result.outcome is VerifyOutcome.EXPIRED:
        await send(update, context, texts.OTP_EXPIRED, keyboards.otp())
        return ASK_OTP
    if result.outcome in (VerifyOutcome.EXHAUSTED, VerifyOutcome.LOCKED):
        await svc.otp.cancel(chat_id)
        off = _end_flow(context, used=by_contact)
        await send(update, context, texts.OTP_EXHAUSTED if result.outcome is
                   VerifyOutcome.EXHAUSTED else texts.OTP_LOCKED, off)
        return END
    if result.outcome is not VerifyOutcome.OK or result.payload is None:
        off = _end_flow(context, used=by_contact)
        await send(update, context, texts.OTP_NONE, off)
        return END
    done = texts.CONTACT_OK if by_contact else texts.OTP_OK
    if result.payload.get("purpose") == "reverify":
        account = await svc.accounts.reverified(chat_id, str(result.payload["slot"]))
        off = _end_flow(context, used=by_contact)
        if account is None:
            await svc.otp.cancel(chat_id)
            await send(update, context, texts.VERIFY_SESSION_GONE, off)
        else:
            await send(update, context, done + "\n\n" + texts.REVERIFIED.format(
                label=html.escape(account.label)), off)
        return END
    await send(update, context, done, _keyboard_off(context, used=by_contact))
    await send(update, context, texts.ASK_LABEL.format(max_len=MAX_LABEL), keyboards.labels())
    return ASK_LABEL


async def receive_contact(update: Update, context: Context) -> int:
    """A shared contact instead of the code: proof only when it is the user's own and its
    number is the phone on file (E.164 after normalising both); anything else is a wrong
    attempt. The scrubber has deleted the message, like a code; nothing of it is kept."""
    message = update.effective_message
    assert message is not None and message.contact is not None
    contact, user = message.contact, update.effective_user
    own = contact.user_id is not None and user is not None and contact.user_id == user.id
    own_phone = contact_phone(contact.phone_number) if own else None
    result = await services(context).otp.verify_contact(chat_id_of(update), own_phone)
    if result.outcome is VerifyOutcome.WRONG:
        await send(update, context, (texts.CONTACT_MISMATCH if own else texts.CONTACT_NOT_OWN)
                   .format(left=result.attempts_left))
        return ASK_OTP
    return await _verified(update, context, result, by_contact=True)


async def contact_elsewhere(update: Update, context: Context) -> int | None:
    """A contact at a step that waits for no code: deleted, and it changes nothing, unless
    a code is in fact pending (the state write lost to a crash, as for a typed code)."""
    if await _code_pending(context, chat_id_of(update)):
        return await receive_contact(update, context)
    await send(update, context, texts.CONTACT_NOT_NOW, keyboards.REMOVE_REPLY_KEYBOARD)
    return None


async def resend(update: Update, context: Context) -> int:
    """Kirim ulang: respects the cooldown (a toast with the seconds left)."""
    query = update.callback_query
    assert query is not None
    svc = services(context)
    chat_id = chat_id_of(update)

    async def held(payload: dict[str, Any]) -> bool:
        return await _held(context, chat_id, payload)

    result = await svc.otp.resend(chat_id, held=held)
    if result.outcome is SendOutcome.TOO_EARLY:
        await answer(context, query, texts.RESEND_WAIT.format(seconds=result.wait_seconds))
        return ASK_OTP
    await answer(context, query)
    if result.outcome is SendOutcome.SENT:
        await send(update, context, texts.OTP_RESENT.format(tail=result.phone_tail),
                   keyboards.otp())
        return ASK_OTP
    if result.outcome is SendOutcome.SMS_FAILED:
        await send(update, context, texts.SMS_FAILED_RESEND, keyboards.otp())
        return ASK_OTP
    _clear(context)
    if result.outcome is SendOutcome.NO_CHALLENGE:
        await send(update, context, texts.OTP_NONE)
    else:
        await svc.otp.cancel(chat_id_of(update))
        await send(update, context, _CAP_TEXTS[result.outcome])
    return END


# -- label and save ---------------------------------------------------------------------

def _clean_label(text: str) -> str:
    return " ".join("".join(ch for ch in text if ch.isprintable() or ch == " ").split())


async def receive_label(update: Update, context: Context) -> int:
    """A preset button or free text: validate, then save (insert + eviction atomically)."""
    query = update.callback_query
    if query is not None:
        await answer(context, query)
        index = int(context.match.group(1) if context.match else "0")
        if index >= len(texts.LABEL_PRESETS):
            await send(update, context, texts.STALE_BUTTON)
            return ASK_LABEL
        label = texts.LABEL_PRESETS[index]
    else:
        message = update.effective_message
        assert message is not None
        label = _clean_label(message.text or "")
        if not label:
            await send(update, context, texts.LABEL_EMPTY.format(max_len=MAX_LABEL))
            return ASK_LABEL
        if len(label) > MAX_LABEL:
            await send(update, context,
                       texts.LABEL_TOO_LONG.format(length=len(label), max_len=MAX_LABEL))
            return ASK_LABEL
        if carries_identifier(label) or isinstance(parse_identifier(label), Identifier):
            await delete_user_message(update, context)
            await send(update, context, texts.LABEL_LOOKS_LIKE_ID)
            return ASK_LABEL
    state = await _save(update, context, label)
    if query is not None and state == END:
        await drop_keyboard(context, query)
    return state


async def _save(update: Update, context: Context, label: str) -> int:
    """Fetch the verified participant again (nothing of them was kept before the code),
    check the code went to the phone BPJS still has, then insert (and evict) atomically."""
    svc = services(context)
    chat_id = chat_id_of(update)
    payload = await svc.otp.verified_payload(chat_id)
    if payload is None or payload.get("purpose") != "add":
        _clear(context)
        await send(update, context, texts.VERIFY_SESSION_GONE)
        return END
    typed = _typed(payload)
    try:
        participant = await _find(context, typed)
    except JknError:
        await send(update, context, texts.SAVE_BACKEND_DOWN)
        return ASK_LABEL
    if participant is None or participant.phone != payload["phone"]:
        await svc.otp.cancel(chat_id)
        _clear(context)
        await send(update, context, texts.PHONE_CHANGED)
        return END
    _clear(context)
    new = NewAccount(nik=participant.nik, card=participant.card, name=participant.name,
                     phone=str(payload["phone"]), label=label, status=participant.to_dict(),
                     lookup_kind=typed.kind.value)
    try:
        outcome = await svc.accounts.add(chat_id, new, evict_slot=payload.get("evict"))
    except DuplicateAccountError:
        await svc.otp.cancel(chat_id)
        existing = await svc.accounts.find_same(chat_id, participant.nik, participant.card)
        if existing is not None:
            await svc.accounts.switch(chat_id, existing.slot)
            await send(update, context,
                       texts.ALREADY_CACHED.format(label=html.escape(existing.label)),
                       keyboards.next_steps())
        return END
    except CacheFullError:
        await svc.otp.cancel(chat_id)
        await send(update, context, texts.CACHE_CHANGED)
        return END
    text = texts.SAVED.format(label=html.escape(label))
    if outcome.evicted is not None:
        text += texts.SAVED_EVICTED.format(label=html.escape(outcome.evicted.label),
                                           masked=mask_nik(outcome.evicted.nik))
        if svc.db.cleanup_pending:
            text += texts.CLEANUP_PENDING
    now = svc.clock()
    view = StatusView(outcome.account, participant, now, Source.LIVE, now)
    block = render.card(view, backend_hourly=svc.caps.backend_hourly, detailed=False)
    await send(update, context, text + "\n\n" + block, keyboards.next_steps(), protect=True)
    return END


# -- re-verification of an expired session ----------------------------------------------

async def _reverify(update: Update, context: Context, account: Account,
                    progress: Message | None) -> int:
    """The chat holds this account but its session ran out: a fresh lookup (for the phone
    BPJS has now), then a code. The chat is the account's owner, so caps that strangers
    used up for this participant do not stop it."""
    intro = texts.REVERIFY_INTRO.format(label=html.escape(account.label),
                                        days=services(context).accounts.session_days)
    await _show(update, context, progress, intro, None)
    typed = identifier_of(account)
    return await _lookup_and_send(update, context, {
        "purpose": "reverify", "kind": typed.kind.value, "value": typed.value,
        "slot": account.slot})


async def reverify_account(update: Update, context: Context, slot: str) -> int | None:
    """Called for a tap on an account whose session expired: fresh lookup, then OTP."""
    svc = services(context)
    chat_id = chat_id_of(update)
    account = await svc.accounts.get(chat_id, slot)
    if account is None:
        return None
    await svc.otp.cancel(chat_id)
    _clear(context)
    return await _reverify(update, context, account, None)


# -- leaving ----------------------------------------------------------------------------

async def cancel(update: Update, context: Context) -> int:
    """/batal or the Batal button, from any state: nothing in the cache changes."""
    await services(context).otp.cancel(chat_id_of(update))
    off = _end_flow(context)
    query = update.callback_query
    if query is not None:
        await answer(context, query)
    if query is not None and off is None:
        await edit_query(context, query, texts.CANCELLED, keyboards.next_steps())
    elif off is None:
        await send(update, context, texts.CANCELLED, keyboards.next_steps())
    else:  # a new message: only a sent one can take the 📱 keyboard away
        await send(update, context, texts.CANCELLED, off)
        await send(update, context, texts.NEXT_STEP, keyboards.next_steps())
    return END


async def unexpected(update: Update, context: Context) -> None:
    """Stickers, photos and the like in the middle of the flow."""
    await send(update, context, texts.UNEXPECTED_IN_FLOW)
