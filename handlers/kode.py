"""The code step shared by /tambah_kk and re-verification: a typed code, a shared
contact, Kirim ulang. What each attempt leads to is bot/enrolment.py's; here it becomes a
text, a keyboard and the next state of the conversation in handlers/tambah_kk.py."""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import ConversationHandler

from bot import enrolment as en
from bot import texts
from bot.identity import Identifier, contact_phone, parse_identifier, parse_otp
from bot.otp import SendOutcome, VerifyOutcome
from handlers import keyboards
from handlers.common import Context, answer, chat_id_of, delete_user_message, send, services

ASK_ID, CONFIRM, ASK_OTP, ASK_LABEL = range(4)
END = ConversationHandler.END
_CONTACT_KEYBOARD = "contact_keyboard"
CAP_TEXTS = {
    SendOutcome.CAP_CHAT: texts.SMS_CAP_CHAT,
    SendOutcome.CAP_PHONE: texts.SMS_CAP_PHONE,
    SendOutcome.CAP_PARTICIPANT: texts.SMS_CAP_PARTICIPANT,
    SendOutcome.CAP_GLOBAL: texts.SMS_CAP_GLOBAL,
}
_REFUSED_TEXTS = {VerifyOutcome.EXHAUSTED: texts.OTP_EXHAUSTED,
                  VerifyOutcome.LOCKED: texts.OTP_LOCKED}


def enrolment(context: Context) -> en.Enrolment:
    return services(context).enrolment


def clear(context: Context) -> None:
    en.Enrolment.clear(context.chat_data)


def code_shown(context: Context) -> None:
    """The code went out and the 📱 keyboard is shown: the sealed step is done with."""
    if context.chat_data is not None:
        context.chat_data.pop(en.PENDING_KEY, None)
        context.chat_data[_CONTACT_KEYBOARD] = True


# -- the code ---------------------------------------------------------------------------

async def receive_code(update: Update, context: Context) -> int:
    """The user typed a code: delete it, verify it atomically, go on or explain."""
    message = update.effective_message
    assert message is not None
    await delete_user_message(update, context)
    code = parse_otp(message.text or "")
    chat_id = chat_id_of(update)
    if code is not None:
        return await _verified(update, context, await enrolment(context).verify_code(chat_id, code))
    if not await enrolment(context).code_pending(chat_id):  # nothing left to type a code for
        clear(context)
        await send(update, context, texts.OTP_NONE)
        return END
    typed = parse_identifier(message.text or "")
    tail = (await enrolment(context).sent_for(chat_id, typed)
            if isinstance(typed, Identifier) else None)
    if isinstance(typed, Identifier) and tail is not None:  # the same NIK again: no new code
        await send(update, context, texts.OTP_ALREADY_SENT.format(masked=typed.masked,
                                                                  tail=tail))
        return ASK_OTP
    challenge = await services(context).otp.challenge(chat_id)  # the tries left, aloud
    left = services(context).otp.max_attempts - challenge.attempts if challenge else 0
    await send(update, context, texts.OTP_FORMAT.format(left=max(0, left)))
    return ASK_OTP


def contact_keyboard_shown(context: Context) -> bool:
    """Does the chat show this flow's 📱 reply keyboard (a code is awaited)?"""
    return context.chat_data is not None and bool(context.chat_data.get(_CONTACT_KEYBOARD))


def end_flow(context: Context, *, used: bool = False) -> keyboards.Keyboard | None:
    """The flow is over: forget its chat data; the 📱 keyboard's removal, if this flow
    showed it or the user just ``used`` it."""
    off = _keyboard_off(context, used=used)
    clear(context)
    return off


def _keyboard_off(context: Context, *, used: bool = False) -> keyboards.Keyboard | None:
    shown = context.chat_data is not None and context.chat_data.pop(_CONTACT_KEYBOARD, False)
    return keyboards.REMOVE_REPLY_KEYBOARD if shown or used else None


