"""Builds the PTB Application: transport, defaults, persistence, processor, handlers."""

from __future__ import annotations

from typing import Any

from telegram import BotCommand
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults
from telegram.request import BaseRequest

from bot import texts
from bot.processor import ChatOrderedProcessor
from bot.services import Services
from handlers import jobs, register
from storage.persistence import SqlitePersistence

AnyApp = Application[Any, Any, Any, Any, Any, Any]
#: Edited messages are fetched only so that an identifier typed into an edit is deleted.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


async def _post_init(application: AnyApp) -> None:
    await application.bot.set_my_commands(
        [BotCommand(name, description) for name, description in texts.COMMANDS])
    assert application.job_queue is not None  # the job-queue extra is a dependency
    application.job_queue.run_repeating(jobs.housekeeping, interval=jobs.HOUSEKEEPING_SECONDS,
                                        first=jobs.HOUSEKEEPING_SECONDS, name="housekeeping")


def build_application(services: Services, *, token: str | None = None,
                      request: BaseRequest | None = None,
                      processor: ChatOrderedProcessor | None = None,
                      rate_limiter: bool = True) -> AnyApp:
    """The bot: requests go to ``{TELEGRAM_API_URL}/bot{token}/{method}`` unless an
    in-process ``request`` transport is given (demo, tests, benchmarks)."""
    settings = services.settings
    api = settings.telegram_api_url
    processor = processor or ChatOrderedProcessor()
    builder = (
        ApplicationBuilder()
        .token(token or settings.token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .persistence(SqlitePersistence(services.db))
        .concurrent_updates(processor)
        .post_init(_post_init)
    )
    if rate_limiter:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))  # type: ignore[arg-type]
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    processor.application = application
    application.bot_data["services"] = services
    register(application)
    return application


async def start_application(application: AnyApp) -> None:
    """initialize → post_init → start, as ``run_polling`` does (it is not used here, so
    that the runner, the demo and the tests share one lifecycle)."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()


async def stop_application(application: AnyApp) -> None:
    """Stop fetching, finish the updates in hand, write the persistence, shut down."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()
