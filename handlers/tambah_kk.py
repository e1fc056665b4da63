"""The /tambah_kk conversation: identifier → lookup → (eviction notice) → OTP → label.

The same conversation also re-verifies a cached account whose session ran out (entered
from a tap in /akun or /status). Its state survives restarts through the persistence; the
in-flight participant data is never kept in plain text: before the OTP it is sealed with
the vault in chat data, after the OTP is sent it lives in the encrypted challenge row.
"""

from __future__ import annotations

import html
from typing import Any

from telegram import Message, Update
from telegram.ext import ConversationHandler

from bot import texts
from bot.accounts import CacheFullError, DuplicateAccountError, NewAccount, SwitchOutcome
from bot.identity import (
    DIGIT_RUN,
    Identifier,
    IdError,
    IdKind,
    mask_nik,
    parse_identifier,
    parse_otp,
)
from bot.jkn.base import JknCredentialsRejected, JknError, JknNotFound, Participant
from bot.otp import SendOutcome
from bot.status import StatusView, lookup
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
from storage.otp_repo import VerifyOutcome

ASK_ID, CONFIRM, ASK_OTP, ASK_LABEL = range(4)
END = ConversationHandler.END
MAX_BAD_INPUTS = 5
MAX_LABEL = 32
_PENDING = "pending"
_BAD = "bad_inputs"


# -- the pending payload, sealed, in chat data (stored in the database as JSON) ----------

def _seal(context: Context, chat_id: int, payload: dict[str, Any]) -> None:
    assert context.chat_data is not None
    context.chat_data[_PENDING] = services(context).otp.seal(chat_id, payload)


def _unseal(context: Context, chat_id: int) -> dict[str, Any] | None:
    sealed = (context.chat_data or {}).get(_PENDING)
    return services(context).otp.unseal(chat_id, sealed) if isinstance(sealed, str) else None


def _clear(context: Context) -> None:
    if context.chat_data is not None:
        context.chat_data.pop(_PENDING, None)
        context.chat_data.pop(_BAD, None)


# -- entry ------------------------------------------------------------------------------

async def start_add(update: Update, context: Context) -> int:
    """/tambah_kk or ➕ Tambah KK: ask for the NIK or card number."""
    if update.callback_query is not None:
        await answer(context, update.callback_query)
    if not await has_consent(update, context):
        await send(update, context, texts.CONSENT_REQUIRED)
        return END
    await services(context).otp.cancel(chat_id_of(update))
    _clear(context)
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
    await _show(update, context, progress, text, None)
    return state


async def receive_id(update: Update, context: Context) -> int:
    """A NIK or card number arrived: delete it, look the participant up, decide the path."""
    message = update.effective_message
    assert message is not None
    text = message.text or ""
    if parse_otp(text) is not None and await _code_pending(context, chat_id_of(update)):
        # The state was not yet on disk when the bot died after sending the code: the
        # challenge is, so this is the code (ASK_ID never has a live challenge otherwise).
        return await receive_code(update, context)
    await delete_user_message(update)
    parsed = parse_identifier(text)
    if isinstance(parsed, IdError):
        problem = texts.ID_PROBLEMS[parsed.problem.value].format(length=parsed.length)
        return await _bad_input(update, context, problem)
    svc = services(context)
    chat_id = chat_id_of(update)
    if parsed.kind is IdKind.NIK:  # already cached: switch without asking BPJS at all
        cached = await svc.accounts.find_by_nik(chat_id, parsed.value)
        if cached is not None and svc.accounts.is_fresh(cached):
            await svc.accounts.switch(chat_id, cached.slot)
            _clear(context)
            await send(update, context,
                       texts.ALREADY_CACHED.format(label=html.escape(cached.label)))
            return END
    if not await svc.otp.allow_lookup(chat_id):
        _clear(context)
        await send(update, context, texts.LOOKUP_CAP)
        return END
    progress = await send(update, context, texts.LOOKING_UP.format(masked=parsed.masked))
    try:
        participant = await lookup(svc.backend, parsed)
    except JknNotFound:
        return await _bad_input(update, context, texts.NOT_FOUND.format(masked=parsed.masked),
                                progress)
    except JknCredentialsRejected:
        await edit(context, progress, texts.BACKEND_REJECTED)
        _clear(context)
        return END
    except JknError:
        await edit(context, progress, texts.BACKEND_DOWN)
        return ASK_ID
    if participant.phone is None:
        await edit(context, progress, texts.NO_PHONE.format(masked=parsed.masked))
        _clear(context)
        return END
    existing = await svc.accounts.find_by_nik(chat_id, participant.nik)
    if existing is not None:
        outcome, _ = await svc.accounts.switch(chat_id, existing.slot)
        if outcome is SwitchOutcome.NEEDS_OTP:
            return await _start_reverify(update, context, existing.slot, existing.label,
                                         participant, progress)
        _clear(context)
        await edit(context, progress,
                   texts.ALREADY_CACHED.format(label=html.escape(existing.label)))
        return END
    payload: dict[str, Any] = {
        "purpose": "add", "nik": participant.nik, "card": participant.card,
        "name": participant.name, "phone": participant.phone,
        "via": parsed.kind.value, "participant": participant.to_dict(), "evict": None,
    }
    victim = await svc.accounts.eviction_candidate(chat_id)
    if victim is not None:
        payload["evict"] = victim.slot
        _seal(context, chat_id, payload)
        await edit(context, progress, texts.CACHE_FULL.format(
            max_accounts=svc.accounts.max_accounts, label=html.escape(victim.label),
            masked=mask_nik(victim.nik)), keyboards.confirm_send())
        return CONFIRM
    return await _send_code(update, context, payload, progress)


