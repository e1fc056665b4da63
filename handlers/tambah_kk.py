"""The /tambah_kk conversation: identifier → (eviction question) → look-up → OTP → label.

The same conversation also re-verifies a cached account whose session ran out (entered
from a tap in /akun, /status or /pengingat); its state survives restarts through the
persistence. The rules (what is asked before the look-up, what a stranger may learn, the
owner's allowance, the second look-up before saving) and the sealed step are
bot/enrolment.py's; this module maps each outcome to a text, a keyboard and a state.
"""

from __future__ import annotations

import html
from typing import Any

from telegram import Message, Update

from bot import enrolment as en
from bot import texts
from bot.identity import Identifier, IdError, mask_nik, parse_identifier, parse_otp
from bot.otp import RETRY_TTL
from bot.status import Source, StatusView
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
from handlers.kode import (
    ASK_ID,
    ASK_LABEL,
    ASK_OTP,
    CAP_TEXTS,
    CONFIRM,
    END,
    clear,
    code_shown,
    end_flow,
    enrolment,
    receive_code,
)

_SAVE_TEXTS = {en.SaveProblem.NOTHING_VERIFIED: texts.VERIFY_SESSION_GONE,
               en.SaveProblem.PHONE_CHANGED: texts.PHONE_CHANGED,
               en.SaveProblem.CACHE_CHANGED: texts.CACHE_CHANGED}
_LABEL_TEXTS = {en.LabelProblem.EMPTY: texts.LABEL_EMPTY,
                en.LabelProblem.TOO_LONG: texts.LABEL_TOO_LONG,
                en.LabelProblem.LOOKS_LIKE_ID: texts.LABEL_LOOKS_LIKE_ID}


async def forget_steps_of(context: Context, chat_id: int, slot: str) -> None:
    """/hapus_kk removed an account: a sealed step about it goes too."""
    await enrolment(context).forget_steps_of(context.chat_data, chat_id, slot)


async def _show(update: Update, context: Context, message: Message | None, text: str,
                keyboard: Any = None) -> Message:
    """Edit ``message`` (a progress message) or send a new one; returns what shows it."""
    if message is not None:
        await edit(context, message, text, keyboard)
        return message
    return await send(update, context, text, keyboard)


# -- before the code --------------------------------------------------------------------

async def start_add(update: Update, context: Context) -> int:
    """/tambah_kk (optionally with the identifier: ``/tambah_kk 3174…``) or ➕ Tambah KK."""
    if update.callback_query is not None:
        await answer(context, update.callback_query)
    if not await has_consent(update, context):
        await send(update, context, texts.CONSENT_REQUIRED)
        return END
    await services(context).otp.cancel(chat_id_of(update))
    clear(context)
    given = " ".join(context.args or []) if update.callback_query is None else ""
    if given.strip():
        await delete_user_message(update, context)  # whatever the scrubber made of it
        return await _identifier(update, context, given)
    await send(update, context, texts.ASK_ID)
    return ASK_ID


async def _bad_input(update: Update, context: Context, text: str,
                     progress: Message | None = None) -> int:
    """Explain what was wrong (in place of the progress message, if any); the fifth
    strike ends the flow."""
    assert context.chat_data is not None
    last = en.Enrolment.strike(context.chat_data)
    if last:
        text += "\n\n" + texts.ID_TOO_MANY
    else:
        left = en.MAX_BAD_INPUTS - int(context.chat_data.get(en.BAD_KEY, 0))
        text += "\n" + texts.ID_TRIES_LEFT.format(left=left)
    await _show(update, context, progress, text)
    return END if last else ASK_ID


async def receive_id(update: Update, context: Context) -> int:
    """A NIK or card number arrived (the message is deleted in any case)."""
    text = update.effective_message.text or "" if update.effective_message else ""
    if parse_otp(text) is not None and await enrolment(context).code_pending(chat_id_of(update)):
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
    return await _step(update, context, parsed, None)


