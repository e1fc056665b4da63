"""`python -m bot run`: long polling (or a webhook) until SIGTERM/SIGINT.

At start the bot waits for Telegram: unreachable or answering 5xx, it logs one line and
tries again with backoff (1 s doubling to 30 s), serving as soon as Telegram answers; a
rejected token (401) stops it with one line (exit 2). While it runs, polling errors are
logged as one line a minute at most; the polling keeps retrying. Long polling confirms an
update's offset only once the update is handled and its effects are written
(bot/polling.py): an update in hand at a crash is delivered again.

On a signal the updater stops fetching, the update in hand (and the chat's queued ones)
finish, the persistence is written, the database is closed, and the process exits 0.

Operations (docs/operations.md): ``/healthz`` and ``/metrics`` are served beside the
webhook, or on ``HEALTH_LISTEN`` when polling (bot/web.py); under systemd the bot sends
``READY=1``, ``WATCHDOG=1`` and ``STOPPING=1``. When getUpdates answers ``409 Conflict``
(another instance polls the same token) one ERROR line says so, ``/healthz`` stays red and
after ``TELEGRAM_CONFLICT_EXIT_SECONDS`` the process exits with :data:`EXIT_CONFLICT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from bot import __version__
from bot.app import (
    ALLOWED_UPDATES,
    AnyApp,
    build_application,
    handled_log,
    processor_of,
    start_application,
    stop_application,
)
from bot.config import Settings
from bot.health import Health, SdNotify, watchdog
from bot.leader import Leadership
from bot.polling import ConfirmedPolling
from bot.services import Services, open_services
from bot.web import WEBHOOK_PATH, OpsServer

_LOGGER = logging.getLogger(__name__)
FIRST_RETRY = 1.0
MAX_RETRY = 30.0
#: Exit status after a 409 Conflict (another instance polls the same token).
EXIT_CONFLICT = 3
#: A leader that lost its PostgreSQL lock stops serving and exits with this status.
EXIT_LEADER_LOST = 3


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
        if isinstance(error, Conflict):
            return  # said once, as an ERROR, by _on_conflict
        now = time.monotonic()
        if now - self._last >= 60:
            self._last = now
            _LOGGER.warning("fetching updates failed (%s); retrying", type(error).__name__)


def startup_line(settings: Settings) -> str:
    """Version, backend, OTP sender, mode, data directory, key source: no secret."""
    mode = (f"webhook {settings.webhook_url}{WEBHOOK_PATH}" if settings.webhook_url
            else "long polling")
    return (f"Asisten KK {__version__} starting: backend {settings.jkn_backend}, OTP sender "
            f"{settings.otp_sender}, {mode}, data dir {settings.kk_data_dir.resolve()}, "
            f"key from {settings.key_source}")


def key_custody_warning(settings: Settings) -> str | None:
    if settings.kk_master_key:
        return None
    return (f"the master key is the file {settings.master_key_path}, inside the data "
            "directory: a copy of that directory carries the key together with the data. "
            "Keep the key apart from the backups, or give it as KK_MASTER_KEY "
            "(docs/operations.md, key custody)")


async def _on_conflict(health: Health, settings: Settings, stop: asyncio.Event,
                       status: list[int]) -> None:
    await health.conflict.wait()
    wait = settings.telegram_conflict_exit_seconds
    _LOGGER.error("getUpdates answered 409 Conflict: another instance polls the same bot "
                  "token (stop the other one, or use a different token); /healthz stays "
                  "red, exiting with status %d in %d s", EXIT_CONFLICT, wait)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), wait)
    if not stop.is_set():
        status.append(EXIT_CONFLICT)
        stop.set()


async def _start_webhook(application: AnyApp, settings: Settings, server: OpsServer) -> None:
    assert settings.webhook_secret and settings.webhook_listen and settings.webhook_port
    server.listen(settings.webhook_listen, settings.webhook_port)
    await application.bot.set_webhook(
        url=f"{settings.webhook_url and settings.webhook_url.rstrip('/')}{WEBHOOK_PATH}",
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=ALLOWED_UPDATES, max_connections=40)


async def _probe_telegram(application: AnyApp, health: Health, stop: asyncio.Event) -> None:
    """Webhook mode: a quiet bot gets no deliveries, so ask Telegram now and then."""
    while not stop.is_set():
        with contextlib.suppress(TelegramError):
            await application.bot.get_webhook_info()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(1.0, min(30.0, health.window / 3)))


async def run_bot(settings: Settings, services: Services | None = None) -> int:
    """Serve until a signal (0) or a lasting 409 Conflict (:data:`EXIT_CONFLICT`)."""
    health = Health(settings.health_window_seconds)
    # a refused start (key, database) stays one line: these come once the data is open
    services = services or await open_services(settings)
    _LOGGER.info("%s", startup_line(settings))
    warning = key_custody_warning(settings)
    if warning:
        _LOGGER.warning("%s", warning)
    health.db = services.db
    application = build_application(services, health=health)
    polling: ConfirmedPolling | None = None
    webhook = settings.webhook_url is not None
    server = OpsServer(health, webhook={
        "bot": application.bot, "queue": application.update_queue,
        "secret": settings.webhook_secret.get_secret_value() if settings.webhook_secret
        else ""} if webhook else None)
    notify = SdNotify()
    stop = asyncio.Event()
    status: list[int] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    leadership: Leadership | None = None
    if settings.database_url:  # PostgreSQL: one instance serves, the others stand by

        def lost() -> None:
            status.append(EXIT_LEADER_LOST)
            stop.set()
        leadership = Leadership(settings.database_url, on_lost=lost)
        health.leadership = leadership
    try:
        address = settings.health_address
        if not webhook and address is not None:
            try:
                port = server.listen(*address)
                # the port alone: the redactor would take an address for digits to mask
                _LOGGER.info("/healthz and /metrics on port %d (HEALTH_LISTEN)", port)
            except OSError as exc:
                _LOGGER.error("HEALTH_LISTEN: cannot listen on port %d (%s); running "
                              "without /healthz and /metrics", address[1],
                              exc.strerror or type(exc).__name__)
        tasks.append(asyncio.create_task(watchdog(notify, health, stop)))
        if leadership is not None:
            notify.notify("STATUS=standby until the leader lock is free")
            if not await leadership.acquire(stop):
                return 0
        if not await reach_telegram(application, stop):
            return 0
        health.contact()
        await start_application(application)
        assert application.updater is not None
        if webhook:
            await _start_webhook(application, settings, server)
            tasks.append(asyncio.create_task(_probe_telegram(application, health, stop)))
            _LOGGER.info("Asisten KK is running (webhook on port %s)", settings.webhook_port)
        else:
            tasks.append(asyncio.create_task(_on_conflict(health, settings, stop, status)))
            polling = ConfirmedPolling(application, processor_of(application),
                                       allowed_updates=ALLOWED_UPDATES, timeout=10,
                                       error_callback=_PollingErrors(),
                                       handled=handled_log(application))
            await polling.start()
            _LOGGER.info("Asisten KK is running (long polling)")
        notify.notify("READY=1", "STATUS=serving")
        await stop.wait()
        _LOGGER.info("stopping: finishing the updates in hand")
        notify.notify("STOPPING=1")
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.close()
        await stop_application(application, polling)
        await services.close()
        if leadership is not None:
            await leadership.release()
        _LOGGER.info("stopped cleanly")
    return status[0] if status else 0
