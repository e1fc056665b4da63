"""POSTs the SMS to a gateway: JSON ``{"to", "message"}`` with a bearer token; 2xx = sent."""

from __future__ import annotations

import httpx

from bot.sms.base import SmsError

DEFAULT_TIMEOUT = httpx.Timeout(10.0)


class HttpSender:
    def __init__(self, url: str, token: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = url
        self._token = token
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, phone_e164: str, message: str) -> None:
        try:
            reply = await self._client.post(
                self._url, json={"to": phone_e164, "message": message},
                headers={"Authorization": f"Bearer {self._token}"})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise SmsError(f"sms gateway: {type(exc).__name__}") from None  # never sent
        except httpx.HTTPError as exc:  # a read timeout, a reset: it may have gone out
            raise SmsError(f"sms gateway: {type(exc).__name__}", maybe_delivered=True) from None
        if not 200 <= reply.status_code < 300:
            raise SmsError(f"sms gateway: HTTP {reply.status_code}",
                           maybe_delivered=reply.status_code >= 500)

    async def aclose(self) -> None:
        await self._client.aclose()
