"""/akun: the cached accounts as buttons; one tap switches, in place."""

from __future__ import annotations

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update

from bot import texts
from bot.accounts import SwitchOutcome
from handlers import keyboards
from handlers.common import Context, answer, chat_id_of, edit_query, send, services
from handlers.tambah_kk import reverify_account


async def _listing(context: Context, chat_id: int) -> tuple[str, InlineKeyboardMarkup]:
    svc = services(context)
    items = await svc.accounts.list(chat_id)
    if not items:
        return texts.ACCOUNTS_EMPTY, keyboards.accounts([], set())
    expired = {a.slot for a in items if not svc.accounts.is_fresh(a)}
    text = texts.ACCOUNTS_HEADER.format(count=len(items),
                                        max_accounts=svc.accounts.max_accounts)
    if expired:
        text += texts.ACCOUNTS_EXPIRED_NOTE
    return text, keyboards.accounts(items, expired)


async def show_accounts(update: Update, context: Context) -> None:
    text, keyboard = await _listing(context, chat_id_of(update))
    await send(update, context, text, keyboard)


async def switch_account(update: Update, context: Context) -> int | None:
    """A tap on an account button. Checked against this chat's own cache: a forged or
    stale slot changes nothing. An expired session starts re-verification (returns the
    conversation state), anything else leaves the conversation state as it was."""
    query = update.callback_query
    assert query is not None and context.match is not None
    chat_id = chat_id_of(update)
    outcome, account = await services(context).accounts.switch(chat_id, context.match.group(1))
    if outcome is SwitchOutcome.NOT_FOUND:
        await answer(context, query, texts.ACCOUNT_GONE, alert=True)
        if _is_listing(query):
            text, keyboard = await _listing(context, chat_id)
            await edit_query(context, query, text, keyboard)
        return None
    assert account is not None
    if outcome is SwitchOutcome.ALREADY_ACTIVE:
        await answer(context, query, texts.ALREADY_ACTIVE.format(label=account.label))
        return None
    if outcome is SwitchOutcome.NEEDS_OTP:
        await answer(context, query)
        return await reverify_account(update, context, account.slot)
    await answer(context, query, texts.SWITCHED.format(label=account.label))
    if _is_listing(query):
        text, keyboard = await _listing(context, chat_id)
        await edit_query(context, query, text, keyboard)
    return None


def _is_listing(query: CallbackQuery) -> bool:
    """Was the tapped message an /akun listing (rather than, say, a status card)?"""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    return any(button.callback_data == keyboards.ACCT_ADD
               for row in message.reply_markup.inline_keyboard for button in row)
