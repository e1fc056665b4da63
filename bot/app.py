"""Builds the PTB Application: transport, defaults, persistence, processor, handlers."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, Defaults
from telegram.request import BaseRequest, HTTPXRequest

from bot import texts
from bot.health import Health, ObservedRequest
from bot.polling import ConfirmedPolling
from bot.processor import ChatOrderedProcessor
from bot.services import Services
from bot.transport import RetryingRequest
from bot.wib import WIB_ZONE
from handlers import jobs as maintenance
from handlers import operator, register, reminders
from storage.persistence import SqlitePersistence

_LOGGER = logging.getLogger(__name__)
AnyApp = Application[Any, Any, Any, Any, Any, Any]
#: Seconds after start before a reminder round missed while the bot was down is run.
CATCH_UP_DELAY = 10.0
#: Edited messages are fetched only so that an identifier typed into an edit is deleted.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


async def _post_init(application: AnyApp) -> None:
    try:
        await application.bot.set_my_commands(
            [BotCommand(name, description) for name, description in texts.COMMANDS])
    except TelegramError as exc:  # the menu is a convenience: never a reason not to serve
        _LOGGER.warning("could not set the command menu (%s)", type(exc).__name__)
    assert application.job_queue is not None  # the job-queue extra is a dependency
    jobs = application.job_queue
    jobs.run_repeating(maintenance.housekeeping, interval=maintenance.HOUSEKEEPING_SECONDS,
                       first=maintenance.HOUSEKEEPING_SECONDS, name="housekeeping")
    services: Services = application.bot_data["services"]
    rounds = services.reminders
    jobs.run_daily(reminders.daily_round, name="reminders",
                   time=rounds.at.replace(tzinfo=WIB_ZONE))
    if await rounds.missed_today():
        jobs.run_once(reminders.daily_round, CATCH_UP_DELAY, name="reminders-catch-up")
    jobs.run_daily(maintenance.daily, time=maintenance.DAILY_AT, name="daily")
    if await maintenance.daily_missed(services):
        jobs.run_once(maintenance.daily, CATCH_UP_DELAY, name="daily-catch-up")
    jobs.run_repeating(operator.alerts_job, interval=operator.ALERT_SECONDS,
                       first=operator.ALERT_SECONDS, name="alerts")
    jobs.run_once(operator.resume_notices, operator.RESUME_DELAY, name="notices-resume")


def build_application(services: Services, *, token: str | None = None,
                      request: BaseRequest | None = None,
                      processor: ChatOrderedProcessor | None = None,
                      health: Health | None = None) -> AnyApp:
    """The bot: requests go to ``{TELEGRAM_API_URL}/bot{token}/{method}`` unless an
    in-process ``request`` transport is given (demo, tests, benchmarks). Every call but
    getUpdates goes through :class:`RetryingRequest` (bot/transport.py); every answer is
    seen by :class:`ObservedRequest` (metrics, and ``health`` when given)."""
    settings = services.settings
    api = settings.telegram_api_url
    processor = processor or ChatOrderedProcessor()
    # 32 connections, waiting up to 10 s for one: far above what Telegram lets a bot send
    # (about 30 messages a second), and a burst after a quiet spell answers faster than
    # with 256 (httpcore's pool does work per request that grows with its connections,
    # and each new connection is a TLS handshake); docs/decisions.md, 31.
    calls = request or HTTPXRequest(connection_pool_size=32, pool_timeout=10.0)
    updates = request or HTTPXRequest(connection_pool_size=1)
    builder = (
        ApplicationBuilder()
        .token(token or settings.token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .persistence(SqlitePersistence(services.db))
        .concurrent_updates(processor)
        .post_init(_post_init)
        .request(RetryingRequest(ObservedRequest(calls, health)))
        .get_updates_request(ObservedRequest(updates, health))
    )
    application = builder.build()
    processor.application = application
    application.bot_data["services"] = services
    application.bot_data["health"] = health  # the operators' alerts look at it
    register(application)
    return application


def processor_of(application: AnyApp) -> ChatOrderedProcessor:
    """The per-chat processor :func:`build_application` gave ``application``."""
    processor = application.update_processor
    assert isinstance(processor, ChatOrderedProcessor)
    return processor


def handled_log(application: AnyApp) -> SqlitePersistence | None:
    """The persistence, where handled updates are recorded (bot/polling.py skips one that
    Telegram sends again after a crash)."""
    persistence = application.persistence
    return persistence if isinstance(persistence, SqlitePersistence) else None


async def start_application(application: AnyApp) -> None:
    """initialize → post_init → start, as ``run_polling`` does (it is not used here, so
    that the runner, the demo and the tests share one lifecycle)."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()


async def stop_application(application: AnyApp, polling: ConfirmedPolling | None = None
                           ) -> None:
    """Stop fetching, finish the updates in hand, write the persistence, confirm the
    handled updates to Telegram (``polling``), shut down."""
    if polling is not None:
        await polling.stop()
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    if polling is not None:
        await polling.confirm()
    await application.shutdown()
    await application.bot.shutdown()  # when it never got past reaching Telegram
