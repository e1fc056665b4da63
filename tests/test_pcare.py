"""The PCare client against a local server that checks the signature, the user key and the
X-authorization header, and encrypts its answers exactly as BPJS does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.identity import Identifier, IdKind
from bot.jkn.base import (
    Capability,
    JknBackend,
    JknBadResponse,
    JknCredentialsRejected,
    JknError,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
    JknUnsupported,
    Participant,
)
from bot.jkn.bridging import encrypt_response
from bot.jkn.pcare import PCareBackend
from tests.botapi_http import serving
from tests.conftest import CARD_A, NIK_A, NIK_B
from tests.fake_bpjs import signed_by

CONS_ID, SECRET, USER_KEY = "27182", "pcare-s3cret", "pcare-user-key"
USERNAME, PASSWORD, APP_CODE = "pkm-menteng", "Rahasia#2026", "095"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}:{APP_CODE}".encode()).decode()
#: 4 June 2026 17:30 UTC is already 5 June 00:30 in Jakarta: NIK_A's 36th birthday there.
NOW = datetime(2026, 6, 4, 17, 30, tzinfo=UTC).timestamp()
NIK_INACTIVE = "3273012304850001"
CARD_INACTIVE = "0002223334441"
NIK_NO_PHONE = "3578016712010033"
NIK_NO_TUNGGAKAN = "5171020101990044"
CARD_WRAPPED = "0001112223339"


def peserta(nik: str, card: str, **changes: Any) -> dict[str, Any]:
    """A PCare ``peserta`` as the bridging answers it."""
    data: dict[str, Any] = {
        "noKartu": card, "nama": "SITI RAHMAWATI", "hubunganKeluarga": "ISTRI", "sex": "P",
        "tglLahir": "05-06-1990", "tglMulaiAktif": "01-01-2015",
        "tglAkhirBerlaku": "31-12-2030",
        "kdProviderPst": {"kdProvider": "0112B001", "nmProvider": "PUSKESMAS KEC. MENTENG"},
        "kdProviderGigi": {"kdProvider": None, "nmProvider": None},
        "jnsKelas": {"nama": "KELAS III", "kode": "3"},
        "jnsPeserta": {"nama": "PEKERJA MANDIRI", "kode": "14"},
        "golDarah": "O", "noHP": "0812-3456-7890", "noKTP": nik, "pstProl": "", "pstPrb": "",
        "aktif": True, "ketAktif": "AKTIF",
        "asuransi": {"kdAsuransi": None, "nmAsuransi": None, "noAsuransi": None,
                     "cob": False},
        "tunggakan": 0,
    }
    data.update(changes)
    return data


PEOPLE = {
    NIK_A: peserta(NIK_A, CARD_A),
    CARD_A: peserta(NIK_A, CARD_A),
    NIK_INACTIVE: peserta(NIK_INACTIVE, CARD_INACTIVE, nama="BUDI SANTOSO", sex="L",
                          hubunganKeluarga="PESERTA", tglLahir="23-04-1985", aktif=False,
                          ketAktif="TIDAK AKTIF - MENUNGGAK IURAN", tunggakan="105000",
                          jnsKelas={"nama": "KELAS II", "kode": "2"}, noHP="+62 857 1234 0001"),
    CARD_INACTIVE: peserta(NIK_INACTIVE, CARD_INACTIVE, aktif=False, tunggakan=1_260_000,
                           ketAktif="TIDAK AKTIF"),
    NIK_NO_PHONE: peserta(NIK_NO_PHONE, "0003334445552", noHP=None),
    NIK_NO_TUNGGAKAN: peserta(NIK_NO_TUNGGAKAN, "0004445556663", noHP="12345",
                              tunggakan=None),
}


class FakePCare:
    """Implements the PCare bridging: checks every header, encrypts the answer."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.mode = "ok"
        self.release = asyncio.Event()  # ends a "timeout" answer at teardown
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []

    def _timestamp(self, request: web.Request) -> str | None:
        headers = {k: request.headers.get(k, "") for k in
                   ("X-cons-id", "X-timestamp", "X-signature", "user_key", "X-authorization")}
        self.headers.append(headers)
        self.paths.append(request.path)
        if not signed_by(headers, cons_id=CONS_ID, secret=SECRET, user_key=USER_KEY,
                         now=self.now()):
            return None
        return headers["X-timestamp"]

    @staticmethod
    def envelope(code: Any, response: Any, message: str = "OK") -> web.Response:
        return web.json_response({"response": response,
                                  "metaData": {"message": message, "code": code}})

    async def handle(self, request: web.Request) -> web.Response:
        timestamp = self._timestamp(request)
        if timestamp is None:
            return self.envelope(401, None, "Signature tidak valid")
        if request.headers.get("X-authorization") != AUTH:
            return web.json_response({"response": None, "metaData": {
                "message": "Username atau password salah", "code": 401}}, status=401)
        value = request.match_info["value"]
        mode = self.mode
        if mode == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 5)
        if mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        if mode == "503-meta":
            return self.envelope(503, None, "Service Unavailable")
        if mode == "malformed":
            return web.json_response({"response": None, "meta": {"code": 200}})
        if mode == "not-json":
            return web.Response(text="<html><body>Bad Gateway</body></html>")
        if mode == "empty":
            return web.Response(status=200, body=b"")
        if mode == "empty-response":
            return self.envelope(200, "")
        if mode == "undecryptable":
            return self.envelope(200, "bm90IGVuY3J5cHRlZA==")
        if mode == "wrong-key":
            return self.envelope(200, encrypt_response(PEOPLE[NIK_A], CONS_ID, "other",
                                                       timestamp))
        if mode == "list":
            return self.envelope(200, encrypt_response([PEOPLE[NIK_A]], CONS_ID, SECRET,
                                                       timestamp))
        if mode == "no-nama":
            partial = {k: v for k, v in PEOPLE[NIK_A].items() if k != "nama"}
            return self.envelope(200, encrypt_response(partial, CONS_ID, SECRET, timestamp))
        if mode == "null":
            return self.envelope(200, None)
        if mode.startswith("code-"):  # e.g. code-204 (number) or code-"404" (string)
            raw = mode.removeprefix("code-")
            code: Any = raw.strip('"') if raw.startswith('"') else int(raw)
            return self.envelope(code, None, "NO_CONTENT")
        if value not in PEOPLE:
            return self.envelope(204, None, "NO_CONTENT")
        data: Any = PEOPLE[value]
        if value == CARD_WRAPPED or mode == "wrapped":
            data = {"peserta": data}
        code = 200 if mode == "numeric" else "200"
        return self.envelope(code, encrypt_response(data, CONS_ID, SECRET, timestamp))


