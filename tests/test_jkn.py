"""JKN backends: the models, the sandbox's determinism and special cases (participants and
service history), and the VClaim client against a local server that checks signatures and
encrypts exactly as BPJS does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.identity import Identifier, IdKind, is_valid_nik
from bot.jkn import bridging
from bot.jkn.base import (
    Capability,
    FamilyMember,
    JknBackend,
    JknBadResponse,
    JknCredentialsRejected,
    JknError,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
    Participant,
    Visit,
)
from bot.jkn.sandbox import SLOW_SECONDS, SandboxBackend
from bot.jkn.vclaim import VClaimBackend, decrypt_response, encrypt_response, sign
from tests.botapi_http import serving
from tests.conftest import CARD_A, NIK_A, NIK_B
from tests.fake_bpjs import signed_by

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


def test_sandbox_keeps_its_participants_and_marks_them() -> None:
    # Cards and participants are what they were before history existed (pinned values);
    # only a NIK ending 0005 now gets a card ending 0005.
    backend = SandboxBackend()
    assert backend.participant(Identifier(IdKind.NIK, NIK_A)).card == "0001176526410"
    assert backend.participant(Identifier(IdKind.NIK, NIK_B)).card == "0001383338419"
    five = backend.participant(Identifier(IdKind.NIK, "3174014506900005"))
    assert five.card == "0001871460005" and five.nik == "3174014506900005"
    first = backend.participant(Identifier(IdKind.NIK, NIK_A))
    assert (first.source, first.arrears_known, first.family_known) == ("sandbox", True, True)
    assert first.sandbox and first.relation is None
    assert backend.label == "sandbox" and backend.name == "sandbox"
    assert backend.capabilities == {Capability.ARREARS, Capability.FAMILY, Capability.HISTORY}


TODAY = date(2026, 5, 15)
ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9])? - [A-Z][a-z]")


async def test_sandbox_history_is_deterministic_and_realistic() -> None:
    backend = SandboxBackend(today=lambda: TODAY)
    start, end = date(2016, 1, 1), date(2026, 5, 15)
    visits = await backend.history(CARD_A, start, end)
    assert visits == await SandboxBackend(today=lambda: TODAY).history(CARD_A, start, end)
    assert len(visits) > 20
    dates = [v.date for v in visits]
    assert dates == sorted(dates, reverse=True), "newest first"
    assert all(start.isoformat() <= d <= end.isoformat() for d in dates)
    assert all(ICD10.match(v.diagnosis) for v in visits), visits
    assert any(v.facility.startswith(("Puskesmas", "Klinik")) for v in visits)
    assert any(v.facility.startswith("RSUD") for v in visits)
    polis = {v.poli for v in visits}
    assert {"UMUM", "GIGI"} <= polis
    stays = [v for v in visits if v.inpatient]
    assert stays and all(v.discharge_date is not None and v.discharge_date > v.date
                         for v in stays)
    assert all(v.discharge_date is None for v in visits if not v.inpatient)
    # A shorter range gives exactly the visits of the longer one that fall inside it.
    part = await backend.history(CARD_A, date(2020, 3, 10), date(2021, 8, 20))
    assert part == [v for v in visits if "2020-03-10" <= v.date <= "2021-08-20"] and part
    # Another card has another history; nothing after today, nothing when end < start.
    assert await backend.history("0009876543210", start, end) != visits
    future = await backend.history(CARD_A, date(2026, 1, 1), date(2027, 12, 31))
    assert future and all(v.date <= TODAY.isoformat() for v in future)
    assert await backend.history(CARD_A, end, start) == []


async def test_sandbox_history_special_cases() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    backend = SandboxBackend(sleep=fake_sleep, today=lambda: TODAY)
    start, end = date(2014, 1, 1), TODAY
    assert await backend.history("0001234560005", start, end) == []
    participant = await backend.lookup(Identifier(IdKind.NIK, "3174014506900005"))
    assert await backend.history(participant.card, start, end) == []
    assert await backend.history("0001234560001", start, end), "0001 has visits"
    assert slept == []
    assert await backend.history("0001234560003", start, end)
    assert slept == [SLOW_SECONDS]
    with pytest.raises(JknUnavailable):
        await backend.history("0001234560004", start, end)


# -- models ------------------------------------------------------------------------------

def test_visit_and_participant_round_trip() -> None:
    visit = Visit(date="2026-02-03", facility="RSUD Cibinong", poli="PENYAKIT DALAM",
                  inpatient=True, diagnosis="A91 - Dengue haemorrhagic fever",
                  discharge_date="2026-02-07")
    data = visit.to_dict()
    assert data == {"date": "2026-02-03", "facility": "RSUD Cibinong",
                    "poli": "PENYAKIT DALAM", "inpatient": True,
                    "diagnosis": "A91 - Dengue haemorrhagic fever",
                    "discharge_date": "2026-02-07"}
    assert Visit.from_dict(json.loads(json.dumps(data))) == visit
    assert Visit.from_dict({**data, "noSep": "x"}) == visit, "unknown keys are ignored"
    person = Participant(
        name="SITI", nik=NIK_A, card=CARD_A, sex="P", birth_date="1990-06-05", age=35,
        status_code="1", status_text="TIDAK AKTIF", active=False, type_text="PBPU",
        class_text="KELAS III", fktp_code="0112R001", fktp_name="PUSKESMAS MENTENG",
        tmt=None, tat=None, phone=None,
        family=(FamilyMember("BUDI", "SUAMI", "TIDAK AKTIF", False),),
        unpaid_amount=70_000, arrears_known=True, family_known=False, source="PCare",
        relation="ISTRI")
    again = Participant.from_dict(json.loads(json.dumps(person.to_dict())))
    assert again == person and again.family[0].relation == "SUAMI"


def _old_dict(sandbox: bool) -> dict[str, Any]:
    """A participant as saved before this round: no arrears_known, family_known, source or
    relation, plus a key a future version might add."""
    return {"name": "SITI", "nik": NIK_A, "card": CARD_A, "sex": "P",
            "birth_date": "1990-06-05", "age": 35, "status_code": "0", "status_text": "AKTIF",
            "active": True, "type_text": "PBPU", "class_text": "KELAS II",
            "fktp_code": "0112R001", "fktp_name": "PUSKESMAS", "tmt": "2015-01-01",
            "tat": "2099-12-31", "phone": "+6281234567890",
            "family": [{"name": "BUDI", "relation": "SUAMI", "status_text": "AKTIF",
                        "active": True}] if sandbox else [],
            "unpaid_months": 0, "unpaid_amount": 0, "sandbox": sandbox,
            "something_newer": 1}


def test_participant_from_an_old_dict() -> None:
    old = Participant.from_dict(_old_dict(sandbox=True))
    assert old.name == "SITI" and old.family == (FamilyMember("BUDI", "SUAMI", "AKTIF", True),)
    assert (old.source, old.arrears_known, old.family_known, old.relation) == (
        "sandbox", True, True, None)
    # Before this round only VClaim was not the sandbox, and VClaim knows neither arrears
    # nor the family list: an old real-backend record must not claim "no arrears".
    real = Participant.from_dict(_old_dict(sandbox=False))
    assert (real.source, real.arrears_known, real.family_known) == ("VClaim", False, False)
    assert not hasattr(real, "something_newer")


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
        "tunggakan": 3,  # VClaim has no such field; the client must not read one
    }


HISTORI = [  # as BPJS sends it: not in date order
    {"diagnosa": "K04.0 - Pulpitis", "jnsPelayanan": "2", "kelasRawat": "3",
     "namaPeserta": "BUDI SANTOSO", "noKartu": CARD_A, "noSep": "0112R0010126V000002",
     "noRujukan": "", "poli": "GIGI", "ppkPelayanan": "PUSKESMAS MENTENG",
     "tglSep": "2026-01-10", "tglPlgSep": "2026-01-10"},
    {"diagnosa": "A91 - Dengue haemorrhagic fever", "jnsPelayanan": "1", "kelasRawat": "3",
     "namaPeserta": "BUDI SANTOSO", "noKartu": CARD_A, "noSep": "0901R0011126V000007",
     "noRujukan": "0112R0011126B000003", "poli": "", "ppkPelayanan": "RSUD CIBINONG",
     "tglSep": "2026-11-01", "tglPlgSep": "2026-11-05"},
    {"diagnosa": "J06.9 - Acute upper respiratory infection, unspecified",
     "jnsPelayanan": "2", "kelasRawat": "3", "namaPeserta": "BUDI SANTOSO",
     "noKartu": CARD_A, "noSep": "0112R0010626V000004", "noRujukan": "", "poli": "UMUM",
     "ppkPelayanan": "PUSKESMAS MENTENG", "tglSep": "2026-06-15", "tglPlgSep": None},
]


class FakeBpjs:
    """Implements the bridging protocol: checks the signature, encrypts the answer."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.release = asyncio.Event()  # ends a "timeout" answer at teardown
        self.history_mode = "ok"
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []

    def _check(self, request: web.Request) -> str | None:
        headers = {k: request.headers.get(k, "") for k in
                   ("X-cons-id", "X-timestamp", "X-signature", "user_key")}
        self.requests.append(headers)
        self.paths.append(request.path)
        if not signed_by(headers, cons_id=CONS_ID, secret=SECRET, user_key=USER_KEY,
                         now=time.time()):
            return None
        return headers["X-timestamp"]

    async def handle(self, request: web.Request) -> web.Response:
        timestamp = self._check(request)
        if timestamp is None:
            return web.json_response({"metaData": {"code": "401",
                                                   "message": "Signature tidak valid"},
                                      "response": None})
        if self.mode == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 5)
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
        if timestamp is None:
            return web.json_response({"metaData": {"code": 401, "message": "Unauthorized"},
                                      "response": None})
        if self.history_mode in ("201", "201-number"):
            code: str | int = "201" if self.history_mode == "201" else 201
            return web.json_response({"metaData": {"code": code,
                                                   "message": "Data Tidak Ditemukan"},
                                      "response": None})
        if self.history_mode == "503":
            return web.Response(status=503, text="Service Unavailable")
        if self.history_mode == "garbage":
            return web.json_response({"metaData": {"code": "200", "message": "OK"},
                                      "response": "bm90IGVuY3J5cHRlZA=="})
        if self.history_mode == "no-histori":
            data: dict[str, Any] = {"list": []}
        else:
            data = {"histori": HISTORI}
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
        fake.release.set()


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
    finally:
        await backend.aclose()


