"""Bot API calls that survive Telegram's bad moments: a retrying transport.

:class:`RetryingRequest` wraps python-telegram-bot's transport (HTTPX in production, the
stand-in in tests) and retries transient failures with jittered exponential backoff, a
bounded number of times:

- ``429 Too Many Requests`` (the request was not processed): every method waits the
  ``retry_after`` Telegram names, and every other call waits with it (a global pause).
- A failure before the request left this machine (connection refused, connect or pool
  timeout): every method is retried, nothing can have reached Telegram.
- ``502``, ``503``, ``504`` and other failures after the request was sent (read timeout,
  connection reset, ``500``): methods that are safe to repeat (edits, callback answers,
  deletes, ``getMe``, ``setMyCommands``…) are retried; a repeat that finds the work already
  done ("message is not modified", "query is too old", "message to delete not found") is
  taken as the success it is. ``sendMessage`` is retried after ``502``/``503``/``504``, which
  Telegram's front end returns when it could not hand the request to the Bot API backend,
  but not after a ``500``, a read timeout or a reset, where the message may already be in
  the chat: a duplicate reply is not sent blindly (docs/decisions.md, 19).

``getUpdates`` is passed through untouched: PTB's Updater has its own retry loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot import metrics

_LOGGER = logging.getLogger(__name__)

#: Sending these twice shows the user the same thing twice.
NOT_IDEMPOTENT = frozenset({
    "sendmessage", "sendphoto", "senddocument", "sendcontact", "copymessage",
    "forwardmessage", "sendmediagroup", "sendlocation", "sendsticker",
})
#: Failures after which Telegram's front end did not pass the request on.
GATEWAY = frozenset({502, 503, 504})
#: A repeat of a call that already worked gets one of these; it is the success it was.
_ALREADY_DONE = ("message is not modified", "query is too old", "query id is invalid",
                 "message to delete not found")
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_OK = json.dumps({"ok": True, "result": True}).encode()


def _method(url: str) -> str:
    return url.rpartition("/")[2].lower()


def never_sent(exc: BaseException) -> bool:
    """Did the request certainly not leave this machine (a refused connection, a connect or
    pool timeout)?"""
    cause = exc.__cause__
    if isinstance(cause, _NOT_SENT):
        return True
    return isinstance(exc, TimedOut) and "pool" in str(exc).lower()


def _description(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("description", "")).lower()
    except (ValueError, AttributeError):
        return ""


def _retry_after(payload: bytes) -> float | None:
    try:
        value = json.loads(payload).get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class RetryingRequest(BaseRequest):
    """A transport that retries what is safe to retry (see the module docstring)."""

    def __init__(self, inner: BaseRequest, *, attempts: int = 4, base_delay: float = 0.25,
                 max_delay: float = 4.0, max_retry_after: float = 60.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock
        self._paused_until = 0.0
        self.retries = 0  # how many calls were repeated (tests and benchmarks read it)

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    def _backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to base × 2^attempt, capped."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))

    async def _wait_pause(self) -> None:
        wait = self._paused_until - self._clock()
        if wait > 0:
            await self._sleep(wait)

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None
                         ) -> tuple[int, bytes]:
        api = _method(url)

        async def call() -> tuple[int, bytes]:
            return await self.inner.do_request(url, method, request_data, read_timeout,
                                               write_timeout, connect_timeout, pool_timeout)

        if api == "getupdates":
            return await call()
        repeatable = api not in NOT_IDEMPOTENT
        for attempt in range(1, self.attempts + 1):
            await self._wait_pause()
            last = attempt == self.attempts
            try:
                code, payload = await call()
            except (TimedOut, NetworkError) as exc:
                if last or not (repeatable or never_sent(exc)):
                    if attempt > 1:
                        _LOGGER.warning("Bot API %s failed after %d attempts (%s)", api,
                                        attempt, type(exc).__name__)
                    raise
                _LOGGER.debug("Bot API %s: %s, retrying", api, type(exc).__name__)
            else:
                if code == 429 and not last:
                    told = _retry_after(payload)
                    if told is not None and told <= self.max_retry_after:
                        self._paused_until = max(self._paused_until, self._clock() + told)
                        self.retries += 1
                        metrics.BOT_API_RETRIES.inc()
                        continue
                if code >= 500 and not last and (repeatable or code in GATEWAY):
                    _LOGGER.debug("Bot API %s: HTTP %d, retrying", api, code)
                elif attempt > 1 and repeatable and code == 400 and any(
                        done in _description(payload) for done in _ALREADY_DONE):
                    return 200, _OK
                else:
                    if code >= 500 and attempt > 1:
                        _LOGGER.warning("Bot API %s failed after %d attempts (HTTP %d)", api,
                                        attempt, code)
                    return code, payload
            self.retries += 1
            metrics.BOT_API_RETRIES.inc()
            await self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover
