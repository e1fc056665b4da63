"""JKN backends: the sandbox's determinism and special cases, and the VClaim client
against a local server that checks signatures and encrypts exactly as BPJS does."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.identity import Identifier, IdKind, is_valid_nik
from bot.jkn.base import (
    JknBadResponse,
    JknCredentialsRejected,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
    Participant,
)
from bot.jkn.sandbox import SLOW_SECONDS, SandboxBackend
from bot.jkn.vclaim import VClaimBackend, decrypt_response, encrypt_response, sign
from tests.botapi_http import serving
from tests.conftest import CARD_A, NIK_A, NIK_B

CONS_ID, SECRET, USER_KEY = "12345", "s3cr3t-key", "user-key-abc"


def nik(i: int) -> Identifier:
    return Identifier(IdKind.NIK, f"31740145069{i:05d}")


# -- sandbox ----------------------------------------------------------------------------

async def test_sandbox_is_deterministic_and_realistic() -> None:
    backend = SandboxBackend()
    first = await backend.lookup(Identifier(IdKind.NIK, NIK_A))
    again = await SandboxBackend().lookup(Identifier(IdKind.NIK, NIK_A))
    assert first == again
    assert first.sandbox and first.nik == NIK_A and len(first.card) == 13
    assert first.sex == "P" and first.birth_date == "1990-06-05", "read from the NIK"
    assert first.phone is not None and first.phone.startswith("+628")
    assert 0 <= len(first.family) <= 4
    assert first.virtual_account == "88888" + first.card[-11:]
    by_card = await backend.lookup(Identifier(IdKind.CARD, CARD_A))
    assert by_card.card == CARD_A and is_valid_nik(by_card.nik)
    assert Participant.from_dict(first.to_dict()) == first


async def test_sandbox_phones_differ_between_participants() -> None:
    backend = SandboxBackend()
    phones = {(await backend.lookup(nik(i))).phone for i in range(11, 211)}
    assert len(phones) == 200


async def test_sandbox_special_cases() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    backend = SandboxBackend(sleep=fake_sleep)
    with pytest.raises(JknNotFound):
        await backend.lookup(Identifier(IdKind.NIK, "3174014506900000"))
    inactive = await backend.lookup(Identifier(IdKind.NIK, "3174014506900001"))
    assert not inactive.active and inactive.unpaid_months == 3 and inactive.unpaid_amount > 0
    assert (await backend.lookup(Identifier(IdKind.CARD, "0001234560002"))).phone is None
    slow = await backend.lookup(Identifier(IdKind.NIK, "3174014506900003"))
    assert slow.active and slept == [SLOW_SECONDS]
    with pytest.raises(JknUnavailable):
        await backend.lookup(Identifier(IdKind.NIK, "3174014506900004"))


# -- VClaim -----------------------------------------------------------------------------

def peserta(nik_value: str, card: str) -> dict[str, Any]:
    return {
        "nama": "BUDI SANTOSO", "nik": nik_value, "noKartu": card, "sex": "L",
        "tglLahir": "1985-04-23", "umur": {"umurSekarang": "41 tahun ,7 bulan ,2 hari"},
        "statusPeserta": {"kode": "0", "keterangan": "AKTIF"},
        "jenisPeserta": {"kode": "14", "keterangan": "PBPU"},
        "hakKelas": {"kode": "3", "keterangan": "KELAS III"},
        "provUmum": {"kdProvider": "0112R001", "nmProvider": "PUSKESMAS MENTENG"},
        "tglTMT": "2015-01-01", "tglTAT": "2099-12-31", "cob": {},
        "informasi": {"dinsos": None, "prolanisPRB": None, "noSKTM": None},
        "mr": {"noMR": None, "noTelepon": "081234567890"},
    }


class FakeBpjs:
    """Implements the bridging protocol: checks the signature, encrypts the answer."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, str]] = []

    def _check(self, request: web.Request) -> str | None:
        headers = {k: request.headers.get(k, "") for k in
                   ("X-cons-id", "X-timestamp", "X-signature", "user_key")}
        self.requests.append(headers)
        expected = base64.b64encode(hmac.new(
            SECRET.encode(), f"{CONS_ID}&{headers['X-timestamp']}".encode(),
            hashlib.sha256).digest()).decode()
        if (headers["X-cons-id"] != CONS_ID or headers["user_key"] != USER_KEY
                or not hmac.compare_digest(expected, headers["X-signature"])
                or abs(int(headers["X-timestamp"] or 0) - time.time()) > 300):
            return None
        return headers["X-timestamp"]

    async def handle(self, request: web.Request) -> web.Response:
        timestamp = self._check(request)
        if timestamp is None:
            return web.json_response({"metaData": {"code": "401",
                                                   "message": "Signature tidak valid"},
                                      "response": None})
        if self.mode == "timeout":
            await asyncio.sleep(5)
        if self.mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.json_response({"metaData": {"code": "200", "message": "OK"},
                                      "response": "bm90IGVuY3J5cHRlZA=="})
        if self.mode == "not-json":
            return web.Response(text="<html>gateway</html>")
        kind, value = request.match_info["kind"], request.match_info["value"]
        if value.endswith("0000"):
            return web.json_response({"metaData": {"code": "201",
                                                   "message": "Peserta Tidak Ditemukan"},
                                      "response": None})
        data = {"peserta": peserta(value if kind == "nik" else NIK_B,
                                   value if kind == "nokartu" else "0001112223334")}
        return web.json_response({"metaData": {"code": "200", "message": "OK"},
                                  "response": encrypt_response(data, CONS_ID, SECRET,
                                                               timestamp)})

    async def history(self, request: web.Request) -> web.Response:
        timestamp = self._check(request)
        assert timestamp is not None
        data = {"histori": [{"noSep": "0112R0011125V000001", "tglSep": "2026-11-01",
                             "poli": "UMUM"}]}
        return web.json_response({"metaData": {"code": "200", "message": "OK"},
                                  "response": encrypt_response(data, CONS_ID, SECRET,
                                                               timestamp)})


