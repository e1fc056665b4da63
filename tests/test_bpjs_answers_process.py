"""BPJS's real answers met from outside: `python -m bot run` on PCare served locally
(tests/fake_bpjs.py), a stranger and an owner talking to it over HTTP (issue 20)."""

from __future__ import annotations

from pathlib import Path

from bot import texts
from tests.fake_bpjs import FakeBpjs, Person
from tests.process import RunningBot

SITI = Person("3174014506900011", "0001234567891", "SITI RAHMAWATI")
TANPA_NIK = Person("", "0009876543210", "RINI ASTUTI", phone="081299990001",
                   fktp=("0112K002", "KLINIK PRATAMA 😀 SEHAT"))


async def test_over_http_refusals_read_as_cannot_send_and_a_nik_less_participant_is_saved(
        tmp_path: Path) -> None:
    bpjs = FakeBpjs(SITI, TANPA_NIK)
    await bpjs.start()
    cannot_send = texts.LOOKUP_FAILED.split("{masked}")[0]
    try:
        async with RunningBot(tmp_path, **bpjs.settings("pcare")) as bot:
            stranger = bot.chat(8100)
            await stranger.consent()
            await stranger.send("/tambah_kk", expect="Kirim")
            for shape in ("412", "201-invalid-nik", "204"):
                bpjs.shape = shape
                before = len(stranger.messages)
                await stranger.send(SITI.nik)
                await stranger.until_any(cannot_send, "tidak bisa dihubungi")
                shown = "\n".join(m.text for m in stranger.messages[before:])
                assert cannot_send in shown and "tidak bisa dihubungi" not in shown, shape
            bpjs.shape = "401-envelope"
            await stranger.send(SITI.nik, expect="masalah di pihak bot, bukan data Anda")

            bpjs.shape = None
            owner = bot.chat(8200)
            await owner.consent()
            await owner.add(TANPA_NIK.card, "Nenek")
            assert "NIK tidak diketahui · Kartu *********3210" in owner.reply
            assert "KLINIK PRATAMA 😀 SEHAT" in owner.reply
            await owner.send("/tambah_kk", expect="Kirim")
            await owner.send(TANPA_NIK.card, expect="sudah tersimpan sebagai «Nenek»")
            assert bot.read_db("SELECT count(*) FROM accounts WHERE chat_id = 8200") == [(1,)]
            assert bot.read_db("SELECT count(*) FROM accounts WHERE chat_id = 8100") == [(0,)]
    finally:
        await bpjs.stop()
    log = bot.stderr
    assert "ERROR" in log and "rejected the bridging credentials" in log
    for secret in (SITI.nik, SITI.card, TANPA_NIK.card, "Unauthorized"):
        assert secret not in log
