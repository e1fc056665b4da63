"""The one error handler: log the update id and the exception (redacted by the logging
filter), tell the user something short and kind, never crash, never show internals."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import TelegramError

from bot import texts
from handlers.common import Context, was_answered

_LOGGER = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    update_id = update.update_id if isinstance(update, Update) else None
    _LOGGER.error("error while handling update %s: %s", update_id,
                  type(context.error).__name__, exc_info=context.error)
    if not isinstance(update, Update):
        return
    if update.callback_query is not None and not was_answered(context, update.callback_query):
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    chat = update.effective_chat
    if chat is not None and chat.type == "private":
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(chat.id, texts.ERROR)
