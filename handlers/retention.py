"""RETENTION_DAYS in the Telegram layer: every update marks its chat active, the warning a
week ahead of the erase, and forgetting an erased chat's in-memory state (bot/retention.py
decides; handlers/jobs.py runs it daily)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.ext import Application, ConversationHandler

from bot import texts
from bot.retention import Warn
from bot.services import Services
from handlers.common import Context, send_unless_refused, services
from handlers.render import long_date

_LOGGER = logging.getLogger(__name__)
AnyApp = Application[Any, Any, Any, Any, Any, Any]


async def touch(update: Update, context: Context) -> None:
    """Any update from a chat (message, command, tap) is activity: its last day is today."""
    chat = update.effective_chat
    if chat is not None:
        await services(context).retention.touch(chat.id)


def warn_with(bot: Bot) -> Warn:
    async def warn(chat_id: int, erase_on: date) -> bool:
        params: dict[str, Any] = {
            "chat_id": chat_id, "parse_mode": ParseMode.HTML,
            "text": texts.RETENTION_WARNING.format(date=long_date(erase_on))}
        return await send_unless_refused(bot, params, "retention warning")
    return warn


def forget(application: AnyApp, chat_id: int) -> None:
    """What the bot holds in memory for an erased chat: its chat_data and its place in
    every conversation (their rows are gone with the erase)."""
    application.drop_chat_data(chat_id)
    for group in application.handlers.values():
        for handler in group:
            if isinstance(handler, ConversationHandler):
                # PTB has no public call to end a conversation from outside one of its
                # callbacks (/hapus_data ends it by returning END); its per-chat state is
                # this mapping (keys per_chat: (chat_id,)), tracked for persistence.
                handler._conversations.pop((chat_id,), None)


async def run(application: AnyApp) -> None:
    """Warn, then erase (bot/retention.py)."""
    svc: Services = application.bot_data["services"]
    await svc.retention.run(warn_with(application.bot),
                            lambda chat_id: forget(application, chat_id),
                            lambda: application.running)