async def _step(update: Update, context: Context, what: Identifier | en.PendingStep,
                progress: Message | None) -> int:
    """Ask the service for what follows a typed identifier (or a step whose code is to be
    sent) and show it; "looking up" is shown right before the look-up, if there is one."""
    typed = what if isinstance(what, Identifier) else what.identifier
    shown = [progress]

    async def before_lookup() -> None:
        shown[0] = await _show(update, context, shown[0],
                               texts.LOOKING_UP.format(masked=typed.masked))

    chat_id = chat_id_of(update)
    outcome = (await enrolment(context).begin(chat_id, what, before_lookup)
               if isinstance(what, Identifier)
               else await enrolment(context).send_code(chat_id, what, before_lookup))
    return await _outcome(update, context, outcome, typed, shown[0])


async def _outcome(update: Update, context: Context, outcome: en.Begun, typed: Identifier,
                   progress: Message | None) -> int:
    """What the service's answer before the code shows, and the state it leads to."""
    svc = services(context)
    if isinstance(outcome, en.Expired):
        await _show(update, context, progress, texts.REVERIFY_INTRO.format(
            label=html.escape(outcome.account.label), days=svc.accounts.session_days))
        return await _step(update, context, outcome.step, None)
    if isinstance(outcome, en.AskEviction):
        assert context.chat_data is not None
        await svc.enrolment.keep(context.chat_data, chat_id_of(update), outcome.step)
        await send(update, context, texts.EVICT_PICK.format(
            max_accounts=svc.accounts.max_accounts), keyboards.evict_pick(outcome.accounts))
        return CONFIRM
    if isinstance(outcome, en.CannotSend):  # not found, no phone, blocked, SMS failed: alike
        return await _bad_input(update, context,
                                texts.LOOKUP_FAILED.format(masked=typed.masked), progress)
    if isinstance(outcome, en.BackendDown) and outcome.ask_again and outcome.step:
        assert context.chat_data is not None  # sealed briefly for 🔁 Coba lagi
        await svc.enrolment.keep(context.chat_data, chat_id_of(update), outcome.step, ttl=RETRY_TTL)
        await _show(update, context, progress,
                    texts.BACKEND_DOWN.format(minutes=int(RETRY_TTL // 60)), keyboards.retry())
        return CONFIRM
    if isinstance(outcome, en.Gone):
        return await _gone(update, context, progress)
    if isinstance(outcome, en.CodeSent):
        code_shown(context)
        await _show(update, context, progress, texts.OTP_SENT.format(
            tail=outcome.phone_tail, masked=typed.masked, minutes=max(1, svc.otp.ttl // 60),
            days=svc.accounts.session_days), keyboards.otp())
        await send(update, context, texts.CONTACT_PROMPT.format(tail=outcome.phone_tail),
                   keyboards.contact_request())
        return ASK_OTP
    if isinstance(outcome, en.SendFailed) and outcome.cap is None:
        assert context.chat_data is not None
        await svc.enrolment.keep(context.chat_data, chat_id_of(update), outcome.step)
        await _show(update, context, progress, texts.SMS_FAILED,
                    keyboards.confirm_send(texts.SEND_CODE_BUTTON))
        return CONFIRM
    clear(context)
    keyboard = None
    if isinstance(outcome, en.Switched):
        text = texts.ALREADY_CACHED.format(label=html.escape(outcome.account.label))
        keyboard = keyboards.next_steps()
    elif isinstance(outcome, en.Blocked | en.SendFailed):
        text = CAP_TEXTS[outcome.cap] if outcome.cap else texts.LOOKUP_CAP
    elif isinstance(outcome, en.BackendDown):
        text = texts.BACKEND_REJECTED if outcome.rejected else texts.BACKEND_DOWN_SHORT
    else:
        text = texts.REVERIFY_NO_PHONE
    await _show(update, context, progress, text, keyboard)
    return END


async def _gone(update: Update, context: Context, progress: Message | None) -> int:
    """The account a re-verification was for left the chat: nothing was sent."""
    off = end_flow(context)
    if progress is not None and off is None:
        await edit(context, progress, texts.VERIFY_SESSION_GONE)
    else:  # a new message: only a sent one can take the 📱 keyboard away
        await send(update, context, texts.VERIFY_SESSION_GONE, off)
    return END


async def confirm_send(update: Update, context: Context) -> int:
    """Lanjutkan (after the eviction question) or Kirim kode (after an SMS failure)."""
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    step = await enrolment(context).kept(context.chat_data, chat_id_of(update))
    if step is None:
        clear(context)
        await edit_query(context, query, texts.VERIFY_SESSION_GONE)
        return END
    target = query.message if isinstance(query.message, Message) else None
    return await _step(update, context, step, target)


async def choose_eviction(update: Update, context: Context) -> int:
    """The account the fourth card replaces was tapped: checked against the chat's own
    accounts, then the look-up and the code (nothing is evicted before the code)."""
    query = update.callback_query
    assert query is not None and context.match is not None
    chat_id = chat_id_of(update)
    step = await enrolment(context).kept(context.chat_data, chat_id)
    if step is None:
        return await confirm_send(update, context)  # says the verification ended
    chosen = await enrolment(context).choose_eviction(chat_id, step, context.match.group(1))
    if chosen is None:
        await answer(context, query, texts.EVICT_GONE, alert=True)
        return CONFIRM
    await answer(context, query)
    target = query.message if isinstance(query.message, Message) else None
    return await _step(update, context, chosen, target)


async def press_a_button(update: Update, context: Context) -> int:
    await send(update, context, texts.PRESS_A_BUTTON)
    return CONFIRM


# -- label and save ---------------------------------------------------------------------

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
        label, problem = en.clean_label(message.text or "")
        if problem is not None:
            if problem is en.LabelProblem.LOOKS_LIKE_ID:
                await delete_user_message(update, context)
            await send(update, context, _LABEL_TEXTS[problem].format(
                length=len(label), max_len=en.MAX_LABEL))
            return ASK_LABEL
    state = await _save(update, context, label)
    if query is not None and state == END:
        await drop_keyboard(context, query)
    return state


async def _save(update: Update, context: Context, label: str) -> int:
    """Save the verified participant (the service looks them up again first)."""
    svc = services(context)
    outcome = await svc.enrolment.save(chat_id_of(update), label)
    if outcome is en.SaveProblem.BACKEND_DOWN:
        await send(update, context, texts.SAVE_BACKEND_DOWN)
        return ASK_LABEL
    clear(context)
    if isinstance(outcome, en.SaveProblem | en.AlreadyCached):
        if isinstance(outcome, en.SaveProblem):
            await send(update, context, _SAVE_TEXTS[outcome])
        elif outcome.account is not None:
            await send(update, context, texts.ALREADY_CACHED.format(
                label=html.escape(outcome.account.label)), keyboards.next_steps())
        return END
    text = texts.SAVED.format(label=html.escape(label))
    if outcome.evicted is not None:
        text += texts.SAVED_EVICTED.format(label=html.escape(outcome.evicted.label),
                                           masked=mask_nik(outcome.evicted.nik))
        text += texts.CLEANUP_PENDING if svc.db.cleanup_pending else ""
    now = svc.clock()
    view = StatusView(outcome.account, outcome.participant, now, Source.LIVE, now)
    block = render.card(view, backend_hourly=svc.caps.backend_hourly, detailed=False)
    await send(update, context, text + "\n\n" + block, keyboards.next_steps(), protect=True)
    return END


# -- re-verification, and leaving -------------------------------------------------------

async def reverify_account(update: Update, context: Context, slot: str) -> int | None:
    """A tap on an account whose session expired: fresh look-up, then OTP."""
    svc = services(context)
    account = await svc.accounts.get(chat_id_of(update), slot)
    if account is None:
        return None
    await svc.otp.cancel(chat_id_of(update))
    clear(context)
    expired = svc.enrolment.reverify_step(account)
    return await _outcome(update, context, expired, expired.step.identifier, None)


async def cancel(update: Update, context: Context) -> int:
    """/batal or the Batal button, from any state: nothing in the cache changes."""
    await services(context).otp.cancel(chat_id_of(update))
    off = end_flow(context)
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