async def test_vclaim_is_honest_about_what_it_cannot_tell(bpjs: tuple[FakeBpjs, str]
                                                          ) -> None:
    _, base = bpjs
    backend = client(base)
    try:
        found = await backend.lookup(Identifier(IdKind.NIK, NIK_A))
    finally:
        await backend.aclose()
    assert (found.source, found.arrears_known, found.family_known) == ("VClaim", False, False)
    assert found.unpaid_months == 0 and found.unpaid_amount == 0, "no tunggakan in VClaim"
    assert found.family == () and found.relation is None and not found.sandbox
    assert backend.label == "VClaim" and backend.name == "vclaim"
    assert backend.capabilities == frozenset({Capability.HISTORY})


async def test_vclaim_history_maps_visits_newest_first(bpjs: tuple[FakeBpjs, str]) -> None:
    fake, base = bpjs
    backend = client(base)
    try:
        visits = await backend.history(CARD_A, date(2026, 1, 1), date(2026, 11, 25))
    finally:
        await backend.aclose()
    assert fake.paths == [f"/vclaim/monitoring/HistoriPelayanan/NoKartu/{CARD_A}"
                          "/tglMulai/2026-01-01/tglAkhir/2026-11-25"]
    assert visits == [
        Visit(date="2026-11-01", facility="RSUD CIBINONG", poli="", inpatient=True,
              diagnosis="A91 - Dengue haemorrhagic fever", discharge_date="2026-11-05"),
        Visit(date="2026-06-15", facility="PUSKESMAS MENTENG", poli="UMUM", inpatient=False,
              diagnosis="J06.9 - Acute upper respiratory infection, unspecified",
              discharge_date=None),
        Visit(date="2026-01-10", facility="PUSKESMAS MENTENG", poli="GIGI", inpatient=False,
              diagnosis="K04.0 - Pulpitis", discharge_date="2026-01-10"),
    ]


