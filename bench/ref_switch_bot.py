"""The reference: a minimal account-switch bot in plain python-telegram-bot.

No encryption, no OTP, no persistence, no retrying transport. ``/akun`` lists the chat's
three accounts as buttons; a tap on ``acct:switch:<slot>`` does one SQLite write (an UPDATE
of the chat's active slot, through aiosqlite), answers the query and redraws the keyboard
with edit_message_text. The database (``REF_DB``) is created and filled by the benchmark with
:func:`populate` before the bot starts.

Updates are scheduled by the bot's own :class:`bot.processor.ChatOrderedProcessor` (256
at once across chats, in order within a chat), so that the comparison with the real bot is
about the work per tap, not scheduling: with PTB's plain ``concurrent_updates`` two taps
of one chat race, and a third of the edits fail with "message is not modified".
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterable
from typing import Any

import aiosqlite
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from bot.processor import ChatOrderedProcessor
from handlers.keyboards import SWITCH

AnyApp = Application[Any, Any, Any, Any, Any, Any]
ACTIVE_MARK = "📌 "  # as the real bot marks the chosen account (handlers/keyboards.py)
SCHEMA = """
CREATE TABLE IF NOT EXISTS ref_accounts (
    chat_id INTEGER NOT NULL, slot TEXT NOT NULL, label TEXT NOT NULL,
    PRIMARY KEY (chat_id, slot));
CREATE TABLE IF NOT EXISTS ref_active (chat_id INTEGER PRIMARY KEY, slot TEXT NOT NULL);
"""


def populate(path: str, chats: Iterable[int], labels: tuple[str, ...]) -> None:
    """Each chat: one account per label (slots ``s<chat>x<i>``), the last one active."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        for chat_id in chats:
            slots = [f"s{chat_id}x{i}" for i in range(len(labels))]
            conn.executemany("INSERT INTO ref_accounts VALUES (?, ?, ?)",
                             [(chat_id, slot, label) for slot, label in zip(slots, labels,
                                                                             strict=True)])
            conn.execute("INSERT INTO ref_active VALUES (?, ?)", (chat_id, slots[-1]))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _db(context: ContextTypes.DEFAULT_TYPE) -> aiosqlite.Connection:
    conn: aiosqlite.Connection = context.application.bot_data["db"]
    return conn


def _keyboard(rows: list[tuple[str, str]], active: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [InlineKeyboardButton((ACTIVE_MARK if slot == active else "") + label,
                              callback_data=SWITCH.data(slot))] for slot, label in rows])


async def show(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat = update.effective_chat
    assert chat is not None
    async with _db(context).execute(
            "SELECT slot, label FROM ref_accounts WHERE chat_id = ? ORDER BY rowid",
            (chat.id,)) as cur:
        rows = [(str(slot), str(label)) for slot, label in await cur.fetchall()]
    async with _db(context).execute("SELECT slot FROM ref_active WHERE chat_id = ?",
                                    (chat.id,)) as cur:
        row = await cur.fetchone()
    active = str(row[0]) if row else ""
    await context.bot.send_message(chat.id, "Akun Anda", reply_markup=_keyboard(rows, active))


async def switch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    message = query.message
    assert isinstance(message, Message) and message.reply_markup is not None
    slot = SWITCH.arg_of(query.data) or ""
    await _db(context).execute("UPDATE ref_active SET slot = ? WHERE chat_id = ?",
                               (slot, message.chat_id))
    rows = [(SWITCH.arg_of(str(button.callback_data)) or "",
             button.text.removeprefix(ACTIVE_MARK))
            for row in message.reply_markup.inline_keyboard for button in row]
    label = next(label for row_slot, label in rows if row_slot == slot)
    await query.answer(f"Beralih ke «{label}»")
    try:
        await query.edit_message_text(f"Akun aktif: {label}",
                                      reply_markup=_keyboard(rows, slot))
    except BadRequest as exc:  # a tap on the account that is already active
        if "not modified" not in str(exc):
            raise


async def _open(application: AnyApp) -> None:
    conn = await aiosqlite.connect(os.environ["REF_DB"], isolation_level=None)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    application.bot_data["db"] = conn


async def _close(application: AnyApp) -> None:
    conn = application.bot_data.pop("db", None)
    if conn is not None:
        await conn.close()


def build_reference_application(token: str, api_url: str) -> AnyApp:
    application = (ApplicationBuilder().token(token)
                   .base_url(f"{api_url}/bot").base_file_url(f"{api_url}/file/bot")
                   .concurrent_updates(ChatOrderedProcessor())
                   .post_init(_open).post_shutdown(_close).build())
    application.add_handler(CommandHandler("akun", show))
    application.add_handler(CallbackQueryHandler(switch, pattern=SWITCH.pattern))
    return application


def main() -> int:
    application = build_reference_application(os.environ["TELEGRAM_BOT_TOKEN"],
                                               os.environ["TELEGRAM_API_URL"])
    application.run_polling(allowed_updates=["message", "callback_query"], timeout=10,
                            poll_interval=0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