@pytest.fixture
async def pcare() -> AsyncIterator[tuple[FakePCare, str]]:
    fake = FakePCare(lambda: NOW)
    app = web.Application()
    app.router.add_get("/pcare-rest/peserta/{kind:nik|noka}/{value}", fake.handle)
    async with serving(app) as url:
        yield fake, f"{url}/pcare-rest/"
        fake.release.set()


def client(base: str, *, secret: str = SECRET, password: str = PASSWORD,
           app_code: str = APP_CODE, timeout: float = 2.0,
           transport: httpx.AsyncBaseTransport | None = None) -> PCareBackend:
    return PCareBackend(base, CONS_ID, secret, USER_KEY, USERNAME, password, app_code,
                        timeout=httpx.Timeout(timeout, connect=1.0), clock=lambda: NOW,
                        transport=transport)


async def lookup(base: str, identifier: Identifier, **kwargs: Any) -> Participant:
    backend = client(base, **kwargs)
    try:
        return await backend.lookup(identifier)
    finally:
        await backend.aclose()


async def test_lookup_by_nik_maps_every_field(pcare: tuple[FakePCare, str]) -> None:
    fake, base = pcare
    found = await lookup(base, Identifier(IdKind.NIK, NIK_A))
    assert fake.paths == [f"/pcare-rest/peserta/nik/{NIK_A}"]
    assert fake.headers[0]["X-authorization"] == AUTH
    assert found == Participant(
        name="SITI RAHMAWATI", nik=NIK_A, card=CARD_A, sex="P", birth_date="1990-06-05",
        age=36, status_code="0", status_text="AKTIF", active=True,
        type_text="PEKERJA MANDIRI", class_text="KELAS III", fktp_code="0112B001",
        fktp_name="PUSKESMAS KEC. MENTENG", tmt="2015-01-01", tat="2030-12-31",
        phone="+6281234567890", family=(), unpaid_months=0, unpaid_amount=0, sandbox=False,
        arrears_known=True, family_known=False, source="PCare", relation="ISTRI")


