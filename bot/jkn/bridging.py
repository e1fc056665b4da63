"""The BPJS bridging protocol shared by VClaim and PCare.

Signing: ``X-signature = base64(HMAC-SHA256(secret, consId + "&" + timestamp))`` with
``X-cons-id``, ``X-timestamp`` (Unix seconds) and ``user_key`` beside it.
Responses: ``{"metaData": {"code", "message"}, "response": "<encrypted>"}`` where ``code``
may be a string or a number and the encrypted string is base64 AES-256-CBC (key =
SHA-256(consId + secret + timestamp), IV = its first 16 bytes), PKCS#7 padded, LZ-string
(``compressToEncodedURIComponent``) compressed JSON.

Never logs the secret, the user key, the password, an identifier, a URL or a decrypted
body: only exception type names and HTTP status codes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lzstring import LZString

from bot.jkn.base import (
    JknBadResponse,
    JknCredentialsRejected,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
)

_LOGGER = logging.getLogger(__name__)
_JAKARTA = timedelta(hours=7)
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
CREDENTIALS_CODES = frozenset({"401", "403"})


def sign(cons_id: str, secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{cons_id}&{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _key_iv(cons_id: str, secret: str, timestamp: str) -> tuple[bytes, bytes]:
    key = hashlib.sha256(f"{cons_id}{secret}{timestamp}".encode()).digest()
    return key, key[:16]


def decrypt_response(text: str, cons_id: str, secret: str, timestamp: str) -> Any:
    """Undo the bridging response encryption; raise :class:`JknBadResponse` on any failure."""
    key, iv = _key_iv(cons_id, secret, timestamp)
    try:
        raw = base64.b64decode(text, validate=True)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        compressed = (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
        plain = LZString().decompressFromEncodedURIComponent(compressed)
        if not plain:
            raise ValueError("empty after decompression")
        return json.loads(plain)
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError) as exc:
        raise JknBadResponse(f"undecryptable response: {type(exc).__name__}") from None


def encrypt_response(data: Any, cons_id: str, secret: str, timestamp: str) -> str:
    """The inverse of :func:`decrypt_response`, as BPJS does it (used by test servers)."""
    key, iv = _key_iv(cons_id, secret, timestamp)
    compressed = LZString().compressToEncodedURIComponent(json.dumps(data))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(compressed.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def meta_code(value: Any) -> str:
    """``metaData.code`` as a string, whether BPJS sent ``"200"``, ``200`` or ``200.0``."""
    if isinstance(value, bool):
        raise TypeError("boolean code")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise TypeError("no usable code")


def text_of(node: Any, key: str) -> str:
    """``node[key]`` as text ("" when node is not a dict or the value is null)."""
    if isinstance(node, dict):
        value = node.get(key)
        return "" if value is None else str(value)
    return ""


class BridgingClient:
    """An async bridging client: signed GETs with timeouts, one retry on connection errors,
    and the answer's envelope turned into the decrypted ``response`` or a typed error.

    Subclasses set :attr:`name` and :attr:`not_found_codes` and may add headers with
    :meth:`_extra_headers`.
    """

    name: str = "bridging"
    #: ``metaData.code`` values that mean "nothing there" (raised as :class:`JknNotFound`).
    not_found_codes: ClassVar[frozenset[str]] = frozenset({"201"})

    def __init__(self, base_url: str, cons_id: str, secret: str, user_key: str, *,
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._cons_id = cons_id
        self._secret = secret
        self._user_key = user_key
        self._clock = clock
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport,
                                         headers={"Accept": "application/json"})

    def _extra_headers(self) -> dict[str, str]:
        return {}

    def _headers(self, timestamp: str) -> dict[str, str]:
        return {
            "X-cons-id": self._cons_id,
            "X-timestamp": timestamp,
            "X-signature": sign(self._cons_id, self._secret, timestamp),
            "user_key": self._user_key,
            "Content-Type": "application/json; charset=utf-8",
            **self._extra_headers(),
        }

    def _today(self) -> date:
        """Today in Asia/Jakarta (UTC+7) by the client's clock."""
        return (datetime.fromtimestamp(self._clock(), UTC) + _JAKARTA).date()

    async def _send(self, path: str) -> tuple[httpx.Response, str]:
        for attempt in (1, 2):
            timestamp = str(int(self._clock()))
            try:
                reply = await self._client.get(self._base + path,
                                               headers=self._headers(timestamp))
                return reply, timestamp
            except httpx.TimeoutException:
                raise JknTimeout(f"{self.name}: timeout") from None
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise JknUnavailable(f"{self.name}: {type(exc).__name__}") from None
                _LOGGER.warning("%s: connection error (%s), retrying once",
                                self.name, type(exc).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get(self, path: str) -> Any:
        """GET a path and return the decrypted ``response`` (None when it is null)."""
        reply, timestamp = await self._send(path)
        if reply.status_code in (401, 403):
            _LOGGER.warning("%s: HTTP %d", self.name, reply.status_code)
            raise JknCredentialsRejected(f"{self.name}: HTTP {reply.status_code}")
        if reply.status_code >= 500:
            raise JknUnavailable(f"{self.name}: HTTP {reply.status_code}")
        if reply.status_code != 200:
            raise JknBadResponse(f"{self.name}: HTTP {reply.status_code}")
        try:
            envelope = reply.json()
            code = meta_code(envelope["metaData"]["code"])
        except (ValueError, KeyError, TypeError):
            raise JknBadResponse(f"{self.name}: malformed envelope") from None
        if code in self.not_found_codes:
            raise JknNotFound(f"{self.name}: metaData {code}")
        if code in CREDENTIALS_CODES:
            _LOGGER.warning("%s: credentials rejected (metaData %s)", self.name, code)
            raise JknCredentialsRejected(f"{self.name}: metaData {code}")
        if code != "200":
            raise JknUnavailable(f"{self.name}: metaData {code}")
        body = envelope.get("response")
        if body is None or not isinstance(body, str):
            return body
        return decrypt_response(body, self._cons_id, self._secret, timestamp)

    async def aclose(self) -> None:
        await self._client.aclose()
