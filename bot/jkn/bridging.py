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
import enum
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lzstring import LZString

from bot.jkn.base import (
    JknBadResponse,
    JknCredentialsRejected,
    JknError,
    JknInvalidRequest,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
)

_LOGGER = logging.getLogger(__name__)
_JAKARTA = timedelta(hours=7)
#: An assumption (docs/decisions.md, "What BPJS's answers are assumed to mean"): BPJS
#: publishes no timeout; 15 s to answer, 5 s to connect.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


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
        plain = from_utf16_units(LZString().decompressFromEncodedURIComponent(compressed))
        if not plain:
            raise ValueError("empty after decompression")
        return json.loads(plain)
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError) as exc:
        raise JknBadResponse(f"undecryptable response: {type(exc).__name__}") from None


def to_utf16_units(text: str) -> str:
    """``text`` as the UTF-16 code units that JavaScript's (and Java's) strings hold: a
    character outside the Basic Multilingual Plane becomes its two surrogate halves. This
    is what the reference LZ-string compresses, one 16-bit unit at a time."""
    raw = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(int.from_bytes(raw[i:i + 2], "little")) for i in range(0, len(raw), 2))


def from_utf16_units(units: str | None) -> str | None:
    """The inverse of :func:`to_utf16_units`: LZ-string decompression gives back code units,
    so an emoji arrives as two lone surrogates that no UTF-8 encoder (nor Telegram) accepts.
    Pairs are joined into their character; a half without its partner becomes U+FFFD, a
    visible replacement rather than a crash."""
    if not units:
        return units
    raw = units.encode("utf-16-le", "surrogatepass")
    return raw.decode("utf-16-le", "replace")


def encrypt_response(data: Any, cons_id: str, secret: str, timestamp: str) -> str:
    """The inverse of :func:`decrypt_response`, as BPJS does it (used by test servers):
    JSON with its non-ASCII characters as they are (not ``\\u`` escapes), compressed as
    UTF-16 code units like the reference JavaScript/Java LZ-string."""
    key, iv = _key_iv(cons_id, secret, timestamp)
    compressed = LZString().compressToEncodedURIComponent(
        to_utf16_units(json.dumps(data, ensure_ascii=False)))
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


class Verdict(enum.StrEnum):
    """What an answer from BPJS means for the bot."""

    OK = "ok"  # the decrypted ``response``
    NOT_FOUND = "not-found"  # nobody / nothing there (JknNotFound)
    INVALID = "invalid-request"  # BPJS refused the request itself (JknInvalidRequest)
    CREDENTIALS = "credentials-rejected"  # our consumer id, key or signature (operator)
    UNAVAILABLE = "unavailable"  # down, busy or in maintenance: retry later
    BAD = "bad-response"  # an answer the bot cannot read


class Body(enum.StrEnum):
    """The shape of an answer's body."""

    ENVELOPE = "envelope"  # JSON with ``metaData`` (or ``metadata``) and a usable ``code``
    HTML = "html"  # a gateway or maintenance page
    OTHER = "other"  # empty, plain text, JSON without an envelope