async def test_lookup_by_card_and_an_inactive_participant_in_arrears(
        pcare: tuple[FakePCare, str]) -> None:
    fake, base = pcare
    by_card = await lookup(base, Identifier(IdKind.CARD, CARD_INACTIVE))
    assert fake.paths == [f"/pcare-rest/peserta/noka/{CARD_INACTIVE}"]
    assert by_card.card == CARD_INACTIVE and by_card.nik == NIK_INACTIVE
    assert not by_card.active and by_card.status_code == "1"
    assert by_card.unpaid_amount == 1_260_000 and by_card.unpaid_months == 0
    assert by_card.arrears_known and by_card.status_text == "TIDAK AKTIF"
    by_nik = await lookup(base, Identifier(IdKind.NIK, NIK_INACTIVE))
    assert (by_nik.active, by_nik.unpaid_amount, by_nik.status_text) == (
        False, 105_000, "TIDAK AKTIF - MENUNGGAK IURAN"), "tunggakan as a numeric string"
    assert (by_nik.name, by_nik.sex, by_nik.birth_date, by_nik.age) == (
        "BUDI SANTOSO", "L", "1985-04-23", 41)
    assert by_nik.class_text == "KELAS II" and by_nik.relation == "PESERTA"
    assert by_nik.phone == "+6285712340001"


async def test_phone_and_arrears_when_absent_or_unusable(pcare: tuple[FakePCare, str]
                                                         ) -> None:
    _, base = pcare
    no_phone = await lookup(base, Identifier(IdKind.NIK, NIK_NO_PHONE))
    assert no_phone.phone is None and no_phone.arrears_known and no_phone.unpaid_amount == 0
    odd = await lookup(base, Identifier(IdKind.NIK, NIK_NO_TUNGGAKAN))
    assert odd.phone is None, "12345 is no mobile number"
    assert not odd.arrears_known and odd.unpaid_amount == 0, "no tunggakan is not 'none due'"


@pytest.mark.parametrize("mode", ["numeric", "wrapped"])
async def test_numeric_code_and_wrapped_peserta(pcare: tuple[FakePCare, str], mode: str
                                                ) -> None:
    fake, base = pcare
    fake.mode = mode
    found = await lookup(base, Identifier(IdKind.NIK, NIK_A))
    assert found.nik == NIK_A and found.name == "SITI RAHMAWATI" and found.active


@pytest.mark.parametrize("mode", ["code-201", "code-204", "code-404", 'code-"201"',
                                  'code-"204"', "null"])
async def test_not_found(pcare: tuple[FakePCare, str], mode: str) -> None:
    fake, base = pcare
    fake.mode = mode
    with pytest.raises(JknNotFound):
        await lookup(base, Identifier(IdKind.NIK, NIK_A))


async def test_unknown_participant_is_not_found(pcare: tuple[FakePCare, str]) -> None:
    _, base = pcare
    with pytest.raises(JknNotFound):
        await lookup(base, Identifier(IdKind.NIK, NIK_B))


@pytest.mark.parametrize("kwargs", [
    {"secret": "not-the-secret"},  # bad signature: metaData 401 (a number)
    {"password": "wrong"},  # bad X-authorization: HTTP 401
    {"app_code": "096"},  # the app code is part of X-authorization
])
async def test_wrong_credentials(pcare: tuple[FakePCare, str], kwargs: dict[str, str]
                                 ) -> None:
    fake, base = pcare
    with pytest.raises(JknCredentialsRejected):
        await lookup(base, Identifier(IdKind.NIK, NIK_A), **kwargs)
    assert len(fake.paths) == 1, "a refusal is not retried"


