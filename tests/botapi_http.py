"""An HTTP front end for the Bot API stand-in, and a fake SMS gateway, on 127.0.0.1.

This is what `python -m bot run` talks to in the tests: the same strict emulator, now
behind `{url}/bot{token}/{method}`, decoding form or JSON bodies as Telegram does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from bot.devtools.emulator import BotApiEmulator, TransportFault


async def start_app(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve an aiohttp app on 127.0.0.1 (a free port unless one is given); returns the
    runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner, url = await start_app(app)
    try:
        yield url
    finally:
        await runner.cleanup()


class HttpBotApi:
    def __init__(self, emulator: BotApiEmulator, sms_token: str = "sms-token") -> None:
        self.emulator = emulator
        self.sms_token = sms_token
        self.sms: list[dict[str, Any]] = []
        self.sms_refuse = 0  # the next N sends get 400 (certainly not delivered)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.emulator.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items()
                               if isinstance(v, str)})
        try:
            status, body = await self.emulator.handle(request.match_info["method"], params)
        except TransportFault:  # no answer at all: the connection just drops
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPInternalServerError from None
        return web.Response(status=status, text=json.dumps(body),
                            content_type="application/json")

    async def _sms(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.sms_token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.sms_refuse:
            self.sms_refuse -= 1
            return web.json_response({"error": "bad request (test)"}, status=400)
        self.sms.append(await request.json())
        return web.json_response({"queued": True}, status=202)

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_post("/sms", self._sms)
        self.runner, self.url = await start_app(app, port)
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