#: ``metaData.message`` of a ``201`` that means "nothing there" (rather than a refusal):
#: "Peserta Tidak Ditemukan", "Data Tidak Ditemukan", "Tidak ada data", "NO_CONTENT".
NOTHING_THERE = re.compile(r"tidak\s+ditemukan|tidak\s+ada|belum\s+ada|not\s*found|"
                           r"no[\s_]*content|kosong", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of :data:`ANSWERS`: an answer matches when every given part matches."""

    verdict: Verdict
    body: Body | None = None  # None: any body
    http: frozenset[int] | range | None = None  # HTTP status; None: any
    code: frozenset[str] | None = None  # metaData.code (envelopes only); None: any
    nothing_there: bool | None = None  # metaData.message matches NOTHING_THERE
    shape: str = ""  # what BPJS sends, for docs/decisions.md and the tests

    def matches(self, http: int, body: Body, code: str | None, message: str) -> bool:
        return ((self.body is None or body is self.body)
                and (self.http is None or http in self.http)
                and (self.code is None or code in self.code)
                and (self.nothing_there is None
                     or bool(NOTHING_THERE.search(message)) == self.nothing_there))


_4XX, _5XX = range(400, 500), range(500, 600)
_CODES_4XX = frozenset(str(n) for n in _4XX)
_CODES_5XX = frozenset(str(n) for n in _5XX)

#: Every answer shape the VClaim and PCare gateways are known to send, first match wins.
#: A shape not listed is a bad response. The envelope's code decides over the HTTP status
#: (BPJS sends "201" and "401" envelopes with HTTP 200, PCare its 412 and 404 envelopes with
#: the same HTTP status), except for a rate limit. docs/decisions.md lists the sources.
ANSWERS: tuple[Rule, ...] = (
    Rule(Verdict.UNAVAILABLE, http=frozenset({429}), shape="HTTP 429, any body: rate limited"),
    Rule(Verdict.CREDENTIALS, http=frozenset({401, 403}), shape="HTTP 401/403, any body"),
    Rule(Verdict.OK, Body.ENVELOPE, frozenset({200}), frozenset({"200"}),
         shape='200 + {"metaData": {"code": "200"}, "response": "<encrypted>"}'),
    Rule(Verdict.NOT_FOUND, Body.ENVELOPE, code=frozenset({"201"}), nothing_there=True,
         shape='"201" + "Peserta Tidak Ditemukan" / "Data Tidak Ditemukan" (VClaim)'),
    Rule(Verdict.INVALID, Body.ENVELOPE, code=frozenset({"201"}), nothing_there=False,
         shape='"201" + any other message: "NIK tidak valid", "Rentang tanggal maksimal '
               '90 hari", … (VClaim refuses the request)'),
    Rule(Verdict.NOT_FOUND, Body.ENVELOPE, code=frozenset({"204", "404"}),
         shape='204 NO_CONTENT / 404 NOT_FOUND envelope (PCare), response null'),
    Rule(Verdict.CREDENTIALS, Body.ENVELOPE, code=frozenset({"401", "403"}),
         shape='"401"/"403" envelope, usually with HTTP 200 ("Unauthorized!")'),
    Rule(Verdict.INVALID, Body.ENVELOPE, code=frozenset({"412"}),
         shape='HTTP 412 + {"metaData": {"code": 412, "message": "PRECONDITION_FAILED"}, '
               '"response": [{"field": …, "message": …}]} (PCare, unencrypted)'),
    Rule(Verdict.UNAVAILABLE, Body.ENVELOPE, code=frozenset({"429"}) | _CODES_5XX,
         shape='"429" or "5xx" envelope, any HTTP status'),
    Rule(Verdict.INVALID, Body.ENVELOPE, code=_CODES_4XX,
         shape='any other "4xx" envelope ("400 Bad Request", …)'),
    Rule(Verdict.BAD, http=frozenset({404}), shape="HTTP 404 without an envelope: the "
         "gateway does not know the path (a wrong base URL, or a path spelling)"),
    Rule(Verdict.UNAVAILABLE, Body.HTML, shape="an HTML page (maintenance, proxy error) "
                                               "with any other status"),
    Rule(Verdict.UNAVAILABLE, http=_5XX, shape="HTTP 5xx without an envelope"),
)


def read_answer(status: int, content_type: str, text: str
                ) -> tuple[Verdict, str | None, Any]:
    """Classify one answer by :data:`ANSWERS`: the verdict, the envelope's code (None
    without an envelope) and its ``response`` (None without one)."""
    body, code, message, response = _parse(content_type, text)
    for rule in ANSWERS:
        if rule.matches(status, body, code, message):
            return rule.verdict, code, response
    return Verdict.BAD, code, response


def _parse(content_type: str, text: str) -> tuple[Body, str | None, str, Any]:
    stripped = text.lstrip()
    if "html" in content_type.lower() or stripped[:1] == "<":
        return Body.HTML, None, "", None
    try:
        data = json.loads(text)
    except ValueError:
        return Body.OTHER, None, "", None
    if not isinstance(data, dict):
        return Body.OTHER, None, "", None
    meta = data.get("metaData", data.get("metadata"))
    if not isinstance(meta, dict):
        return Body.OTHER, None, "", None
    try:
        code = meta_code(meta.get("code"))
    except TypeError:
        return Body.OTHER, None, "", None
    message = meta.get("message")
    return Body.ENVELOPE, code, message if isinstance(message, str) else "", \
        data.get("response")


_ERRORS: dict[Verdict, type[JknError]] = {
    Verdict.NOT_FOUND: JknNotFound, Verdict.INVALID: JknInvalidRequest,
    Verdict.CREDENTIALS: JknCredentialsRejected, Verdict.UNAVAILABLE: JknUnavailable,
    Verdict.BAD: JknBadResponse,
}


class BridgingClient:
    """An async bridging client: signed GETs with timeouts, one retry on connection errors,
    and the answer's envelope turned into the decrypted ``response`` or a typed error.

    Subclasses set :attr:`name` and may add headers with :meth:`_extra_headers`.
    """

    name: str = "bridging"

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

    async def _get(self, path: str, *, older: str | None = None) -> Any:
        """GET a path and return the decrypted ``response`` (None when it is null), or
        raise the error :data:`ANSWERS` names. ``older``: a path to try once instead when
        the gateway does not know ``path`` (HTTP 404)."""
        reply, timestamp = await self._send(path)
        if reply.status_code == 404 and older is not None:
            _LOGGER.info("%s: HTTP 404, trying the older path spelling", self.name)
            reply, timestamp = await self._send(older)
        verdict, code, response = read_answer(reply.status_code,
                                              reply.headers.get("content-type", ""),
                                              reply.text)
        where = f"{self.name}: HTTP {reply.status_code}, metaData {code}"
        if verdict is Verdict.CREDENTIALS:
            _LOGGER.error("%s: BPJS rejected the bridging credentials (HTTP %d, metaData %s);"
                          " check the consumer id, secret key, user key and clock",
                          self.name, reply.status_code, code)
        elif verdict in (Verdict.UNAVAILABLE, Verdict.BAD):
            _LOGGER.warning("%s: %s", where, verdict.value)
        if verdict is not Verdict.OK:
            raise _ERRORS[verdict](f"{where}: {verdict.value}")
        if isinstance(response, str):
            if not response.strip():
                _LOGGER.warning("%s: empty response string", where)
                raise JknBadResponse(f"{where}: empty response string")
            return decrypt_response(response, self._cons_id, self._secret, timestamp)
        return response

    async def aclose(self) -> None:
        await self._client.aclose()