@pytest.fixture
async def bpjs() -> AsyncIterator[tuple[FakeBpjs, str]]:
    fake = FakeBpjs()
    app = web.Application()
    app.router.add_get("/vclaim/Peserta/{kind}/{value}/tglSEP/{date}", fake.handle)
    app.router.add_get("/vclaim/monitoring/HistoriPelayanan/NoKartu/{card}/tglMulai/{a}/"
                       "tglAkhir/{b}", fake.history)
    async with serving(app) as url:
        yield fake, f"{url}/vclaim"


def client(base: str, secret: str = SECRET, timeout: float = 2.0) -> VClaimBackend:
    return VClaimBackend(base, CONS_ID, secret, USER_KEY,
                         timeout=httpx.Timeout(timeout, connect=1.0))


def test_signature_and_encryption_match_the_documented_recipe() -> None:
    assert sign("1000", "secret", "1700000000") == base64.b64encode(hmac.new(
        b"secret", b"1000&1700000000", hashlib.sha256).digest()).decode()
    blob = encrypt_response({"a": [1, "dua"]}, "1000", "secret", "1700000000")
    assert decrypt_response(blob, "1000", "secret", "1700000000") == {"a": [1, "dua"]}
    with pytest.raises(JknBadResponse):
        decrypt_response(blob, "1000", "secret", "1700000001")


async def test_lookup_by_nik_and_by_card(bpjs: tuple[FakeBpjs, str]) -> None:
    fake, base = bpjs
    backend = client(base)
    try:
        by_nik = await backend.lookup(Identifier(IdKind.NIK, NIK_A))
        assert by_nik.nik == NIK_A and by_nik.name == "BUDI SANTOSO" and by_nik.active
        assert by_nik.phone == "+6281234567890" and by_nik.age == 41
        assert by_nik.fktp_name == "PUSKESMAS MENTENG" and not by_nik.sandbox
        by_card = await backend.lookup(Identifier(IdKind.CARD, CARD_A))
        assert by_card.card == CARD_A
        assert fake.requests[0]["X-cons-id"] == CONS_ID
        history = await backend.history(CARD_A, date(2026, 1, 1), date(2026, 11, 25))
        assert history[0]["poli"] == "UMUM"
    finally:
        await backend.aclose()


@pytest.mark.parametrize(("mode", "error"), [
    ("500", JknUnavailable), ("garbage", JknBadResponse), ("not-json", JknBadResponse),
])
async def test_server_failures_are_typed(bpjs: tuple[FakeBpjs, str], mode: str,
                                         error: type[Exception]) -> None:
    fake, base = bpjs
    fake.mode = mode
    backend = client(base)
    try:
        with pytest.raises(error):
            await backend.lookup(Identifier(IdKind.NIK, NIK_A))
    finally:
        await backend.aclose()


async def test_not_found_bad_signature_and_timeout(bpjs: tuple[FakeBpjs, str]) -> None:
    fake, base = bpjs
    backend = client(base, timeout=0.5)
    wrong = client(base, secret="not-the-secret")
    try:
        with pytest.raises(JknNotFound):
            await backend.lookup(Identifier(IdKind.NIK, "3174014506900000"))
        with pytest.raises(JknCredentialsRejected):
            await wrong.lookup(Identifier(IdKind.NIK, NIK_A))
        fake.mode = "timeout"
        with pytest.raises(JknTimeout):
            await backend.lookup(Identifier(IdKind.NIK, NIK_A))
    finally:
        await backend.aclose()
        await wrong.aclose()


async def test_connection_refused_is_retried_once_then_unavailable() -> None:
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(str(request.url))
        raise httpx.ConnectError("refused", request=request)

    backend = VClaimBackend("http://127.0.0.1:9/vclaim", CONS_ID, SECRET, USER_KEY,
                            transport=httpx.MockTransport(refuse))
    try:
        with pytest.raises(JknUnavailable):
            await backend.lookup(Identifier(IdKind.NIK, NIK_A))
    finally:
        await backend.aclose()
    assert len(attempts) == 2


async def test_vclaim_never_logs_secrets_or_identifiers(bpjs: tuple[FakeBpjs, str],
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    fake, base = bpjs
    backend = client(base)
    caplog.set_level("DEBUG")
    try:
        await backend.lookup(Identifier(IdKind.NIK, NIK_A))
        fake.mode = "garbage"
        with pytest.raises(JknBadResponse):
            await backend.lookup(Identifier(IdKind.NIK, NIK_A))
    finally:
        await backend.aclose()
    # httpx's own request log is silenced by configure_logging (see test_logs.py).
    ours = [r for r in caplog.records if r.name.startswith("bot")]
    logged = json.dumps([r.getMessage() for r in ours] + [str(r.exc_info) for r in ours])
    for secret in (SECRET, USER_KEY, NIK_A, "BUDI SANTOSO", "081234567890"):
        assert secret not in logged
