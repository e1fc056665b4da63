"""/pengingat: one toggle per account; and the daily round's job and its delivery."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import texts
from bot.reminders import Deliver, Notice
from handlers import keyboards, render
from handlers.common import (
    Context,
    answer,
    chat_id_of,
    edit_query,
    send,
    send_unless_refused,
    services,
)
from handlers.keyboards import Keyboard
from handlers.tambah_kk import reverify_account

_LOGGER = logging.getLogger(__name__)


async def _view(context: Context, chat_id: int) -> tuple[str, Keyboard | None]:
    svc = services(context)
    items = await svc.accounts.list_brief(chat_id)
    if not items:
        return texts.REMINDERS_NO_ACCOUNT, keyboards.add_only()
    text = texts.REMINDERS_HEADER + "\n\n" + (
        texts.REMINDERS_NEXT.format(when=render.when_wib(svc.reminders.next_round()))
        if any(a.remind for a in items) else texts.REMINDERS_NONE_ON)
    expired = {a.slot for a in items if not svc.accounts.is_fresh(a)}
    return text, keyboards.reminders(items, expired)


async def show(update: Update, context: Context) -> None:
    """/pengingat, or 🔔 Pengingat under a status card (a new message either way)."""
    if update.callback_query is not None:
        await answer(context, update.callback_query)
    text, keyboard = await _view(context, chat_id_of(update))
    await send(update, context, text, keyboard)


async def toggle(update: Update, context: Context) -> int | None:
    """A tap on an account: its reminder on or off, checked against the chat's own cache.
    Switching it on for an account whose session ran out (⏳) starts re-verification
    instead (returns the conversation state): reminders show status. Off is always fine."""
    query = update.callback_query
    assert query is not None and context.match is not None
    svc = services(context)
    chat_id = chat_id_of(update)
    slot = context.match.group(1)
    account = next((a for a in await svc.accounts.list_brief(chat_id) if a.slot == slot), None)
    if account is not None and not account.remind and not svc.accounts.is_fresh(account):
        await answer(context, query, texts.REMINDER_NEEDS_REVERIFY)
        return await reverify_account(update, context, slot)
    if account is None or not await svc.accounts.set_remind(chat_id, slot, not account.remind):
        await answer(context, query, texts.ACCOUNT_GONE, alert=True)
    else:
        await answer(context, query, (texts.REMINDER_OFF if account.remind
                                      else texts.REMINDER_ON).format(label=account.label))
    text, keyboard = await _view(context, chat_id)
    await edit_query(context, query, text, keyboard)
    return None


def deliver_with(bot: Bot) -> Deliver:
    """Sends a notice (protected: it shows status). False when Telegram refuses it for
    good (the user blocked the bot, the chat is gone); other failures propagate, since the
    message may have arrived (bot/reminders.py does not send it twice)."""
    async def deliver(notice: Notice) -> bool:
        params: dict[str, Any] = {"chat_id": notice.chat_id, "text": render.reminder(notice),
                                  "parse_mode": ParseMode.HTML, "protect_content": True}
        return await send_unless_refused(bot, params, "reminder")
    return deliver


async def daily_round(context: Context) -> None:
    """The JobQueue job, at REMINDER_TIME every day (and once at start if a round was
    missed while the bot was down)."""
    reminders = services(context).reminders
    try:
        await reminders.run_round(reminders.today(), deliver_with(context.bot))
    except TelegramError as exc:
        _LOGGER.warning("reminder round stopped (%s); the next one picks it up",
                        type(exc).__name__)
