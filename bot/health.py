"""Is the bot working? Telegram reached recently, the database writable, no conflict.

- :class:`Health` keeps when Telegram last answered (a ``getUpdates``, any other Bot API
  answer, or a webhook delivery with the right secret) and whether another instance polls
  the same token (``409 Conflict``). :meth:`Health.check` adds a small write to the
  database (at most every few seconds) and gives ``(ok, reason)``: the one line that
  ``/healthz`` answers with.
- :class:`ObservedRequest` wraps a Bot API transport and tells :class:`Health` (and the
  metrics) about every answer, without changing it.
- :class:`SdNotify` speaks systemd's notification protocol (``READY=1``, ``WATCHDOG=1``,
  ``STOPPING=1``, ``STATUS=…``) over the datagram socket named by ``NOTIFY_SOCKET``;
  without it every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import struct
import time
from collections.abc import Callable
from typing import Any

import psycopg
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot import metrics
from bot.leader import Leadership
from storage.db import Database, immediate

_LOGGER = logging.getLogger(__name__)
#: How long a database check result is reused (a scraper polling fast writes no more).
DB_CHECK_SECONDS = 5.0
DB_CHECK_TIMEOUT = 8.0  # above SQLite's busy timeout (5 s), so its own error is shown
_PROBE_KEY = "health_probe"


def _method(url: str) -> str:
    return url.rpartition("/")[2].lower()


class Health:
    def __init__(self, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.started = clock()
        self.last_contact: float | None = None
        self.conflict = asyncio.Event()
        self.db: Database | None = None
        #: With PostgreSQL: this instance's place (bot/leader.py); None with SQLite.
        self.leadership: Leadership | None = None
        self._db_checked = float("-inf")
        self._db_reason: str | None = None

    def contact(self) -> None:
        """Telegram answered (or delivered an update)."""
        self.last_contact = self.clock()

    def conflicted(self) -> None:
        """getUpdates answered 409: another instance polls this token. Sticky."""
        metrics.CONFLICTS.inc()
        self.conflict.set()

    def telegram_reason(self) -> str | None:
        if self.conflict.is_set():
            return ("409 Conflict: another instance polls the same bot token; this one "
                    "stops")
        if self.last_contact is None:
            return "Telegram not reached yet"
        age = self.clock() - self.last_contact
        if age > self.window:
            return f"Telegram not reached for {int(age)} s (window {int(self.window)} s)"
        return None

    async def db_reason(self) -> str | None:
        """A small write in its own transaction; None when it worked."""
        if self.db is None:
            return "database not open"
        now = self.clock()
        if now - self._db_checked < DB_CHECK_SECONDS:
            return self._db_reason
        stamp = struct.pack(">d", time.time())

        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                             "DO UPDATE SET value = excluded.value", (_PROBE_KEY, stamp))
        try:
            await asyncio.wait_for(self.db.run(unit), DB_CHECK_TIMEOUT)
            reason = None
        except TimeoutError:
            reason = f"database write did not finish within {DB_CHECK_TIMEOUT:g} s"
        except (sqlite3.Error, psycopg.Error, ValueError) as exc:
            reason = f"database not writable ({type(exc).__name__}: {exc})"
        self._db_checked, self._db_reason = self.clock(), reason
        return reason

    async def check(self) -> tuple[bool, str]:
        if self.leadership is not None and self.leadership.status != "leader":
            # a standby is well while it waits; a lost leader is not (it is exiting)
            return (self.leadership.status in ("starting", "standby"),
                    f"{self.leadership.status}: another instance serves from this database"
                    if self.leadership.status == "standby" else self.leadership.status)
        reason = self.telegram_reason()
        metrics.TELEGRAM_UP.set(0 if reason else 1)
        reason = reason or await self.db_reason()
        return (reason is None, reason or "ok")


class ObservedRequest(BaseRequest):
    """Passes every call through; tells :class:`Health` and the metrics what came back."""

    def __init__(self, inner: BaseRequest, health: Health | None) -> None:
        self.inner = inner
        self.health = health

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None
                         ) -> tuple[int, bytes]:
        api = _method(url)
        try:
            code, payload = await self.inner.do_request(
                url, method, request_data, read_timeout, write_timeout, connect_timeout,
                pool_timeout)
        except (TimedOut, NetworkError):
            metrics.bot_api_error(api, None)
            raise
        if code >= 300:
            metrics.bot_api_error(api, code)
        if self.health is not None:
            if code == 409 and api == "getupdates":
                self.health.conflicted()
            elif code < 500 and code not in (401, 404, 409):
                self.health.contact()
        return code, payload


class SdNotify:
    """systemd's sd_notify over NOTIFY_SOCKET (a path, or ``@name`` for an abstract one)."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        #: Seconds between WATCHDOG=1 pings (half the watchdog time), or None.
        self.watchdog_interval: float | None = (
            int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 and ours else None)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        if not self.address:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # never stall the event loop on a full queue
                sock.connect(target)
                sock.send("\n".join(lines).encode())
        except OSError as exc:
            _LOGGER.debug("could not notify systemd (%s)", type(exc).__name__)
            return False
        return True


async def watchdog(notify: SdNotify, health: Health, stop: asyncio.Event) -> None:
    """While the event loop turns and the database takes a write, ping systemd's watchdog
    (a frozen loop or a dead database gets the bot restarted). Telegram being unreachable
    is not a reason: a restart would not bring it back. STATUS= carries the health line."""
    interval = notify.watchdog_interval
    if interval is None:
        return
    while not stop.is_set():
        ok, reason = await health.check()
        if await health.db_reason() is None:
            notify.notify("WATCHDOG=1", f"STATUS={'healthy' if ok else reason}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
