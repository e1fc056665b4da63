"""Helpers every handler uses: services lookup, sending, safe edits, deletions."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import OrderedDict
from typing import Any

from telegram import Bot, CallbackQuery, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError
from telegram.ext import ContextTypes
from telegram.warnings import PTBUserWarning

from bot import texts
from bot.services import Services
from bot.transport import never_sent
from handlers.keyboards import Keyboard

_LOGGER = logging.getLogger(__name__)

# Sending and editing through do_api_request (see send and edit) is deliberate; PTB would
# warn on each call.
warnings.filterwarnings("ignore", message="Please use 'Bot.(send_message|edit_message_text)'",
                        category=PTBUserWarning)

Context = ContextTypes.DEFAULT_TYPE
Markup = Keyboard | None


async def send_unless_refused(bot: Bot, params: dict[str, Any], what: str) -> bool:
    """A message from a job (no update to answer): True when sent; False when Telegram
    refused it for good (the user blocked the bot, the chat is gone) or it never left;
    other failures propagate, since the message may have arrived (the caller keeps its
    claim and does not send it twice)."""
    try:
        await bot.do_api_request("send_message", api_kwargs=params)
    except (Forbidden, BadRequest) as exc:
        _LOGGER.info("%s refused by Telegram (%s)", what, type(exc).__name__)
        return False
    except NetworkError as exc:
        if never_sent(exc):
            return False
        raise
    return True


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
    return await _send_new(context, chat_id_of(update), with_footer(context, text), keyboard,
                           protect)


async def _send_new(context: Context, chat_id: int, body: str, keyboard: Markup,
                    protect: bool) -> Message:
    params: dict[str, Any] = {"chat_id": chat_id, "text": body, "parse_mode": ParseMode.HTML}
    if keyboard is not None:
        params["reply_markup"] = keyboard
    if protect:
        params["protect_content"] = True
    # do_api_request takes the keyboard as the Bot API's JSON (handlers/keyboards.py)
    sent: Message = await context.bot.do_api_request("send_message", api_kwargs=params,
                                                     return_type=Message)
    _remember(context, chat_id, sent.message_id, body, keyboard)
    return sent


#: What each bot message shows, as this process last sent it: (chat, message) → (text,
#: keyboard). The copy of a message inside a callback query is as old as the tap, and two
#: taps in flight carry the same old copy, so only this record can tell that an edit would
#: change nothing. In memory (bot_data is not persisted); after a restart the edit is
#: simply sent, and Telegram's "not modified" is tolerated.
_SHOWN = "shown"
MAX_SHOWN = 20_000


def _shown(context: Context) -> OrderedDict[tuple[int, int], tuple[str, Any]]:
    registry: OrderedDict[tuple[int, int], tuple[str, Any]] = \
        context.application.bot_data.setdefault(_SHOWN, OrderedDict())
    return registry


def _bounded_put(registry: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Put ``key`` last in an in-memory registry, forgetting the oldest past ``limit``."""
    registry[key] = value
    registry.move_to_end(key)
    while len(registry) > limit:
        registry.popitem(last=False)


def _remember(context: Context, chat_id: int, message_id: int, body: str, keyboard: Any
              ) -> None:
    _bounded_put(_shown(context), (chat_id, message_id), (body, keyboard), MAX_SHOWN)


def _unchanged(context: Context, message: Message | Any, body: str,
               keyboard: Markup) -> bool:
    """Would editing ``message`` to ``body`` and ``keyboard`` change nothing it shows?"""
    known = _shown(context).get((message.chat_id, message.message_id))
    return known is not None and known == (body, keyboard)


async def edit(context: Context, message: Message | Any, text: str,
               keyboard: Markup = None, *, protect: bool = False) -> None:
    """Edit a bot message in place. Content identical to what it shows is not sent at all;
    a vanished message, or an unprotected one that would now show protected content, gets
    a fresh message instead."""
    body = with_footer(context, text)
    if _unchanged(context, message, body, keyboard):
        return
    if protect and not getattr(message, "has_protected_content", False):
        await _send_new(context, message.chat_id, body, keyboard, True)
        return
    try:
        # do_api_request: the edited message Telegram returns is not parsed into a Message
        # (nothing here reads it, and parsing it cost a third of a tap; decisions.md 24).
        params: dict[str, Any] = {"chat_id": message.chat_id, "message_id": message.message_id,
                                  "text": body, "parse_mode": ParseMode.HTML}
        if keyboard is not None:
            params["reply_markup"] = keyboard
        await context.bot.do_api_request("edit_message_text", api_kwargs=params)
    except BadRequest as exc:
        reason = str(exc).lower()
        if "message to edit not found" in reason or "can't be edited" in reason:
            await _send_new(context, message.chat_id, body, keyboard, protect)
            return
        if "not modified" not in reason:
            raise
    _remember(context, message.chat_id, message.message_id, body, keyboard)


async def edit_query(context: Context, query: CallbackQuery, text: str,
                     keyboard: Markup = None, *,
                     protect: bool = False) -> None:
    if query.message is None:
        await _send_new(context, query.from_user.id, with_footer(context, text), keyboard,
                        protect)
        return
    await edit(context, query.message, text, keyboard, protect=protect)


async def drop_keyboard(context: Context, query: CallbackQuery) -> None:
    """Remove the buttons of the tapped message (best effort)."""
    message = query.message
    if message is None or not isinstance(message, Message) or message.reply_markup is None:
        return
    _shown(context).pop((message.chat_id, message.message_id), None)
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


_ANSWERED = "answered_queries"
_MAX_ANSWERED = 10_000


async def answer(context: Context, query: CallbackQuery, text: str | None = None, *,
                 alert: bool = False) -> None:
    """Answer a callback query, remembering that it was answered, so that the error
    handler never answers it a second time (Telegram refuses that). The memory is the
    bot's in-memory bot_data, which is not persisted."""
    await query.answer(text, show_alert=alert)
    _bounded_put(context.bot_data.setdefault(_ANSWERED, OrderedDict()), query.id, None,
                 _MAX_ANSWERED)


def was_answered(context: Context, query: CallbackQuery) -> bool:
    return query.id in context.bot_data.get(_ANSWERED, ())


async def has_consent(update: Update, context: Context) -> bool:
    return await services(context).consent.consented_at(chat_id_of(update)) is not None
