"""Helpers every handler uses: services lookup, sending, safe edits, deletions."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import texts, tghtml
from bot.services import Services

_LOGGER = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def services(context: Context) -> Services:
    svc: Services = context.application.bot_data["services"]
    return svc


def chat_id_of(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id


def with_footer(context: Context, text: str) -> str:
    return text + texts.SANDBOX_FOOTER if services(context).sandbox else text


async def send(update: Update, context: Context, text: str, keyboard: Markup = None, *,
               protect: bool = False) -> Message:
    """Send a new HTML message to the update's chat (sandbox-labelled when it is).
    ``protect``: it shows a name, status, family or history, so it cannot be forwarded or
    saved (``protect_content``)."""
    return await context.bot.send_message(chat_id_of(update), with_footer(context, text),
                                          reply_markup=keyboard, protect_content=protect)


def _unchanged(message: Message | Any, body: str, keyboard: InlineKeyboardMarkup | None
               ) -> bool:
    """Would editing ``message`` to ``body`` and ``keyboard`` change nothing it shows?"""
    if not isinstance(message, Message) or message.text is None:
        return False
    return message.text == tghtml.plain(body) and message.reply_markup == keyboard


async def edit(context: Context, message: Message | Any, text: str,
               keyboard: InlineKeyboardMarkup | None = None, *, protect: bool = False) -> None:
    """Edit a bot message in place. Content identical to what it shows is not sent at all;
    a vanished message, or an unprotected one that would now show protected content, gets
    a fresh message instead."""
    body = with_footer(context, text)
    if _unchanged(message, body, keyboard):
        return
    if protect and not getattr(message, "has_protected_content", False):
        await context.bot.send_message(message.chat_id, body, reply_markup=keyboard,
                                       protect_content=True)
        return
    try:
        await context.bot.edit_message_text(body, chat_id=message.chat_id,
                                            message_id=message.message_id,
                                            reply_markup=keyboard)
    except BadRequest as exc:
        reason = str(exc).lower()
        if "not modified" in reason:
            return
        if "message to edit not found" in reason or "can't be edited" in reason:
            await context.bot.send_message(message.chat_id, body, reply_markup=keyboard,
                                           protect_content=protect)
            return
        raise


async def edit_query(context: Context, query: CallbackQuery, text: str,
                     keyboard: InlineKeyboardMarkup | None = None, *,
                     protect: bool = False) -> None:
    if query.message is None:
        await context.bot.send_message(query.from_user.id, with_footer(context, text),
                                       reply_markup=keyboard, protect_content=protect)
        return
    await edit(context, query.message, text, keyboard, protect=protect)


async def drop_keyboard(context: Context, query: CallbackQuery) -> None:
    """Remove the buttons of the tapped message (best effort)."""
    message = query.message
    if message is None or not isinstance(message, Message) or message.reply_markup is None:
        return
    with contextlib.suppress(BadRequest):
        await context.bot.edit_message_reply_markup(message.chat_id, message.message_id,
                                                    reply_markup=None)


_DELETED = "deleted_message"


async def delete_user_message(update: Update, context: Context) -> None:
    """Delete the user's message (it may carry a NIK, card number or OTP); never fatal, and
    never twice (the scrubber and a handler may both ask for the same message)."""
    message = update.message or update.edited_message  # the user's, never a bot message
    if message is None:
        return
    marker = (message.chat_id, message.message_id)
    if context.user_data is not None:
        if context.user_data.get(_DELETED) == marker:
            return
        context.user_data[_DELETED] = marker
    try:
        await message.delete()
    except TelegramError as exc:
        _LOGGER.warning("could not delete a sensitive user message: %s", type(exc).__name__)


_ANSWERED = "answered_query"


async def answer(context: Context, query: CallbackQuery, text: str | None = None, *,
                 alert: bool = False) -> None:
    """Answer a callback query, remembering that it was answered, so that the error
    handler never answers it a second time (Telegram refuses that)."""
    await query.answer(text, show_alert=alert)
    if context.user_data is not None:
        context.user_data[_ANSWERED] = query.id


def was_answered(context: Context, query: CallbackQuery) -> bool:
    return context.user_data is not None and context.user_data.get(_ANSWERED) == query.id


async def has_consent(update: Update, context: Context) -> bool:
    return await services(context).db.consented_at(chat_id_of(update)) is not None
