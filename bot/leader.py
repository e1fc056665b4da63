"""Exactly one of several `python -m bot run` on one PostgreSQL serves (issue 24).

The leader holds a PostgreSQL session-level advisory lock (``pg_try_advisory_lock``) on a
connection of its own, kept idle and in autocommit (never "idle in transaction"). The
server releases such a lock when the session ends, so:

- the leader is SIGKILLed: the kernel closes its socket, the server's backend reads EOF
  at once and ends, the lock is free; a standby trying every ``retry`` seconds (1 s)
  takes over within about a second;
- the leader's host or network dies without closing the socket: the session is set to
  ``tcp_keepalives_idle=3, _interval=1, _count=3`` and ``tcp_user_timeout=5000``, so the
  server drops it about 6 s after the last traffic; the standby takes over then.

Fencing: the leader runs ``SELECT 1`` on its lock connection every ``check`` seconds
(1 s) with a ``check_timeout`` (2 s). When that fails, the leader has lost, or may soon
lose, its lock: the ``on_lost`` callback runs at once (the runner stops serving), which
is within ``check + check_timeout`` = 3 s of the last good answer, before the server can
have given the lock away (6 s). A leader never serves without a live lock connection.

The standbys log once that they are standby; :attr:`Leadership.status` is what the health
endpoint shows: ``starting``, ``standby``, ``leader`` or ``lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Literal

import psycopg
from psycopg.conninfo import make_conninfo

from storage.pg import LEADER_LOCK_KEY

_LOGGER = logging.getLogger(__name__)

#: The advisory lock key: one bot per database ("KK" + "LEAD" in hex).
LOCK_KEY = LEADER_LOCK_KEY
Status = Literal["starting", "standby", "leader", "lost", "stopped"]

#: Client side: notice a dead server within seconds, not the kernel's two hours.
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 3, "keepalives_interval": 1,
                     "keepalives_count": 3, "tcp_user_timeout": 5000, "connect_timeout": 5}
#: Server side, for this session only: drop a silent leader about 6 s after its last word.
SERVER_KEEPALIVES = ("SET tcp_keepalives_idle = 3; SET tcp_keepalives_interval = 1; "
                     "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 5000")


class Leadership:
    """Wait to become the leader, then watch the lock until it is released or lost."""

    def __init__(self, url: str, *, key: int = LOCK_KEY, retry: float = 1.0,
                 check: float = 1.0, check_timeout: float = 2.0,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.url = url
        self.key = key
        self.retry = retry
        self.check = check
        self.check_timeout = check_timeout
        self.on_lost = on_lost
        self.status: Status = "starting"
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._said_standby = False

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conninfo = make_conninfo(self.url, application_name="asisten-kk leader",
                                 **CLIENT_KEEPALIVES)
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            await conn.execute(SERVER_KEEPALIVES)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _try_once(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cur.fetchone()
        return bool(row and row[0])

    async def hold_now(self) -> bool:
        """One try without waiting or watching, for a command that must run while no bot
        serves (``rotate-key``); :meth:`release` gives the lock back."""
        return await self._try_once()

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Become the leader (True), or False when ``stop`` is set first. While another
        instance leads, this one is ``standby`` and says so once in the log."""
        while not stop.is_set():
            try:
                if await asyncio.wait_for(self._try_once(), self.check_timeout + 5):
                    self.status = "leader"
                    _LOGGER.info("this instance is the leader: serving")
                    self._watch = asyncio.create_task(self._watch_lock())
                    return True
                if not self._said_standby:
                    self._said_standby = True
                    _LOGGER.info("another instance is serving; this one is on standby and "
                                 "takes over when it stops")
                self.status = "standby"
            except (psycopg.Error, OSError, TimeoutError) as exc:
                _LOGGER.warning("the leader lock could not be checked (%s); trying again",
                                type(exc).__name__)
                await self._drop_connection()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry)
        return False

    async def _watch_lock(self) -> None:
        """Fencing: the first failed check ends the leadership at once."""
        while self.status == "leader":
            await asyncio.sleep(self.check)
            try:
                assert self._conn is not None
                await asyncio.wait_for(self._conn.execute("SELECT 1"), self.check_timeout)
            except (psycopg.Error, OSError, TimeoutError, AssertionError) as exc:
                if self.status != "leader":
                    return
                self.status = "lost"
                _LOGGER.error("the leader lock connection failed (%s): stopping serving at "
                              "once, another instance may take over", type(exc).__name__)
                if self.on_lost is not None:
                    self.on_lost()
                await self._drop_connection()
                return

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    async def release(self) -> None:
        """Give the lock back (closing the session releases it) and stop watching."""
        was = self.status
        self.status = "stopped"
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self._drop_connection()
        if was == "leader":
            _LOGGER.info("leader lock released")
