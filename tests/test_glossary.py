"""Plain Indonesian for BPJS's abbreviations and ICD-10 codes (issue 22 item 3)."""

from __future__ import annotations

import pytest

from bot import glossary
from bot.jkn import sandbox


@pytest.mark.parametrize(("raw", "plain"), [
    ("PBPU", "Mandiri (bayar sendiri)"),
    ("pbpu", "Mandiri (bayar sendiri)"),
    ("PBI APBN", "Ditanggung pemerintah pusat (PBI)"),
    ("PBI (APBD)", "Ditanggung pemerintah daerah (PBI daerah)"),
    ("PBI", "Ditanggung pemerintah (PBI)"),
    ("PPU", "Pekerja penerima upah (iuran lewat pemberi kerja)"),
    ("BP", "Bukan pekerja (mis. pensiunan, investor)"),
    ("PEKERJA MANDIRI", "Mandiri (bayar sendiri)"),
    ("TNI AD", "TNI AD"),
    ("", "-"),
])
def test_participant_types_read_plainly(raw: str, plain: str) -> None:
    assert glossary.participant_type(raw) == plain


def test_every_type_the_sandbox_sends_has_a_plain_name() -> None:
    for raw in sandbox.TYPES:
        assert glossary.participant_type(raw) != raw, raw


@pytest.mark.parametrize(("raw", "plain"), [
    ("KELAS I", "Kelas 1"), ("KELAS II", "Kelas 2"), ("kelas iii", "Kelas 3"),
    ("KELAS 2", "Kelas 2"), ("VIP", "VIP"), ("", "-"),
])
def test_classes_read_as_numbers(raw: str, plain: str) -> None:
    assert glossary.care_class(raw) == plain


def test_a_known_code_gets_its_indonesian_name_and_loses_the_english() -> None:
    assert (glossary.diagnosis("Z00.1 - Routine child health examination")
            == "Z00.1 – Pemeriksaan kesehatan rutin anak")
    assert glossary.diagnosis("i10") == "I10 – Tekanan darah tinggi (hipertensi)"


def test_an_unknown_code_is_shown_alone_and_other_text_untouched() -> None:
    assert glossary.diagnosis("Q99.9 - Chromosomal abnormality, unspecified") == "Q99.9"
    assert glossary.diagnosis("  Kontrol  ") == "Kontrol"


def test_every_diagnosis_the_sandbox_sends_has_an_indonesian_name() -> None:
    tables = (sandbox.PRIMARY_POLI, sandbox.HOSPITAL_POLI, sandbox.WARDS)
    for table in tables:
        for diagnoses in table.values():
            for raw in diagnoses:
                code = raw.split(" - ")[0]
                assert glossary.diagnosis(raw).startswith(f"{code} – "), raw
