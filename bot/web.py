"""The bot's own HTTP listener (tornado, which python-telegram-bot's webhook extra brings):

- ``GET /healthz``: ``200 ok`` or ``503`` with the one-line reason (bot/health.py);
- ``GET /metrics``: Prometheus text format (bot/metrics.py), counts only;
- ``POST /telegram`` (webhook mode only): Telegram's deliveries, accepted only with the
  ``X-Telegram-Bot-Api-Secret-Token`` header equal to ``WEBHOOK_SECRET`` (compared in
  constant time); each accepted delivery counts as Telegram reached.

In webhook mode everything is served on ``WEBHOOK_LISTEN:WEBHOOK_PORT`` (a reverse proxy
should pass on only ``/telegram``); in polling mode ``/healthz`` and ``/metrics`` are on
``HEALTH_LISTEN``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from http import HTTPStatus
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from telegram import Update

from bot import metrics
from bot.health import Health
from storage.db import Database

_LOGGER = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram"


class _Base(tornado.web.RequestHandler):
    def initialize(self, **objects: Any) -> None:
        self.objects = objects

    def log_exception(self, *args: Any) -> None:
        """Tornado would log request details; one short line is enough."""
        _LOGGER.debug("HTTP %s %s failed", self.request.method, self.request.path)


class HealthHandler(_Base):
    async def get(self) -> None:
        health: Health = self.objects["health"]
        ok, reason = await health.check()
        self.set_status(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(reason + "\n")


class MetricsHandler(_Base):
    async def get(self) -> None:
        db: Database | None = self.objects["health"].db
        if db is not None:
            try:
                await metrics.refresh(db)
            except Exception as exc:  # a scrape must still answer
                _LOGGER.debug("metrics: could not count (%s)", type(exc).__name__)
        await self.objects["health"].check()
        self.set_header("Content-Type", metrics.CONTENT_TYPE_LATEST)
        self.finish(metrics.exposition())


class TelegramHandler(_Base):
    """Telegram's webhook deliveries."""

    async def post(self) -> None:
        secret: str = self.objects["secret"]
        given = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        try:
            data = json.loads(self.request.body)
            update = Update.de_json(data, self.objects["bot"])
        except (ValueError, TypeError, KeyError):
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from None
        self.objects["health"].contact()
        if update is not None:
            queue: asyncio.Queue[object] = self.objects["queue"]
            await queue.put(update)
        self.set_status(HTTPStatus.OK)
        self.finish()


class _App(tornado.web.Application):
    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """No access log: it would carry addresses and paths nobody needs."""


class OpsServer:
    """One listener for health, metrics and (in webhook mode) Telegram's deliveries."""

    def __init__(self, health: Health, *, webhook: dict[str, Any] | None = None) -> None:
        shared = {"health": health}
        routes: list[Any] = [(r"/healthz", HealthHandler, shared),
                             (r"/metrics", MetricsHandler, shared)]
        if webhook is not None:
            routes.append((rf"{WEBHOOK_PATH}/?", TelegramHandler, {**shared, **webhook}))
        self.app = _App(routes)
        self.server: tornado.httpserver.HTTPServer | None = None
        self.port: int | None = None

    def listen(self, host: str, port: int) -> int:
        """Start listening; returns the port (useful with 0). Raises OSError."""
        server = tornado.httpserver.HTTPServer(self.app, xheaders=False)
        sockets = tornado.netutil.bind_sockets(port, address=host)
        server.add_sockets(sockets)
        self.server = server
        self.port = sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
            self.server = None


def split_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) into its parts; raises ValueError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("not host:port")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)