async def _verified(update: Update, context: Context, outcome: en.Verified, *,
                    by_contact: bool = False) -> int:
    """What an attempt at the challenge leads to (a typed code or a shared contact)."""
    refused = outcome.result.outcome if isinstance(outcome, en.Refused) else None
    if refused is VerifyOutcome.WRONG:
        assert isinstance(outcome, en.Refused)
        await send(update, context, texts.OTP_WRONG.format(left=outcome.result.attempts_left))
        return ASK_OTP
    if refused is VerifyOutcome.SUPERSEDED:  # costs no try
        await send(update, context, texts.OTP_SUPERSEDED)
        return ASK_OTP
    if refused is VerifyOutcome.EXPIRED:
        await send(update, context, texts.OTP_EXPIRED, keyboards.otp())
        return ASK_OTP
    done = texts.CONTACT_OK if by_contact else texts.OTP_OK
    if isinstance(outcome, en.AskLabel):
        await send(update, context, done, _keyboard_off(context, used=by_contact))
        await send(update, context, texts.ASK_LABEL.format(max_len=en.MAX_LABEL),
                   keyboards.labels())
        return ASK_LABEL
    off = end_flow(context, used=by_contact)
    if isinstance(outcome, en.Reverified):
        text = done + "\n\n" + texts.REVERIFIED.format(label=html.escape(outcome.account.label))
    elif isinstance(outcome, en.Gone):
        text = texts.VERIFY_SESSION_GONE
    else:
        text = _REFUSED_TEXTS.get(refused or VerifyOutcome.NONE, texts.OTP_NONE)
    await send(update, context, text, off)
    return END


async def receive_contact(update: Update, context: Context) -> int:
    """A shared contact instead of the code: proof only when it is the user's own and its
    number is the phone on file; anything else is a wrong attempt (already deleted)."""
    message = update.effective_message
    assert message is not None and message.contact is not None
    contact, user = message.contact, update.effective_user
    own = contact.user_id is not None and user is not None and contact.user_id == user.id
    own_phone = contact_phone(contact.phone_number) if own else None
    outcome = await enrolment(context).verify_contact(chat_id_of(update), own_phone)
    if isinstance(outcome, en.Refused) and outcome.result.outcome is VerifyOutcome.WRONG:
        await send(update, context, (texts.CONTACT_MISMATCH if own else texts.CONTACT_NOT_OWN)
                   .format(left=outcome.result.attempts_left))
        return ASK_OTP
    return await _verified(update, context, outcome, by_contact=True)


async def contact_elsewhere(update: Update, context: Context) -> int | None:
    """A contact at a step that waits for no code: deleted, and it changes nothing, unless
    a code is in fact pending (the state write lost to a crash, as for a typed code)."""
    if await enrolment(context).code_pending(chat_id_of(update)):
        return await receive_contact(update, context)
    await send(update, context, texts.CONTACT_NOT_NOW, keyboards.REMOVE_REPLY_KEYBOARD)
    return None


async def resend(update: Update, context: Context) -> int:
    """Kirim ulang: respects the cooldown (a toast with the seconds left)."""
    query = update.callback_query
    assert query is not None
    result = await enrolment(context).resend(chat_id_of(update))
    if result.outcome is SendOutcome.TOO_EARLY:
        await answer(context, query, texts.RESEND_WAIT.format(seconds=result.wait_seconds))
        return ASK_OTP
    await answer(context, query)
    if result.outcome in (SendOutcome.SENT, SendOutcome.SMS_FAILED):
        await send(update, context, texts.OTP_RESENT.format(tail=result.phone_tail)
                   if result.outcome is SendOutcome.SENT else texts.SMS_FAILED_RESEND,
                   keyboards.otp())
        return ASK_OTP
    clear(context)
    await send(update, context, CAP_TEXTS.get(result.outcome, texts.OTP_NONE))
    return END