@pytest.mark.parametrize(("mode", "error"), [
    ("500", JknUnavailable), ("503-meta", JknUnavailable),
    ("malformed", JknBadResponse), ("not-json", JknUnavailable), ("empty", JknBadResponse),
    ("empty-response", JknBadResponse), ("undecryptable", JknBadResponse),
    ("wrong-key", JknBadResponse), ("list", JknBadResponse), ("no-nama", JknBadResponse),
])
async def test_server_failures_are_typed(pcare: tuple[FakePCare, str], mode: str,
                                         error: type[JknError]) -> None:
    fake, base = pcare
    fake.mode = mode
    with pytest.raises(error):
        await lookup(base, Identifier(IdKind.NIK, NIK_A))


async def test_timeout(pcare: tuple[FakePCare, str]) -> None:
    fake, base = pcare
    fake.mode = "timeout"
    with pytest.raises(JknTimeout):
        await lookup(base, Identifier(IdKind.NIK, NIK_A), timeout=0.3)


class Flaky(httpx.AsyncHTTPTransport):
    """A real transport that refuses the first ``refusals`` connections."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise httpx.ConnectError(f"refused: {request.url}", request=request)
        return await super().handle_async_request(request)


async def test_connection_refused_is_retried_once_then_unavailable() -> None:
    app = web.Application()
    async with serving(app) as url:
        pass  # the port is closed again: connections to it are refused
    transport = Flaky(refusals=0)
    with pytest.raises(JknUnavailable):
        await lookup(url, Identifier(IdKind.NIK, NIK_A), transport=transport)
    assert transport.attempts == 2


async def test_one_refusal_is_survived(pcare: tuple[FakePCare, str]) -> None:
    fake, base = pcare
    transport = Flaky(refusals=1)
    found = await lookup(base, Identifier(IdKind.CARD, CARD_A), transport=transport)
    assert found.card == CARD_A and transport.attempts == 2 and len(fake.paths) == 1


async def test_history_is_unsupported(pcare: tuple[FakePCare, str]) -> None:
    fake, base = pcare
    backend: JknBackend = client(base)
    try:
        assert backend.name == "pcare" and backend.label == "PCare"
        assert backend.capabilities == frozenset({Capability.ARREARS})
        with pytest.raises(JknUnsupported):
            await backend.history(CARD_A, date(2026, 1, 1), date(2026, 6, 1))
    finally:
        await backend.aclose()
    assert fake.paths == [], "no request for an unsupported capability"


async def test_pcare_never_logs_secrets_or_identifiers(pcare: tuple[FakePCare, str],
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    fake, base = pcare
    caplog.set_level("DEBUG")
    flaky = Flaky(refusals=1)
    await lookup(base, Identifier(IdKind.NIK, NIK_A), transport=flaky)  # logs the retry
    await lookup(base, Identifier(IdKind.NIK, NIK_NO_TUNGGAKAN))
    with pytest.raises(JknCredentialsRejected):
        await lookup(base, Identifier(IdKind.NIK, NIK_A), password="wrong")
    with pytest.raises(JknCredentialsRejected):
        await lookup(base, Identifier(IdKind.CARD, CARD_A), secret="not-the-secret")
    fake.mode = "undecryptable"
    with pytest.raises(JknBadResponse):
        await lookup(base, Identifier(IdKind.CARD, CARD_A))
    ours = [r for r in caplog.records if r.name.startswith("bot")]
    assert any("retrying once" in r.getMessage() for r in ours), "nothing was logged"
    logged = json.dumps([r.getMessage() for r in ours] + [str(r.exc_info) for r in ours]
                        + [str(r.args) for r in ours])
    for secret in (SECRET, USER_KEY, USERNAME, PASSWORD, AUTH, AUTH.split(" ")[1], NIK_A,
                   CARD_A, NIK_NO_TUNGGAKAN, "SITI RAHMAWATI", "0812-3456-7890",
                   "6281234567890", "/peserta/", base):
        assert secret not in logged
