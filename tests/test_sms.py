"""SMS senders: console output for the demo, and the HTTP gateway contract."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.sms.base import SmsError, otp_message
from bot.sms.console import ConsoleSender
from bot.sms.http import HttpSender
from tests.botapi_http import serving

TOKEN = "gateway-token-123"


def test_otp_message_holds_the_code_once_names_the_bot_and_warns() -> None:
    text = otp_message("482913", 300)
    assert text.count("482913") == 1
    assert "Asisten KK" in text and "5 menit" in text
    assert "untuk menghubungkan kartu JKN Anda ke Asisten KK di Telegram milik anggota " \
        "keluarga Anda" in text
    assert "HANYA kepada anggota keluarga yang sedang menambahkannya" in text
    assert "Bila tidak ada yang meminta, abaikan SMS ini" in text


async def test_console_sender_masks_the_phone() -> None:
    out = io.StringIO()
    await ConsoleSender(out).send("+6281234567890", "kode 123456")
    assert out.getvalue() == "[SMS ke 0812****7890] kode 123456\n"


class Gateway:
    def __init__(self) -> None:
        self.mode = "ok"
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.mode == "timeout":
            await asyncio.sleep(5)
        if self.mode == "500":
            return web.Response(status=500)
        self.received.append(await request.json())
        return web.json_response({"id": "msg-1"}, status=202)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, str]]:
    fake = Gateway()
    app = web.Application()
    app.router.add_post("/sms", fake.handle)
    async with serving(app) as url:
        yield fake, f"{url}/sms"


async def test_http_sender_posts_json_with_bearer_token(gateway: tuple[Gateway, str]) -> None:
    fake, url = gateway
    sender = HttpSender(url, TOKEN)
    try:
        await sender.send("+6281234567890", "kode 123456")
    finally:
        await sender.aclose()
    assert fake.received == [{"to": "+6281234567890", "message": "kode 123456"}]


@pytest.mark.parametrize(("mode", "maybe_delivered"), [
    ("500", True), ("timeout", True), ("wrong-token", False)])
async def test_http_sender_failures_are_typed(gateway: tuple[Gateway, str], mode: str,
                                              maybe_delivered: bool) -> None:
    """A failure after the request went out (timeout, 5xx) may have been delivered, so it
    still counts against the caps; a refusal (4xx) certainly was not."""
    fake, url = gateway
    fake.mode = mode
    sender = HttpSender(url, "wrong" if mode == "wrong-token" else TOKEN,
                        timeout=httpx.Timeout(0.5))
    try:
        with pytest.raises(SmsError) as failed:
            await sender.send("+6281234567890", "kode")
    finally:
        await sender.aclose()
    assert fake.received == []
    assert failed.value.maybe_delivered is maybe_delivered


async def test_unreachable_gateway_is_a_typed_failure_that_sent_nothing() -> None:
    sender = HttpSender("http://127.0.0.1:9/sms", TOKEN, timeout=httpx.Timeout(1.0))
    try:
        with pytest.raises(SmsError) as failed:
            await sender.send("+6281234567890", "kode")
    finally:
        await sender.aclose()
    assert failed.value.maybe_delivered is False
