"""`python -m bot run`: long polling (or a webhook) until SIGTERM/SIGINT.

On a signal the updater stops fetching, the update in hand (and the chat's queued ones)
finish, the persistence is written, the database is closed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.app import ALLOWED_UPDATES, build_application, start_application, stop_application
from bot.config import Settings
from bot.services import Services, open_services

_LOGGER = logging.getLogger(__name__)


async def run_bot(settings: Settings, services: Services | None = None) -> None:
    services = services or await open_services(settings)
    application = build_application(services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
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
            await application.updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, timeout=10)
            _LOGGER.info("Asisten KK is running (long polling)")
        await stop.wait()
        _LOGGER.info("stopping: finishing the updates in hand")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await stop_application(application)
        await services.close()
        _LOGGER.info("stopped cleanly")
