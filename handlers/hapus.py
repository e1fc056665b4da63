"""/hapus_kk (one account) and /hapus_data (everything of the chat), both confirmed."""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import ConversationHandler

from bot import metrics, texts
from bot.identity import mask_nik
from handlers import keyboards
from handlers.common import Context, answer, chat_id_of, drop_keyboard, edit_query, send, services
from handlers.kode import contact_keyboard_shown
from handlers.tambah_kk import forget_steps_of


async def remove_start(update: Update, context: Context) -> None:
    """/hapus_kk or 🗑 Hapus: pick the account to remove."""
    query = update.callback_query
    if query is not None:
        await answer(context, query)
    items = await services(context).accounts.list(chat_id_of(update))
    if not items:
        text, keyboard = texts.ACCOUNTS_EMPTY, None
    else:
        text, keyboard = texts.REMOVE_PICK, keyboards.remove_pick(items)
    if query is not None:
        await edit_query(context, query, text, keyboard)
    else:
        await send(update, context, text, keyboard)


async def remove_pick(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and context.match is not None
    account = await services(context).accounts.get(chat_id_of(update), context.match.group(1))
    if account is None:
        await answer(context, query, texts.ACCOUNT_GONE, alert=True)
        return
    await answer(context, query)
    await edit_query(context, query, texts.REMOVE_CONFIRM.format(
        label=html.escape(account.label), masked=mask_nik(account.nik)),
        keyboards.remove_confirm(account))


async def remove_yes(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and context.match is not None
    svc = services(context)
    chat_id = chat_id_of(update)
    removed = await svc.accounts.remove(chat_id, context.match.group(1))
    if removed is None:
        await answer(context, query, texts.ACCOUNT_GONE, alert=True)
        return
    await svc.enrolment.forget_account(chat_id, removed.slot)  # a re-verification of it
    await forget_steps_of(context, chat_id, removed.slot)  # and a sealed step about it
    await answer(context, query)
    pending = texts.CLEANUP_PENDING if svc.db.cleanup_pending else ""
    await edit_query(context, query,
                     texts.REMOVED.format(label=html.escape(removed.label)) + pending)


async def remove_no(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    await edit_query(context, query, texts.REMOVE_CANCELLED)


async def erase_start(update: Update, context: Context) -> None:
    count = len(await services(context).accounts.list(chat_id_of(update)))
    await send(update, context, texts.ERASE_CONFIRM.format(count=count), keyboards.erase())


async def erase_yes(update: Update, context: Context) -> int:
    """Erase every row of the chat in one transaction, and its in-memory state too.
    Also registered as a fallback of each conversation, so it ends them (returns END)."""
    query = update.callback_query
    assert query is not None
    chat_id = chat_id_of(update)
    await answer(context, query)
    keyboard_shown = contact_keyboard_shown(context)  # an erase in the middle of a code
    clean = await services(context).db.erase_chat(chat_id)
    metrics.ERASES.labels("chat").inc()
    if context.chat_data is not None:
        context.chat_data.clear()
    context.application.drop_chat_data(chat_id)
    if keyboard_shown:  # only a new message can take the 📱 keyboard away
        await drop_keyboard(context, query)
        await send(update, context, texts.ERASED + ("" if clean else texts.CLEANUP_PENDING),
                   keyboards.REMOVE_REPLY_KEYBOARD)
        return ConversationHandler.END
    await edit_query(context, query, texts.ERASED + ("" if clean else texts.CLEANUP_PENDING))
    return ConversationHandler.END


async def erase_no(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    await edit_query(context, query, texts.ERASE_CANCELLED)
