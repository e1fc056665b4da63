"""BPJS's bridging services as the whole bot meets them: VClaim (peserta, service history)
and PCare (peserta) on one local aiohttp server, checking every signature and answering
encrypted, for a set of people the test can change while the bot runs.

Besides the happy answers it sends, on demand, every answer shape the public bridging
clients and the catalogue show (:data:`SHAPES`): "201" envelopes with their messages, PCare's
204 and its unencrypted 412 list of field messages, envelopes with 4xx/5xx statuses, bare
4xx/5xx, HTML maintenance pages, 429, and a 200 whose ``response`` is an empty string. A
participant may have no NIK (PCare's ``noKTP: ""``), and the history may be routed only under
the older ``tglAwal`` spelling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.jkn.bridging import encrypt_response

CONS_ID, SECRET, USER_KEY = "31337", "bpjs-s3cret", "bpjs-user-key"
USERNAME, PASSWORD, APP_CODE = "klinik-sehat", "Rahasia#1", "095"


@dataclass
class Person:
    nik: str
    card: str
    name: str
    phone: str | None = "081234567042"
    active: bool = True
    status: str = "AKTIF"
    class_text: str = "KELAS III"
    fktp: tuple[str, str] = ("0112R001", "PUSKESMAS KECAMATAN MENTENG")
    arrears: int = 0
    visits: list[dict[str, Any]] = field(default_factory=list)

    def vclaim(self) -> dict[str, Any]:
        return {
            "nama": self.name, "nik": self.nik, "noKartu": self.card, "sex": "P",
            "tglLahir": "1990-06-05", "umur": {"umurSekarang": "36 tahun"},
            "statusPeserta": {"kode": "0" if self.active else "1", "keterangan": self.status},
            "jenisPeserta": {"kode": "14", "keterangan": "PBPU"},
            "hakKelas": {"kode": "3", "keterangan": self.class_text},
            "provUmum": {"kdProvider": self.fktp[0], "nmProvider": self.fktp[1]},
            "tglTMT": "2015-01-01", "tglTAT": "2099-12-31",
            "mr": {"noMR": None, "noTelepon": self.phone},
        }

    def pcare(self) -> dict[str, Any]:
        return {
            "noKartu": self.card, "nama": self.name, "hubunganKeluarga": "PESERTA",
            "sex": "P", "tglLahir": "05-06-1990", "tglMulaiAktif": "01-01-2015",
            "tglAkhirBerlaku": "31-12-2030",
            "kdProviderPst": {"kdProvider": self.fktp[0], "nmProvider": self.fktp[1]},
            "jnsKelas": {"nama": self.class_text, "kode": "3"},
            "jnsPeserta": {"nama": "PEKERJA MANDIRI", "kode": "14"}, "noHP": self.phone,
            "noKTP": self.nik, "aktif": self.active, "ketAktif": self.status,
            "tunggakan": self.arrears,
        }


def signed_by(headers: Mapping[str, str], *, cons_id: str, secret: str, user_key: str,
              now: float) -> bool:
    """Does a request carry the headers BPJS's gateway checks: its consumer id and user key,
    an X-signature that is base64(HMAC-SHA256(secret, "cons_id&timestamp")), and a
    timestamp within 300 s of ``now``? Written out here, not with the client's own
    ``sign``, so that a wrong signature in the client cannot agree with itself."""
    timestamp = headers.get("X-timestamp", "")
    expected = base64.b64encode(hmac.new(secret.encode(), f"{cons_id}&{timestamp}".encode(),
                                         hashlib.sha256).digest()).decode()
    return (headers.get("X-cons-id") == cons_id and headers.get("user_key") == user_key
            and hmac.compare_digest(expected, headers.get("X-signature", ""))
            and timestamp.isdigit() and abs(int(timestamp) - now) <= 300)


def _envelope(code: Any, response: Any, message: str = "OK") -> web.Response:
    return web.json_response({"metaData": {"code": code, "message": message},
                              "response": response})


_HTML = "text/html"
_JSON = "application/json"
_TEXT = "text/plain"
_MAINTENANCE = ("<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>"
                "Mohon maaf, layanan sedang dalam pemeliharaan</h1></body></html>")


def _meta(code: Any, message: str, response: Any = None) -> str:
    return json.dumps({"metaData": {"code": code, "message": message}, "response": response})


#: Answer shapes BPJS's gateways send besides a participant: name -> (HTTP status, content
#: type, body). Sources: docs/decisions.md ("What BPJS's answers are assumed to mean").
SHAPES: dict[str, tuple[int, str, str]] = {
    "201-not-found": (200, _JSON, _meta("201", "Peserta Tidak Ditemukan")),
    "201-no-data": (200, _JSON, _meta(201, "Data Tidak Ditemukan")),
    "201-invalid-nik": (200, _JSON, _meta("201", "NIK Tidak Sesuai Format")),
    "201-range": (200, _JSON, _meta("201", "Rentang tanggal maksimal 90 hari")),
    "204": (200, _JSON, _meta(204, "NO_CONTENT")),
    "404-envelope": (404, _JSON, _meta(404, "NOT_FOUND")),
    "412": (412, _JSON, json.dumps({
        "response": [{"field": "noKartu", "message": "Nomor kartu harus 13 digit"},
                     {"field": "noKartu", "message": "Peserta tidak valid"}],
        "metaData": {"message": "PRECONDITION_FAILED", "code": 412}})),
    "400-envelope": (400, _JSON, _meta("400", "Bad Request")),
    "400-bare": (400, _TEXT, "Bad Request"),
    "401-envelope": (200, _JSON, _meta("401", "Unauthorized!")),
    "401-http": (401, _JSON, _meta(401, "UNAUTHORIZED")),
    "403-html": (403, _HTML, "<html><body>403 Forbidden</body></html>"),
    "404-html": (404, _HTML, "<html><body><h1>404 Not Found</h1></body></html>"),
    "429": (429, _TEXT, "Too Many Requests"),
    "429-envelope": (200, _JSON, _meta("429", "Too Many Requests")),
    "500-envelope": (500, _JSON, _meta("500", "Internal Server Error")),
    "503-bare": (503, _TEXT, "Service Unavailable"),
    "maintenance": (503, _HTML, _MAINTENANCE),
    "maintenance-200": (200, _HTML, _MAINTENANCE),
    "empty-response": (200, _JSON, _meta("200", "OK", "")),
    "no-envelope": (200, _JSON, json.dumps({"status": "ok"})),
    "empty-body": (200, _JSON, ""),
    "unknown-code": (200, _JSON, _meta("999", "Unknown")),
}


_NOT_FOUND_MESSAGES: dict[Any, str] = {"201": "Peserta Tidak Ditemukan", 204: "NO_CONTENT"}


class FakeBpjs:
    """``people`` by NIK and by card; ``down`` makes every answer a 503; ``shape`` (a name
    in :data:`SHAPES`) makes every signed answer that shape instead; ``older_history_only``
    routes the history only under ``tglAwal`` (``tglMulai`` is then an HTML 404)."""

    def __init__(self, *people: Person) -> None:
        self.people: dict[str, Person] = {}
        for person in people:
            self.add(person)
        self.down = False
        self.shape: str | None = None
        self.older_history_only = False
        self.calls: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def add(self, person: Person) -> Person:
        """Known by card number, and by NIK unless BPJS has none for them."""
        self.people[person.card] = person
        if person.nik:
            self.people[person.nik] = person
        return person

    def _timestamp(self, request: web.Request) -> str | None:
        if not signed_by(request.headers, cons_id=CONS_ID, secret=SECRET, user_key=USER_KEY,
                         now=time.time()):
            return None
        return request.headers["X-timestamp"]

    def _answer(self, request: web.Request, data: Any, code: Any = "200",
                message: str | None = None) -> web.Response:
        self.calls.append(request.path)
        timestamp = self._timestamp(request)
        if timestamp is None:
            return _envelope("401", None)
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        if self.shape is not None:
            status, content_type, body = SHAPES[self.shape]
            return web.Response(status=status, text=body, content_type=content_type)
        if data is None:
            return _envelope(code, None, message or _NOT_FOUND_MESSAGES.get(code, "OK"))
        return _envelope("200", encrypt_response(data, CONS_ID, SECRET, timestamp))

    async def vclaim_peserta(self, request: web.Request) -> web.Response:
        person = self.people.get(request.match_info["value"])
        return self._answer(request, {"peserta": person.vclaim()} if person else None, "201")

    async def vclaim_history(self, request: web.Request) -> web.Response:
        if self.older_history_only and "/tglMulai/" in request.path:
            self.calls.append(request.path)
            return web.Response(status=404, text=SHAPES["404-html"][2], content_type=_HTML)
        person = self.people.get(request.match_info["card"])
        visits = person.visits if person else []
        return self._answer(request, {"histori": visits} if visits else None, "201",
                            "Data Tidak Ditemukan")

    async def pcare_peserta(self, request: web.Request) -> web.Response:
        if request.headers.get("X-authorization") != "Basic " + base64.b64encode(
                f"{USERNAME}:{PASSWORD}:{APP_CODE}".encode()).decode():
            return web.json_response({"metaData": {"code": 401}, "response": None}, status=401)
        person = self.people.get(request.match_info["value"])
        return self._answer(request, person.pcare() if person else None, 204)

    async def start(self) -> str:
        from tests.botapi_http import start_app

        app = web.Application()
        app.router.add_get("/vclaim/Peserta/{kind}/{value}/tglSEP/{date}", self.vclaim_peserta)
        for spelling in ("tglMulai", "tglAwal"):
            app.router.add_get(f"/vclaim/monitoring/HistoriPelayanan/NoKartu/{{card}}/"
                               f"{spelling}/{{a}}/tglAkhir/{{b}}", self.vclaim_history)
        app.router.add_get("/pcare/peserta/{kind}/{value}", self.pcare_peserta)
        self._runner, self.url = await start_app(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def settings(self, backend: str) -> dict[str, str]:
        """The environment that points the bot at this server."""
        if backend == "vclaim":
            return {"JKN_BACKEND": "vclaim", "VCLAIM_BASE_URL": f"{self.url}/vclaim",
                    "VCLAIM_CONS_ID": CONS_ID, "VCLAIM_SECRET_KEY": SECRET,
                    "VCLAIM_USER_KEY": USER_KEY}
        return {"JKN_BACKEND": "pcare", "PCARE_BASE_URL": f"{self.url}/pcare",
                "PCARE_CONS_ID": CONS_ID, "PCARE_SECRET_KEY": SECRET,
                "PCARE_USER_KEY": USER_KEY, "PCARE_USERNAME": USERNAME,
                "PCARE_PASSWORD": PASSWORD, "PCARE_APP_CODE": APP_CODE}
