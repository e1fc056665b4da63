"""The one error handler: log the update id and the exception (redacted by the logging
filter), tell the user something short and kind, never crash, never show internals.

Database trouble gets its own words, on SQLite and PostgreSQL alike (bot/dbtrouble.py):
locked or refused past the retries, or the server unreachable ("sibuk, coba lagi"), or out
of disk ("penyimpanan penuh"). Either way the transaction was rolled back and the
conversation stays where the user last saw it. A PostgreSQL connection lost mid-unit may
have committed, so it gets the plain error text, which does not say "nothing changed"."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import TelegramError

from bot import texts
from bot.dbtrouble import trouble
from bot.operator import Alert
from handlers.common import Context, services, was_answered

_LOGGER = logging.getLogger(__name__)


def reply_for(error: BaseException | None) -> str:
    """What the user reads for an error that reached the handler."""
    kind = trouble(error)
    if kind == "busy":
        return texts.DB_BUSY
    if kind == "full":
        return texts.DISK_FULL
    return texts.ERROR


async def on_error(update: object, context: Context) -> None:
    update_id = update.update_id if isinstance(update, Update) else None
    _LOGGER.error("error while handling update %s: %s", update_id,
                  type(context.error).__name__, exc_info=context.error)
    reply = reply_for(context.error)
    if reply is texts.DISK_FULL:  # also from a job: the operators hear of it
        services(context).alerts.raise_(Alert.DISK_FULL)
    if not isinstance(update, Update):
        return
    if update.callback_query is not None and not was_answered(context, update.callback_query):
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    chat = update.effective_chat
    if chat is not None and chat.type == "private":
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(chat.id, reply)
