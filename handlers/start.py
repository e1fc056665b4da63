"""/start with consent, /bantuan, /privasi, the private-chat guard and the fallbacks."""

from __future__ import annotations

import contextlib

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot import texts
from bot.identity import carries_identifier
from bot.scrub import must_scrub, user_message
from handlers import keyboards
from handlers.common import (
    Context,
    answer,
    chat_id_of,
    delete_user_message,
    drop_keyboard,
    send,
    services,
)
from handlers.render import wib


async def private_only(update: Update, context: Context) -> None:
    """Runs before everything: outside private chats answer once and stop; store nothing."""
    chat = update.effective_chat
    if chat is None or update.channel_post is not None \
            or update.edited_channel_post is not None:
        raise ApplicationHandlerStop
    if chat.type == ChatType.PRIVATE:
        return
    message = user_message(update)
    if message is not None and must_scrub(message):  # a contact, a file name, a venue …
        # Best effort: in a group the bot may delete only as an administrator.
        with contextlib.suppress(TelegramError):
            await message.delete()
    if update.edited_message is not None:
        raise ApplicationHandlerStop
    if update.callback_query is not None:
        await answer(context, update.callback_query, texts.PRIVATE_ONLY[:190], alert=True)
    elif update.message is not None:
        await context.bot.send_message(chat.id, texts.PRIVATE_ONLY)
    raise ApplicationHandlerStop


async def scrub(update: Update, context: Context) -> None:
    """Runs next, in every state and for any command: a message (or an edit of one) that
    may carry a NIK, a card number or a code in any of its texts (text, caption, file
    name, venue, poll …: bot/scrub.py), and every shared contact (a phone number), is
    deleted before anything else looks at it. Edits are not handled any further."""
    message = user_message(update)  # the user's, never a bot message
    if message is not None and must_scrub(message):
        await delete_user_message(update, context)
    if update.edited_message is not None:
        raise ApplicationHandlerStop


async def start(update: Update, context: Context) -> None:
    """Greeting, purpose, privacy summary and the consent buttons."""
    svc = services(context)
    intro = texts.START_INTRO.format(max_accounts=svc.settings.kk_max_accounts)
    consented = await svc.consent.consented_at(chat_id_of(update))
    if consented is not None:
        await send(update, context,
                   intro + "\n\n" + texts.CONSENT_ALREADY.format(when=wib(consented)),
                   keyboards.tasks())
        return
    await send(update, context, intro + "\n\n" + texts.CONSENT_QUESTION, keyboards.consent())


async def consent_yes(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    await services(context).consent.record(chat_id_of(update))
    await drop_keyboard(context, query)
    await send(update, context, texts.CONSENT_GIVEN, keyboards.add_only())


async def consent_no(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    await drop_keyboard(context, query)
    await send(update, context, texts.CONSENT_DECLINED)


async def help_command(update: Update, context: Context) -> None:
    await send(update, context, texts.HELP, keyboards.tasks())


async def privacy(update: Update, context: Context) -> None:
    settings = services(context).settings
    retention = (texts.RETENTION_PRIVACY.format(days=settings.retention_days)
                 if settings.retention_days else texts.RETENTION_PRIVACY_OFF)
    await send(update, context, texts.PRIVACY.format(
        max_accounts=settings.kk_max_accounts, session_days=settings.kk_session_days,
        ttl_minutes=max(1, settings.otp_ttl_seconds // 60),
        refresh_minutes=max(1, settings.status_refresh_seconds // 60)) + retention)


async def nothing_to_cancel(update: Update, context: Context) -> None:
    await send(update, context, texts.NOTHING_TO_CANCEL, keyboards.tasks())


async def contact_outside(update: Update, context: Context) -> None:
    """A contact when no code waits: deleted (by the scrubber), and said so."""
    await send(update, context, texts.CONTACT_NOT_NOW, keyboards.REMOVE_REPLY_KEYBOARD)


async def unknown_command(update: Update, context: Context) -> None:
    await send(update, context, texts.UNKNOWN_COMMAND, keyboards.tasks())


async def unknown_message(update: Update, context: Context) -> None:
    """Anything else outside a conversation. Identifier-shaped text is deleted, not echoed."""
    message = update.effective_message
    if message is not None and message.text and carries_identifier(message.text):
        await delete_user_message(update, context)
        await send(update, context, texts.STRAY_IDENTIFIER, keyboards.add_only())
        return
    await send(update, context, texts.UNKNOWN_TEXT, keyboards.tasks())


async def stale_button(update: Update, context: Context) -> None:
    """The last callback handler: any tap nobody else accepted."""
    query = update.callback_query
    assert query is not None
    await answer(context, query, texts.STALE_BUTTON)
