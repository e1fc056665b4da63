"""/akun: the cached accounts as buttons; one tap switches, in place.

A tap is the hottest path of the bot: one round trip to the database (the switch and the
listing after it, decrypting only labels and NIKs), one callback answer, one edit."""

from __future__ import annotations

from telegram import CallbackQuery, Message, Update

from bot import texts
from bot.accounts import Brief, SwitchOutcome
from handlers import keyboards
from handlers.common import Context, answer, chat_id_of, edit_query, send, services
from handlers.keyboards import Keyboard
from handlers.status import send_status
from handlers.tambah_kk import reverify_account


def _listing(context: Context, items: list[Brief]) -> tuple[str, Keyboard]:
    if not items:
        return texts.ACCOUNTS_EMPTY, keyboards.accounts([], set())
    accounts = services(context).accounts
    expired = {a.slot for a in items if not accounts.is_fresh(a)}
    text = texts.ACCOUNTS_HEADER.format(count=len(items), max_accounts=accounts.max_accounts)
    if expired:
        text += texts.ACCOUNTS_EXPIRED_NOTE
    return text, keyboards.accounts(items, expired)


async def show_accounts(update: Update, context: Context) -> None:
    items = await services(context).accounts.list_brief(chat_id_of(update))
    text, keyboard = _listing(context, items)
    await send(update, context, text, keyboard)


async def go_accounts(update: Update, context: Context) -> None:
    """👥 Pilih akun offered as a next step: the listing as a new message."""
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    await show_accounts(update, context)


async def switch_account(update: Update, context: Context) -> int | None:
    """A tap on an account button. Checked against this chat's own cache: a forged or
    stale slot changes nothing. An expired session starts re-verification (returns the
    conversation state), anything else leaves the conversation state as it was."""
    query = update.callback_query
    assert query is not None and context.match is not None
    outcome, tapped, items = await services(context).accounts.tap(chat_id_of(update),
                                                                  context.match.group(1))
    if outcome is SwitchOutcome.NOT_FOUND:
        await answer(context, query, texts.ACCOUNT_GONE, alert=True)
        if _carries(query):  # a stale button of a real listing: show the listing as it is
            await _redraw(context, query, items)
        return None
    assert tapped is not None
    if outcome is SwitchOutcome.ALREADY_ACTIVE:
        await answer(context, query, texts.ALREADY_ACTIVE.format(label=tapped.label))
        return None
    if outcome is SwitchOutcome.NEEDS_OTP:
        await answer(context, query)
        return await reverify_account(update, context, tapped.slot)
    await answer(context, query, texts.SWITCHED.format(label=tapped.label))
    await _redraw(context, query, items)
    await send_status(update, context)  # the chosen account's card, not only a toast
    return None


async def _redraw(context: Context, query: CallbackQuery, items: list[Brief]) -> None:
    """Show the listing as it is now, if the tapped message was a listing."""
    if _is_listing(query):
        text, keyboard = _listing(context, items)
        await edit_query(context, query, text, keyboard)


def _has_button(query: CallbackQuery, data: str | None) -> bool:
    """Does the tapped message carry a button with this callback data?"""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    return any(button.callback_data == data
               for row in message.reply_markup.inline_keyboard for button in row)


def _carries(query: CallbackQuery) -> bool:
    """Is the tapped data one of the message's own buttons (not forged)?"""
    return _has_button(query, query.data)


def _is_listing(query: CallbackQuery) -> bool:
    """Was the tapped message an /akun listing (rather than, say, a status card or the
    next steps, which carry ➕ too)? A listing is the message with account buttons."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    return any(keyboards.SWITCH.arg_of(button.callback_data) is not None
               for row in message.reply_markup.inline_keyboard for button in row
               if isinstance(button.callback_data, str))
