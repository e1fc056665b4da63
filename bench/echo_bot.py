"""The baseline: a bare python-telegram-bot echo bot (one MessageHandler, nothing else).

In process the benchmarks build it over the emulator with :func:`build_echo_application`;
as a process (``python bench/echo_bot.py``) it long-polls ``TELEGRAM_API_URL`` with
``TELEGRAM_BOT_TOKEN`` until SIGTERM. Like the real bot it handles up to 256 updates
concurrently and long-polls with a 10 s timeout.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters
from telegram.request import BaseRequest

AnyApp = Application[Any, Any, Any, Any, Any, Any]
CONCURRENT_UPDATES = 256


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await context.bot.send_message(message.chat_id, message.text)


def build_echo_application(token: str, *, request: BaseRequest | None = None,
                           api_url: str | None = None) -> AnyApp:
    builder = ApplicationBuilder().token(token).concurrent_updates(CONCURRENT_UPDATES)
    if api_url is not None:
        builder = builder.base_url(f"{api_url}/bot").base_file_url(f"{api_url}/file/bot")
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return application


def main() -> int:
    application = build_echo_application(os.environ["TELEGRAM_BOT_TOKEN"],
                                         api_url=os.environ["TELEGRAM_API_URL"])
    application.run_polling(allowed_updates=["message"], timeout=10, poll_interval=0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