async def _code_pending(context: Context, chat_id: int) -> bool:
    challenge = await services(context).otp.challenge(chat_id)
    return challenge is not None and challenge.consumed_at is None


async def _send_code(update: Update, context: Context, payload: dict[str, Any],
                     message: Message | None) -> int:
    """Issue the OTP for ``payload`` and show where it went."""
    svc = services(context)
    chat_id = chat_id_of(update)
    result = await svc.otp.issue(chat_id, purpose=str(payload["purpose"]),
                                 nik=str(payload["nik"]), phone=str(payload["phone"]),
                                 payload=payload)
    if result.outcome is SendOutcome.SENT:
        if context.chat_data is not None:
            context.chat_data.pop(_PENDING, None)
        text = texts.OTP_SENT.format(phone=result.masked_phone,
                                     masked=mask_nik(str(payload["nik"])),
                                     minutes=max(1, svc.otp.ttl // 60))
        await _show(update, context, message, text, keyboards.otp())
        return ASK_OTP
    if result.outcome is SendOutcome.SMS_FAILED:
        _seal(context, chat_id, payload)
        await _show(update, context, message, texts.SMS_FAILED,
                    keyboards.confirm_send(texts.SEND_CODE_BUTTON))
        return CONFIRM
    _clear(context)
    text = texts.SMS_CAP_PHONE if result.outcome is SendOutcome.CAP_PHONE else texts.SMS_CAP_CHAT
    await _show(update, context, message, text, None)
    return END


async def _show(update: Update, context: Context, message: Message | None, text: str,
                keyboard: Any) -> None:
    if message is not None:
        await edit(context, message, text, keyboard)
    else:
        await send(update, context, text, keyboard)


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
    return await _send_code(update, context, payload, target)


async def press_a_button(update: Update, context: Context) -> int:
    await send(update, context, texts.PRESS_A_BUTTON)
    return CONFIRM


# -- OTP --------------------------------------------------------------------------------

async def receive_code(update: Update, context: Context) -> int:
    """The user typed a code: delete it, verify it atomically, go on or explain."""
    message = update.effective_message
    assert message is not None
    await delete_user_message(update)
    code = parse_otp(message.text or "")
    svc = services(context)
    chat_id = chat_id_of(update)
    if code is None:
        if not await _code_pending(context, chat_id):  # nothing left to type a code for
            _clear(context)
            await send(update, context, texts.OTP_NONE)
            return END
        await send(update, context, texts.OTP_FORMAT)
        return ASK_OTP
    result = await svc.otp.verify(chat_id, code)
    if result.outcome is VerifyOutcome.WRONG:
        await send(update, context, texts.OTP_WRONG.format(left=result.attempts_left))
        return ASK_OTP
    if result.outcome is VerifyOutcome.EXPIRED:
        await send(update, context, texts.OTP_EXPIRED, keyboards.otp())
        return ASK_OTP
    if result.outcome is VerifyOutcome.EXHAUSTED:
        await svc.otp.cancel(chat_id)
        _clear(context)
        await send(update, context, texts.OTP_EXHAUSTED)
        return END
    if result.outcome is not VerifyOutcome.OK or result.payload is None:
        _clear(context)
        await send(update, context, texts.OTP_NONE)
        return END
    if result.payload.get("purpose") == "reverify":
        account = await svc.accounts.reverified(chat_id, str(result.payload["slot"]))
        _clear(context)
        if account is None:
            await svc.otp.cancel(chat_id)
            await send(update, context, texts.VERIFY_SESSION_GONE)
        else:
            await send(update, context,
                       texts.REVERIFIED.format(label=html.escape(account.label)))
        return END
    await send(update, context, texts.OTP_OK_ASK_LABEL.format(max_len=MAX_LABEL),
               keyboards.labels())
    return ASK_LABEL


async def resend(update: Update, context: Context) -> int:
    """Kirim ulang: respects the cooldown (a toast with the seconds left)."""
    query = update.callback_query
    assert query is not None
    result = await services(context).otp.resend(chat_id_of(update))
    if result.outcome is SendOutcome.TOO_EARLY:
        await answer(context, query, texts.RESEND_WAIT.format(seconds=result.wait_seconds))
        return ASK_OTP
    await answer(context, query)
    if result.outcome is SendOutcome.SENT:
        await send(update, context, texts.OTP_RESENT.format(phone=result.masked_phone),
                   keyboards.otp())
        return ASK_OTP
    if result.outcome is SendOutcome.SMS_FAILED:
        await send(update, context, texts.SMS_FAILED_RESEND, keyboards.otp())
        return ASK_OTP
    _clear(context)
    if result.outcome is SendOutcome.NO_CHALLENGE:
        await send(update, context, texts.OTP_NONE)
    else:
        await services(context).otp.cancel(chat_id_of(update))
        await send(update, context, texts.SMS_CAP_PHONE
                   if result.outcome is SendOutcome.CAP_PHONE else texts.SMS_CAP_CHAT)
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
        await drop_keyboard(context, query)
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
        if DIGIT_RUN.search(label) or isinstance(parse_identifier(label), Identifier):
            await delete_user_message(update)
            await send(update, context, texts.LABEL_LOOKS_LIKE_ID)
            return ASK_LABEL
    return await _save(update, context, label)


async def _save(update: Update, context: Context, label: str) -> int:
    svc = services(context)
    chat_id = chat_id_of(update)
    _clear(context)
    payload = await svc.otp.verified_payload(chat_id)
    if payload is None or payload.get("purpose") != "add":
        await send(update, context, texts.VERIFY_SESSION_GONE)
        return END
    participant = Participant.from_dict(payload["participant"])
    new = NewAccount(nik=participant.nik, card=participant.card, name=participant.name,
                     phone=str(payload["phone"]), label=label, status=participant.to_dict(),
                     lookup_kind=str(payload.get("via", IdKind.NIK.value)))
    try:
        outcome = await svc.accounts.add(chat_id, new, evict_slot=payload.get("evict"))
    except DuplicateAccountError:
        await svc.otp.cancel(chat_id)
        existing = await svc.accounts.find_by_nik(chat_id, participant.nik)
        if existing is not None:
            await svc.accounts.switch(chat_id, existing.slot)
            await send(update, context,
                       texts.ALREADY_CACHED.format(label=html.escape(existing.label)))
        return END
    except CacheFullError:
        await svc.otp.cancel(chat_id)
        await send(update, context, texts.CACHE_CHANGED)
        return END
    text = texts.SAVED.format(label=html.escape(label))
    if outcome.evicted is not None:
        text += texts.SAVED_EVICTED.format(label=html.escape(outcome.evicted.label),
                                           masked=mask_nik(outcome.evicted.nik))
    view = StatusView(outcome.account, participant, svc.clock(), fresh=True)
    await send(update, context, text + "\n\n" + render.card(view, detailed=False))
    return END


# -- re-verification of an expired session ----------------------------------------------

async def _start_reverify(update: Update, context: Context, slot: str, label: str,
                          participant: Participant, message: Message | None) -> int:
    intro = texts.REVERIFY_INTRO.format(label=html.escape(label),
                                        days=services(context).accounts.session_days)
    if message is not None:
        await edit(context, message, intro)
    else:
        await send(update, context, intro)
    if participant.phone is None:
        await send(update, context, texts.NO_PHONE.format(masked=mask_nik(participant.nik)))
        return END
    payload = {"purpose": "reverify", "slot": slot, "nik": participant.nik,
               "phone": participant.phone}
    return await _send_code(update, context, payload, None)


async def reverify_account(update: Update, context: Context, slot: str) -> int | None:
    """Called for a tap on an account whose session expired: fresh lookup, then OTP."""
    svc = services(context)
    chat_id = chat_id_of(update)
    account = await svc.accounts.get(chat_id, slot)
    if account is None:
        return None
    if not await svc.otp.allow_lookup(chat_id):
        await send(update, context, texts.LOOKUP_CAP)
        return None
    kind = IdKind.CARD if account.lookup_kind == "card" else IdKind.NIK
    try:
        participant = await lookup(svc.backend, Identifier(
            kind, account.card if kind is IdKind.CARD else account.nik))
    except JknError:
        await send(update, context, texts.BACKEND_DOWN_SHORT)
        return None
    await svc.otp.cancel(chat_id)
    _clear(context)
    return await _start_reverify(update, context, slot, account.label, participant, None)


# -- leaving ----------------------------------------------------------------------------

async def cancel(update: Update, context: Context) -> int:
    """/batal or the Batal button, from any state: nothing in the cache changes."""
    await services(context).otp.cancel(chat_id_of(update))
    _clear(context)
    query = update.callback_query
    if query is not None:
        await answer(context, query)
        await edit_query(context, query, texts.CANCELLED)
    else:
        await send(update, context, texts.CANCELLED)
    return END


async def unexpected(update: Update, context: Context) -> None:
    """Stickers, photos and the like in the middle of the flow."""
    await send(update, context, texts.UNEXPECTED_IN_FLOW)
