"""`python -m bot run`: long polling (or a webhook) until SIGTERM/SIGINT.

At start the bot waits for Telegram: unreachable or answering 5xx, it logs one line and
tries again with backoff (1 s doubling to 30 s), serving as soon as Telegram answers; a
rejected token (401) stops it with one line (exit 2). While it runs, polling errors are
logged as one line a minute at most; the polling keeps retrying. Long polling confirms an
update's offset only once the update is handled and its effects are written
(bot/polling.py): an update in hand at a crash is delivered again.

On a signal the updater stops fetching, the update in hand (and the chat's queued ones)
finish, the persistence is written, the database is closed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.app import (
    ALLOWED_UPDATES,
    AnyApp,
    build_application,
    processor_of,
    start_application,
    stop_application,
)
from bot.config import Settings
from bot.polling import ConfirmedPolling
from bot.services import Services, open_services

_LOGGER = logging.getLogger(__name__)
FIRST_RETRY = 1.0
MAX_RETRY = 30.0


class StartupRefused(Exception):
    """Telegram refused the bot (bad token): ``str(exc)`` is the one line to show."""


async def reach_telegram(application: AnyApp, stop: asyncio.Event, *,
                         first: float = FIRST_RETRY, cap: float = MAX_RETRY) -> bool:
    """getMe until Telegram answers; False if a stop signal came first."""
    delay = first
    while not stop.is_set():
        try:
            await application.bot.initialize()
            return True
        except InvalidToken:
            raise StartupRefused("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized or "
                                 "404 Not Found: is the token, and TELEGRAM_API_URL, right?)"
                                 ) from None
        except NetworkError as exc:  # also timeouts and 5xx answers
            _LOGGER.warning("Telegram is not reachable yet (%s); trying again in %g s",
                            type(exc).__name__, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, cap)
    return False


class _PollingErrors:
    """Updater error callback: one line, at most once a minute, never a traceback."""

    def __init__(self) -> None:
        self._last = float("-inf")
        self.seen = 0

    def __call__(self, error: TelegramError) -> None:
        self.seen += 1
        now = time.monotonic()
        if now - self._last >= 60:
            self._last = now
            _LOGGER.warning("fetching updates failed (%s); retrying", type(error).__name__)


async def run_bot(settings: Settings, services: Services | None = None) -> None:
    services = services or await open_services(settings)
    application = build_application(services)
    polling: ConfirmedPolling | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if not await reach_telegram(application, stop):
            return
        await start_application(application)
        assert application.updater is not None
        if settings.webhook_url:
            assert settings.webhook_secret and settings.webhook_listen and settings.webhook_port
            await application.updater.start_webhook(
                listen=settings.webhook_listen, port=settings.webhook_port,
                url_path="telegram", webhook_url=f"{settings.webhook_url.rstrip('/')}/telegram",
                secret_token=settings.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES)
            _LOGGER.info("Asisten KK is running (webhook on port %s)", settings.webhook_port)
        else:
            polling = ConfirmedPolling(application, processor_of(application),
                                       allowed_updates=ALLOWED_UPDATES, timeout=10,
                                       error_callback=_PollingErrors())
            await polling.start()
            _LOGGER.info("Asisten KK is running (long polling)")
        await stop.wait()
        _LOGGER.info("stopping: finishing the updates in hand")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await stop_application(application, polling)
        await services.close()
        _LOGGER.info("stopped cleanly")
