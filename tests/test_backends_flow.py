"""The conversations on each backend (sandbox, VClaim, PCare): add, switch, status and
/riwayat, against BPJS's bridging served locally (tests/fake_bpjs.py), and a card that
never implies what its backend cannot know."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.jkn.base import JknBackend
from bot.jkn.pcare import PCareBackend
from bot.jkn.vclaim import VClaimBackend
from bot.services import Services, open_services
from tests.conftest import (
    NIK_A,
    NIK_B,
    FakeClock,
    FastSandbox,
    Phone,
    add_account,
    consent,
    make_settings,
    start_bot,
)
from tests.fake_bpjs import (
    APP_CODE,
    CONS_ID,
    PASSWORD,
    SECRET,
    USER_KEY,
    USERNAME,
    FakeBpjs,
    Person,
)

TODAY = date.today()
SITI = Person("3174014506900011", "0001234567891", "SITI RAHMAWATI", visits=[
    {"diagnosa": "J06.9 - Acute upper respiratory infection", "jnsPelayanan": "2",
     "poli": "UMUM", "ppkPelayanan": "PUSKESMAS MENTENG",
     "tglSep": (TODAY - timedelta(days=40)).isoformat(), "tglPlgSep": None},
    {"diagnosa": "A91 - Dengue haemorrhagic fever", "jnsPelayanan": "1", "poli": "",
     "ppkPelayanan": "RSUD CIBINONG", "tglSep": (TODAY - timedelta(days=6)).isoformat(),
     "tglPlgSep": (TODAY - timedelta(days=2)).isoformat()},
    {"diagnosa": "K04.0 - Pulpitis", "jnsPelayanan": "2", "poli": "GIGI",
     "ppkPelayanan": "PUSKESMAS MENTENG", "tglSep": (TODAY - timedelta(days=200)).isoformat(),
     "tglPlgSep": None},
])
BUDI = Person("3273012304850022", "0001234567892", "BUDI SANTOSO", phone="+62 857 1234 0022",
              active=False, status="TIDAK AKTIF", arrears=105_000)


@pytest.fixture
async def bpjs() -> AsyncIterator[FakeBpjs]:
    fake = FakeBpjs(Person(**vars(SITI)), Person(**vars(BUDI)))
    await fake.start()
    yield fake
    await fake.stop()


def backend_for(kind: str, fake: FakeBpjs) -> JknBackend:
    if kind == "vclaim":
        return VClaimBackend(f"{fake.url}/vclaim", CONS_ID, SECRET, USER_KEY)
    return PCareBackend(f"{fake.url}/pcare", CONS_ID, SECRET, USER_KEY, USERNAME, PASSWORD,
                        APP_CODE)


@pytest.fixture(params=["vclaim", "pcare"])
async def on_bridging(request: pytest.FixtureRequest, bpjs: FakeBpjs, data_dir: Path,
                      clock: FakeClock, phone: Phone
                      ) -> AsyncIterator[tuple[str, EmulatedChat, Services]]:
    kind = str(request.param)
    services = await open_services(make_settings(data_dir, jkn_backend=kind), clock=clock,
                                   backend=backend_for(kind, bpjs), sms=phone)
    harness = await start_bot(services)
    try:
        yield kind, harness.chat(1001), services
    finally:
        await harness.stop()
        await services.close()


async def test_add_switch_status_and_history_on_each_bridging_backend(
        on_bridging: tuple[str, EmulatedChat, Services], phone: Phone,
        bpjs: FakeBpjs) -> None:
    kind, chat, services = on_bridging
    await consent(chat)
    await add_account(chat, phone, SITI.nik, "Ibu")
    assert phone.inbox[-1][0] == "+6281234567042", "the code went to the phone on file"
    await add_account(chat, phone, BUDI.card, "Ayah")  # by card number
    assert phone.inbox[-1][0] == "+6285712340022"
    await chat.send("/akun")
    await chat.tap("Ibu")
    assert [(a.label, a.active) for a in await services.accounts.list(1001)] == [
        ("Ibu", True), ("Ayah", False)]

    await chat.send("/status semua")
    everything = chat.last_text
    assert "SITI RAHMAWATI" in everything and "BUDI SANTOSO" in everything
    family = "tidak tersedia lewat VClaim" if kind == "vclaim" else "tidak tersedia lewat PCare"
    assert everything.count(f"Anggota keluarga: {family}") == 2
    if kind == "vclaim":
        assert everything.count("Tunggakan: tidak tersedia lewat VClaim") == 2, \
            "VClaim cannot know arrears: said so, not left out, not zero"
    else:
        assert "TIDAK AKTIF" in everything and "Tunggakan: Rp105.000" in everything
        assert "Tunggakan: tidak ada" in everything, "Ibu owes nothing, and PCare knows it"

    calls = len(bpjs.calls)
    await chat.send("/riwayat")
    shown = chat.last_message
    if kind == "pcare":
        assert "tidak tersedia lewat PCare" in shown.text
        assert len(bpjs.calls) == calls, "nothing asked of a backend that cannot tell"
        return
    assert shown.protected, "diagnoses cannot be forwarded"
    assert "Riwayat kunjungan «Ibu»" in shown.text
    dates = re.findall(r"(\d\d/\d\d/\d{4}) —", shown.text)
    assert dates == [(TODAY - timedelta(days=d)).strftime("%d/%m/%Y") for d in (6, 40)], \
        "newest first, and only the last 90 days"
    assert "RSUD CIBINONG · rawat inap, pulang" in shown.text
    assert "PUSKESMAS MENTENG · poli UMUM · rawat jalan" in shown.text
    assert "A91 – Demam berdarah dengue (DBD)" in shown.text and "Pulpitis" not in shown.text
    assert "Dengue haemorrhagic" not in shown.text, "the English name is not shown"

    await chat.send("/akun")
    await chat.tap("Ayah")
    await chat.send("/riwayat")
    assert "Belum ada kunjungan dalam 90 hari terakhir" in chat.last_text
    bpjs.down = True
    await chat.send("/riwayat")
    assert "belum bisa diambil" in chat.last_text
    assert "Belum ada kunjungan" not in chat.last_text, "a failure is not 'no visits'"


async def test_history_on_the_sandbox_from_the_card_and_from_every_account(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, clock: FakeClock) -> None:
    await chat.send("/riwayat")
    assert "Belum ada akun" in chat.last_text and chat.buttons == ["➕ Tambah keluarga"]
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, "3174014506900005", "Kosong")  # a card with no visits
    await chat.send("/status")
    assert "🩺 Riwayat" in chat.buttons
    await chat.tap("🩺 Riwayat")
    assert "Riwayat kunjungan «Kosong»" in chat.last_text
    assert "Belum ada kunjungan dalam 90 hari terakhir" in chat.last_text
    await chat.send("/status semua")
    assert {"🩺 Riwayat «Ibu»", "🩺 Riwayat «Kosong»"} <= set(chat.buttons)
    await chat.tap("🩺 Riwayat «Ibu»")
    text = chat.last_text
    assert "Riwayat kunjungan «Ibu»" in text and "Mode sandbox — data contoh" in text
    assert chat.last_message.protected
    backend.down = True
    await chat.send("/riwayat")
    assert "belum bisa diambil" in chat.last_text
    backend.down = False
    clock.advance(31 * 86400)
    await chat.send("/riwayat")
    assert "Verifikasi ulang" in chat.buttons and "sudah lewat 30 hari" in chat.last_text


async def test_a_forged_history_button_shows_nothing_of_another_chat(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    other = bot.chat(2002)
    await consent(other)
    await add_account(other, phone, NIK_B, "Milik orang lain")
    theirs = (await services.accounts.list(2002))[0].slot
    await consent(chat)
    answer = await chat.tap_data(f"hist:{theirs}")
    assert answer is not None and "tidak ada di daftar" in answer["text"]
    assert not any("Riwayat kunjungan" in m.text for m in chat.bot_messages)


def test_pcare_settings_are_checked_like_vclaims(tmp_path: Path) -> None:
    from tests.process import cli

    pcare = {"JKN_BACKEND": "pcare", "OTP_SENDER": "http",
             "SMS_GATEWAY_URL": "https://sms.example.id", "SMS_GATEWAY_TOKEN": "t"}
    missing = cli(tmp_path, "backup", str(tmp_path / "x"), **pcare)
    assert missing.returncode == 2 and "PCARE_BASE_URL" in missing.stderr
    complete = {**pcare, "PCARE_BASE_URL": "https://apijkn.example/pcare-rest",
                "PCARE_CONS_ID": "1", "PCARE_SECRET_KEY": "s", "PCARE_USER_KEY": "u",
                "PCARE_USERNAME": "pkm", "PCARE_PASSWORD": "p"}
    bad_code = cli(tmp_path, "backup", str(tmp_path / "x"), **complete, PCARE_APP_CODE="abc")
    assert bad_code.returncode == 2 and "PCARE_APP_CODE" in bad_code.stderr
    assert len(bad_code.stderr.strip().splitlines()) == 1
    console = cli(tmp_path, "backup", str(tmp_path / "x"), **{**complete, "OTP_SENDER":
                                                             "console"})
    assert console.returncode == 2 and "OTP_SENDER" in console.stderr
    ok = cli(tmp_path, "backup", str(tmp_path / "x"), **complete)
    assert "no database" in ok.stderr, "accepted: it went on to look for the database"
    assert "p" not in ok.stderr.split("error:")[0]
