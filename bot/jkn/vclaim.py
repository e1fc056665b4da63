"""The BPJS VClaim bridging client (``JKN_BACKEND=vclaim``).

Signing: ``X-signature = base64(HMAC-SHA256(secret, consId + "&" + timestamp))``.
Responses: ``{"metaData": {"code", "message"}, "response": "<encrypted>"}`` where the
encrypted string is base64 AES-256-CBC (key = SHA-256(consId + secret + timestamp),
IV = its first 16 bytes), PKCS#7 padded, LZ-string compressed JSON.
Never logs the secret, the user key, an identifier or a decrypted body.
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
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lzstring import LZString

from bot.identity import Identifier, IdKind, normalise_phone
from bot.jkn.base import (
    JknBadResponse,
    JknCredentialsRejected,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
    Participant,
)

_LOGGER = logging.getLogger(__name__)
_JAKARTA = timedelta(hours=7)
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def sign(cons_id: str, secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{cons_id}&{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _key_iv(cons_id: str, secret: str, timestamp: str) -> tuple[bytes, bytes]:
    key = hashlib.sha256(f"{cons_id}{secret}{timestamp}".encode()).digest()
    return key, key[:16]


def decrypt_response(text: str, cons_id: str, secret: str, timestamp: str) -> Any:
    """Undo the VClaim response encryption; raise :class:`JknBadResponse` on any failure."""
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


def _text(node: Any, key: str) -> str:
    if isinstance(node, dict):
        value = node.get(key)
        return "" if value is None else str(value)
    return ""


def participant_from_peserta(peserta: dict[str, Any]) -> Participant:
    """Map a VClaim ``peserta`` object to the bot's model."""
    try:
        status = peserta.get("statusPeserta") or {}
        code = _text(status, "kode")
        phone_raw = _text(peserta.get("mr"), "noTelepon")
        age_text = _text(peserta.get("umur"), "umurSekarang")
        digits = "".join(ch for ch in age_text.split(" ")[0] if ch.isascii() and ch.isdigit())
        return Participant(
            name=str(peserta["nama"]), nik=str(peserta["nik"]), card=str(peserta["noKartu"]),
            sex=str(peserta.get("sex") or ""), birth_date=str(peserta.get("tglLahir") or ""),
            age=int(digits) if digits else None, status_code=code,
            status_text=_text(status, "keterangan") or "-", active=code == "0",
            type_text=_text(peserta.get("jenisPeserta"), "keterangan") or "-",
            class_text=_text(peserta.get("hakKelas"), "keterangan") or "-",
            fktp_code=_text(peserta.get("provUmum"), "kdProvider"),
            fktp_name=_text(peserta.get("provUmum"), "nmProvider") or "-",
            tmt=peserta.get("tglTMT"), tat=peserta.get("tglTAT"),
            phone=normalise_phone(phone_raw) if phone_raw else None,
            unpaid_months=int(peserta.get("tunggakan") or 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JknBadResponse(f"malformed peserta: {type(exc).__name__}") from None


class VClaimBackend:
    """Async VClaim client with timeouts and one retry on connection errors."""

    name = "vclaim"

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

    def _headers(self, timestamp: str) -> dict[str, str]:
        return {
            "X-cons-id": self._cons_id,
            "X-timestamp": timestamp,
            "X-signature": sign(self._cons_id, self._secret, timestamp),
            "user_key": self._user_key,
            "Content-Type": "application/json; charset=utf-8",
        }

    def _today(self) -> str:
        return (datetime.fromtimestamp(self._clock(), UTC) + _JAKARTA).date().isoformat()

    async def _get(self, path: str) -> Any:
        """GET a path and return the decrypted ``response`` (None when absent)."""
        for attempt in (1, 2):
            timestamp = str(int(self._clock()))
            try:
                reply = await self._client.get(self._base + path,
                                               headers=self._headers(timestamp))
                break
            except httpx.TimeoutException:
                raise JknTimeout("vclaim: timeout") from None
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise JknUnavailable(f"vclaim: {type(exc).__name__}") from None
                _LOGGER.warning("vclaim: connection error (%s), retrying once",
                                type(exc).__name__)
        if reply.status_code in (401, 403):
            raise JknCredentialsRejected(f"vclaim: HTTP {reply.status_code}")
        if reply.status_code >= 500:
            raise JknUnavailable(f"vclaim: HTTP {reply.status_code}")
        if reply.status_code != 200:
            raise JknBadResponse(f"vclaim: HTTP {reply.status_code}")
        try:
            envelope = reply.json()
            meta = envelope["metaData"]
            code = str(meta["code"])
        except (ValueError, KeyError, TypeError):
            raise JknBadResponse("vclaim: malformed envelope") from None
        if code == "201":
            raise JknNotFound("vclaim: metaData 201")
        if code in ("401", "403"):
            raise JknCredentialsRejected(f"vclaim: metaData {code}")
        if code != "200":
            raise JknUnavailable(f"vclaim: metaData {code}")
        body = envelope.get("response")
        if body is None:
            return None
        if not isinstance(body, str):
            return body
        return decrypt_response(body, self._cons_id, self._secret, timestamp)

    async def lookup(self, identifier: Identifier) -> Participant:
        kind = "nik" if identifier.kind is IdKind.NIK else "nokartu"
        data = await self._get(f"/Peserta/{kind}/{identifier.value}/tglSEP/{self._today()}")
        if not isinstance(data, dict) or not isinstance(data.get("peserta"), dict):
            raise JknBadResponse("vclaim: no peserta in response")
        return participant_from_peserta(data["peserta"])

    async def history(self, card: str, start: date, end: date) -> list[dict[str, Any]]:
        """Service history (``monitoring/HistoriPelayanan``) between two dates."""
        data = await self._get(f"/monitoring/HistoriPelayanan/NoKartu/{card}/tglMulai/"
                               f"{start.isoformat()}/tglAkhir/{end.isoformat()}")
        if data is None:
            return []
        items = data.get("histori") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise JknBadResponse("vclaim: no histori in response")
        return [item for item in items if isinstance(item, dict)]

    async def aclose(self) -> None:
        await self._client.aclose()
