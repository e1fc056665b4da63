"""Every answer shape BPJS's bridging gateways send (tests/fake_bpjs.py SHAPES), read by the
VClaim and PCare clients and met by a user: what each becomes (issue 20).

The expected outcomes are written out here, row by row, not taken from the client's own
table (bot/jkn/bridging.py ANSWERS), so a wrong row there cannot agree with itself."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lzstring import LZString

from bot import texts
from bot.devtools.harness import EmulatedChat
from bot.identity import Identifier, IdKind
from bot.jkn import pcare
from bot.jkn.base import (
    JknBackend,
    JknBadResponse,
    JknCredentialsRejected,
    JknError,
    JknInvalidRequest,
    JknNotFound,
    JknUnavailable,
)
from bot.jkn.bridging import ANSWERS, decrypt_response, from_utf16_units, to_utf16_units
from bot.jkn.pcare import PCareBackend
from bot.jkn.vclaim import VClaimBackend
from bot.services import Services, open_services
from storage.accounts_repo import AccountsRepo, DuplicateAccountError, NewAccount
from storage.crypto import Vault, generate_master_key
from storage.db import Database
from storage.keys import check_key, rotate_key
from tests.conftest import FakeClock, Phone, add_account, consent, make_settings, start_bot
from tests.fake_bpjs import (
    APP_CODE,
    CONS_ID,
    PASSWORD,
    SECRET,
    SHAPES,
    USER_KEY,
    USERNAME,
    FakeBpjs,
    Person,
)

TODAY = date.today()
SITI = Person("3174014506900011", "0001234567891", "SITI RAHMAWATI", visits=[
    {"diagnosa": "J06.9 - Acute upper respiratory infection", "jnsPelayanan": "2",
     "poli": "UMUM", "ppkPelayanan": "KLINIK SEHAT 🏥 MENTENG",
     "tglSep": (TODAY - timedelta(days=10)).isoformat(), "tglPlgSep": None}])
#: As the catalogue's own PCare sample: no NIK (``"noKTP": ""``).
TANPA_NIK = Person("", "0009876543210", "RINI ASTUTI", phone="081299990001",
                   fktp=("0112K002", "KLINIK PRATAMA 😀 SEHAT"), arrears=70_000)

#: What each shape must become, for a participant look-up.
EXPECTED: dict[str, type[JknError]] = {
    "201-not-found": JknNotFound, "201-no-data": JknNotFound,
    "201-invalid-nik": JknInvalidRequest, "201-range": JknInvalidRequest,
    "204": JknNotFound, "404-envelope": JknNotFound, "412": JknInvalidRequest,
    "400-envelope": JknInvalidRequest, "400-bare": JknBadResponse,
    "401-envelope": JknCredentialsRejected, "401-http": JknCredentialsRejected,
    "403-html": JknCredentialsRejected, "404-html": JknBadResponse,
    "429": JknUnavailable, "429-envelope": JknUnavailable,
    "500-envelope": JknUnavailable, "503-bare": JknUnavailable,
    "maintenance": JknUnavailable, "maintenance-200": JknUnavailable,
    "empty-response": JknBadResponse, "no-envelope": JknBadResponse,
    "empty-body": JknBadResponse, "unknown-code": JknBadResponse,
}


def test_every_shape_has_an_expected_outcome_and_a_rule_documents_each_kind() -> None:
    assert set(EXPECTED) == set(SHAPES)
    assert all(rule.shape for rule in ANSWERS)


@pytest.fixture
async def bpjs() -> AsyncIterator[FakeBpjs]:
    fake = FakeBpjs(Person(**vars(SITI)), Person(**vars(TANPA_NIK)))
    await fake.start()
    yield fake
    await fake.stop()


def backend_for(kind: str, fake: FakeBpjs) -> JknBackend:
    if kind == "vclaim":
        return VClaimBackend(f"{fake.url}/vclaim", CONS_ID, SECRET, USER_KEY)
    return PCareBackend(f"{fake.url}/pcare", CONS_ID, SECRET, USER_KEY, USERNAME, PASSWORD,
                        APP_CODE)


# -- the clients ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["vclaim", "pcare"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_each_shape_becomes_its_error_on_a_lookup(bpjs: FakeBpjs, kind: str,
                                                        shape: str) -> None:
    backend = backend_for(kind, bpjs)
    bpjs.shape = shape
    try:
        with pytest.raises(JknError) as raised:
            await backend.lookup(Identifier(IdKind.NIK, SITI.nik))
        assert type(raised.value) is EXPECTED[shape], shape
    finally:
        await backend.aclose()


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_each_shape_on_the_history_never_reads_as_no_visits_unless_it_says_so(
        bpjs: FakeBpjs, shape: str) -> None:
    backend = backend_for("vclaim", bpjs)
    bpjs.shape = shape
    try:
        if EXPECTED[shape] is JknNotFound:
            assert await backend.history(SITI.card, TODAY - timedelta(days=90), TODAY) == []
        else:
            with pytest.raises(JknError) as raised:
                await backend.history(SITI.card, TODAY - timedelta(days=90), TODAY)
            assert type(raised.value) is EXPECTED[shape], shape
    finally:
        await backend.aclose()


async def test_history_falls_back_to_the_older_tglawal_spelling_on_a_404(
        bpjs: FakeBpjs) -> None:
    backend = backend_for("vclaim", bpjs)
    bpjs.older_history_only = True
    try:
        visits = await backend.history(SITI.card, TODAY - timedelta(days=90), TODAY)
    finally:
        await backend.aclose()
    assert [v.facility for v in visits] == ["KLINIK SEHAT 🏥 MENTENG"]
    assert ["/tglMulai/" in c for c in bpjs.calls] == [True, False]
    assert "/tglAwal/" in bpjs.calls[1]


async def test_without_the_older_route_a_404_stays_a_bad_response(bpjs: FakeBpjs) -> None:
    backend = backend_for("vclaim", bpjs)
    bpjs.shape = "404-html"
    try:
        with pytest.raises(JknBadResponse):
            await backend.history(SITI.card, TODAY - timedelta(days=90), TODAY)
    finally:
        await backend.aclose()
    assert len(bpjs.calls) == 2, "tried tglMulai, then tglAwal once, no more"


@pytest.mark.parametrize("shape", ["401-envelope", "401-http", "403-html"])
async def test_rejected_credentials_alert_the_operator_without_identifiers(
        bpjs: FakeBpjs, shape: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backend = backend_for("pcare", bpjs)
    bpjs.shape = shape
    try:
        with pytest.raises(JknCredentialsRejected):
            await backend.lookup(Identifier(IdKind.CARD, SITI.card))
    finally:
        await backend.aclose()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR
              and r.name.startswith("bot")]
    assert len(errors) == 1 and "credentials" in errors[0].getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    for secret in (SITI.card, SITI.nik, SECRET, USER_KEY, PASSWORD, "Unauthorized"):
        assert secret not in logged


@pytest.mark.parametrize("kind", ["vclaim", "pcare"])
async def test_a_participant_without_a_nik_is_found_by_card_with_the_nik_unknown(
        bpjs: FakeBpjs, kind: str) -> None:
    backend = backend_for(kind, bpjs)
    try:
        found = await backend.lookup(Identifier(IdKind.CARD, TANPA_NIK.card))
    finally:
        await backend.aclose()
    assert (found.nik, found.card, found.name) == ("", TANPA_NIK.card, "RINI ASTUTI")
    assert found.fktp_name == "KLINIK PRATAMA 😀 SEHAT", "emoji survive LZ-string"
    found.fktp_name.encode("utf-8")  # no lone surrogates: Telegram would refuse them


# -- what a user sees --------------------------------------------------------------------

@pytest.fixture(params=["vclaim", "pcare"])
async def chat_on(request: pytest.FixtureRequest, bpjs: FakeBpjs, data_dir: Path,
                  clock: FakeClock, phone: Phone
                  ) -> AsyncIterator[tuple[str, EmulatedChat, Services]]:
    kind = str(request.param)
    services = await open_services(make_settings(data_dir, jkn_backend=kind), clock=clock,
                                   backend=backend_for(kind, bpjs), sms=phone)
    harness = await start_bot(services)
    try:
        chat = harness.chat(1001)
        await consent(chat)
        yield kind, chat, services
    finally:
        await harness.stop()
        await services.close()


@pytest.mark.parametrize(("shape", "reads_as_cannot_send"), [
    ("201-not-found", True), ("201-invalid-nik", True), ("204", True), ("412", True),
    ("404-envelope", True), ("400-envelope", True),
    ("maintenance", False), ("429", False), ("500-envelope", False), ("empty-response", False),
])
async def test_not_found_or_invalid_reads_as_cannot_send_never_as_unreachable(
        chat_on: tuple[str, EmulatedChat, Services], bpjs: FakeBpjs, shape: str,
        reads_as_cannot_send: bool) -> None:
    _, chat, services = chat_on
    bpjs.shape = shape
    await chat.send("/tambah_kk")
    await chat.send(SITI.nik)
    cannot_send = texts.LOOKUP_FAILED.split("{masked}")[0]
    unreachable = texts.BACKEND_DOWN[:40]
    if reads_as_cannot_send:
        assert cannot_send in chat.last_text and unreachable not in chat.last_text
    else:
        assert unreachable in chat.last_text and cannot_send not in chat.last_text
    assert await services.accounts.list(1001) == []


async def test_rejected_credentials_tell_the_user_to_tell_the_operator(
        chat_on: tuple[str, EmulatedChat, Services], bpjs: FakeBpjs) -> None:
    _, chat, _ = chat_on
    bpjs.shape = "401-envelope"
    await chat.send("/tambah_kk")
    await chat.send(SITI.nik)
    assert chat.last_text == texts.BACKEND_REJECTED


async def test_a_participant_without_a_nik_is_saved_by_card_and_not_twice(
        chat_on: tuple[str, EmulatedChat, Services], bpjs: FakeBpjs, phone: Phone) -> None:
    kind, chat, services = chat_on
    await add_account(chat, phone, TANPA_NIK.card, "Nenek")
    card = chat.last_text
    assert "NIK tidak diketahui · Kartu *********3210" in card
    assert "RINI ASTUTI" in card and "KLINIK PRATAMA 😀 SEHAT" in card
    if kind == "pcare":
        assert "Rp70.000" in card
    [saved] = await services.accounts.list(1001)
    assert (saved.nik, saved.card, saved.label, saved.lookup_kind) == (
        "", TANPA_NIK.card, "Nenek", "card")

    await chat.send("/tambah_kk")
    await chat.send(TANPA_NIK.card)
    assert texts.ALREADY_CACHED.format(label="Nenek") in chat.last_text, "found by card"
    assert len(await services.accounts.list(1001)) == 1

    await chat.send("/status")
    assert "NIK tidak diketahui · Kartu *********3210" in chat.last_text
    await chat.send("/akun")
    assert "📌 Nenek · NIK tidak diketahui" in chat.buttons


async def test_the_otp_caps_count_a_participant_without_a_nik_by_their_card(
        chat_on: tuple[str, EmulatedChat, Services]) -> None:
    """Not under one shared empty NIK, where strangers' wrong codes for one NIK-less
    participant would lock out every other."""
    _, chat, services = chat_on
    await chat.send("/tambah_kk")
    await chat.send(TANPA_NIK.card)
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply
    found = await services.otp.repo.keys_of(1001)
    assert found is not None
    assert found[0].subject == services.vault.participant_key(TANPA_NIK.card)
    assert found[0].subject != services.vault.participant_key("")


@pytest.mark.parametrize(("shape", "shown"), [
    ("201-range", texts.HISTORY_REFUSED.format(label="Ibu")),
    ("201-invalid-nik", texts.HISTORY_REFUSED.format(label="Ibu")),
    ("412", texts.HISTORY_REFUSED.format(label="Ibu")),
    ("maintenance", texts.HISTORY_UNAVAILABLE.format(label="Ibu")),
    ("201-no-data", texts.HISTORY_EMPTY),
])
async def test_a_refused_history_request_never_reads_as_no_visits(
        bpjs: FakeBpjs, data_dir: Path, clock: FakeClock, phone: Phone, shape: str,
        shown: str) -> None:
    services = await open_services(make_settings(data_dir, jkn_backend="vclaim"),
                                   clock=clock, backend=backend_for("vclaim", bpjs), sms=phone)
    harness = await start_bot(services)
    try:
        chat = harness.chat(1001)
        await consent(chat)
        await add_account(chat, phone, SITI.nik, "Ibu")
        bpjs.shape = shape
        await chat.send("/riwayat")
        assert shown in chat.last_text
        if shown != texts.HISTORY_EMPTY:
            assert texts.HISTORY_EMPTY not in chat.last_text
        bpjs.shape = None
        bpjs.older_history_only = True
        await chat.send("/riwayat")
        assert "KLINIK SEHAT 🏥 MENTENG" in chat.last_text, "older spelling, emoji intact"
    finally:
        await harness.stop()
        await services.close()


# -- text outside the Basic Multilingual Plane ------------------------------------------

#: compressToEncodedURIComponent of these texts by the reference JavaScript algorithm
#: (lz-string 1.4.4, run on JavaScript strings, i.e. UTF-16 code units, under node).
JS_VECTORS = {
    '{"nmProvider":"KLINIK 🏥 SEHAT"}':
        "N4IgdgtgCgTg9gNwJYBMCmMQC4QGkAyAkgHKG4AEgPBuCn++QMoCiAEgIIAqIAvkA",
    "😀😀 Puskesmas 😀": "rwbgA90AgBQVwZwawKawLYENblEA",
}


def _bpjs_encrypt(compressed: str, timestamp: str) -> str:
    """AES-256-CBC as BPJS does it, around an LZ-string stream made elsewhere."""
    key = hashlib.sha256(f"{CONS_ID}{SECRET}{timestamp}".encode()).digest()
    padder = padding.PKCS7(128).padder()
    padded = padder.update(compressed.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def test_a_facility_name_compressed_by_the_reference_javascript_decodes_intact() -> None:
    text = '{"nmProvider":"KLINIK 🏥 SEHAT"}'
    got = decrypt_response(_bpjs_encrypt(JS_VECTORS[text], "1764671000"), CONS_ID, SECRET,
                           "1764671000")
    assert got == {"nmProvider": "KLINIK 🏥 SEHAT"}
    got["nmProvider"].encode("utf-8")  # no lone surrogates left


@pytest.mark.parametrize("text", sorted(JS_VECTORS))
def test_both_directions_agree_with_the_reference_javascript(text: str) -> None:
    vector = JS_VECTORS[text]
    assert from_utf16_units(LZString().decompressFromEncodedURIComponent(vector)) == text
    assert LZString().compressToEncodedURIComponent(to_utf16_units(text)) == vector


def test_a_lone_surrogate_is_replaced_visibly() -> None:
    assert from_utf16_units("KLINIK \ud83d SEHAT") == "KLINIK \ufffd SEHAT"
    assert from_utf16_units("\ud83d\ude00") == "😀"


# -- accounts without a NIK in the database ---------------------------------------------

def _no_nik(card: str, label: str = "Nenek") -> NewAccount:
    return NewAccount(nik="", card=card, name="RINI ASTUTI", phone="+6281299990001",
                      label=label, status=None, lookup_kind="card")


async def test_accounts_without_a_nik_are_told_apart_by_card_also_after_a_key_rotation(
        tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "kk.sqlite3")
    repo = AccountsRepo(db, await check_key(db, Vault(generate_master_key())))
    try:
        first, _ = await repo.add(7, _no_nik("0009876543210"), max_accounts=3, now=1.0)
        await repo.add(7, _no_nik("0009876543211", "Kakek"), max_accounts=3, now=2.0)
        assert [(a.nik, a.card) for a in await repo.list(7)] == [
            ("", "0009876543210"), ("", "0009876543211")], "two NIK-less accounts, both kept"
        with pytest.raises(DuplicateAccountError):
            await repo.add(7, _no_nik("0009876543210", "lagi"), max_accounts=3, now=3.0)
        with pytest.raises(DuplicateAccountError):  # the same card, now with its NIK
            await repo.add(7, NewAccount(nik="3174014506900011", card="0009876543210",
                                         name="RINI ASTUTI", phone="+6281299990001",
                                         label="lagi"), max_accounts=3, now=3.0)
        assert await repo.find_by_nik(7, "") is None
        assert (await repo.find_by_card(7, "0009876543210") or first).slot == first.slot
        assert await repo.find_by_card(8, "0009876543210") is None, "another chat's"

        raw, rewrapped = await rotate_key(db, repo.vault, None)
        assert rewrapped == 1, "one chat key"
        repo = AccountsRepo(db, Vault(raw))
        with pytest.raises(DuplicateAccountError):
            await repo.add(7, _no_nik("0009876543211", "lagi"), max_accounts=3, now=4.0)
        assert len(await repo.list(7)) == 2
    finally:
        await db.close()


# -- the unit assumed for PCare's tunggakan ----------------------------------------------

def test_tunggakan_is_read_in_the_one_unit_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pcare.TUNGGAKAN_UNIT is pcare.TunggakanUnit.RUPIAH, \
        "an assumption: change it here and in docs/decisions.md together"
    peserta = {"noKartu": TANPA_NIK.card, "nama": "RINI", "aktif": False, "noKTP": "",
               "tunggakan": 105000}
    found = pcare.participant_from_pcare(peserta, TODAY)
    assert (found.unpaid_amount, found.unpaid_months, found.arrears_known) == (105000, 0, True)
    monkeypatch.setattr(pcare, "TUNGGAKAN_UNIT", pcare.TunggakanUnit.MONTHS)
    found = pcare.participant_from_pcare({**peserta, "tunggakan": 3}, TODAY)
    assert (found.unpaid_amount, found.unpaid_months) == (0, 3)
    assert pcare.arrears_of("n/a") is None and pcare.arrears_of(None) is None