@pytest.mark.parametrize(("mode", "outcome"), [
    ("201", []), ("201-number", []), ("503", JknUnavailable), ("garbage", JknBadResponse),
    ("no-histori", JknBadResponse),
])
async def test_vclaim_history_failures(bpjs: tuple[FakeBpjs, str], mode: str,
                                       outcome: list[Visit] | type[JknError]) -> None:
    fake, base = bpjs
    fake.history_mode = mode
    backend = client(base)
    try:
        if isinstance(outcome, list):
            assert await backend.history(CARD_A, date(2026, 1, 1), date(2026, 2, 1)) == outcome
        else:
            with pytest.raises(outcome):
                await backend.history(CARD_A, date(2026, 1, 1), date(2026, 2, 1))
    finally:
        await backend.aclose()


async def test_vclaim_history_with_wrong_credentials(bpjs: tuple[FakeBpjs, str]) -> None:
    _, base = bpjs
    wrong = client(base, secret="not-the-secret")
    try:
        with pytest.raises(JknCredentialsRejected):
            await wrong.history(CARD_A, date(2026, 1, 1), date(2026, 2, 1))
    finally:
        await wrong.aclose()


async def test_backends_satisfy_the_protocol() -> None:
    backends: list[JknBackend] = [SandboxBackend(), client("http://127.0.0.1:9")]
    assert [b.label for b in backends] == ["sandbox", "VClaim"]
    assert bridging.sign is sign and bridging.decrypt_response is decrypt_response
    for backend in backends:
        await backend.aclose()


@pytest.mark.parametrize(("mode", "error"), [
    ("500", JknUnavailable), ("garbage", JknBadResponse), ("not-json", JknUnavailable),
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
    refused = VClaimBackend("http://127.0.0.1:9/vclaim", CONS_ID, SECRET, USER_KEY)
    try:
        await backend.lookup(Identifier(IdKind.NIK, NIK_A))
        fake.mode = "garbage"
        with pytest.raises(JknBadResponse):
            await backend.lookup(Identifier(IdKind.NIK, NIK_A))
        with pytest.raises(JknUnavailable):  # logs the retry: our log lines exist
            await refused.lookup(Identifier(IdKind.NIK, NIK_A))
    finally:
        await backend.aclose()
        await refused.aclose()
    # httpx's own request log is silenced by configure_logging (see test_logs.py).
    ours = [r for r in caplog.records if r.name.startswith("bot")]
    assert ours, "the check below would be empty"
    logged = json.dumps([r.getMessage() for r in ours] + [str(r.exc_info) for r in ours])
    for secret in (SECRET, USER_KEY, NIK_A, "BUDI SANTOSO", "081234567890"):
        assert secret not in logged
