"""Plain Indonesian for the words BPJS answers with (issue 22, decision in docs/decisions.md).

BPJS names a participant's type with abbreviations (PBPU, PPU, PBI APBN, BP), the class as
"KELAS I", and a diagnosis as an ICD-10 code followed by the English (or a BPJS-internal)
name. A mother checking her parents' cards knows none of these. This module turns them into
short plain Indonesian; what it does not know it shows as it came (never guessed).
"""

from __future__ import annotations

import re

#: Participant types, by the abbreviation BPJS answers with (upper case, spaces collapsed).
#: The longest key that starts the answer wins ("PBI APBN" before "PBI").
PARTICIPANT_TYPES: dict[str, str] = {
    "PBPU": "Mandiri (bayar sendiri)",
    "PEKERJA MANDIRI": "Mandiri (bayar sendiri)",
    "PEKERJA BUKAN PENERIMA UPAH": "Mandiri (bayar sendiri)",
    "BP": "Bukan pekerja (mis. pensiunan, investor)",
    "BUKAN PEKERJA": "Bukan pekerja (mis. pensiunan, investor)",
    "PPU": "Pekerja penerima upah (iuran lewat pemberi kerja)",
    "PEKERJA PENERIMA UPAH": "Pekerja penerima upah (iuran lewat pemberi kerja)",
    "PBI APBN": "Ditanggung pemerintah pusat (PBI)",
    "PBI APBD": "Ditanggung pemerintah daerah (PBI daerah)",
    "PBI": "Ditanggung pemerintah (PBI)",
    "PENERIMA BANTUAN IURAN": "Ditanggung pemerintah (PBI)",
}

_CLASS = re.compile(r"^\s*KELAS\s+(I{1,3}|[123])\s*$", re.IGNORECASE)
_ROMAN = {"I": "1", "II": "2", "III": "3", "1": "1", "2": "2", "3": "3"}

#: Common ICD-10 codes seen at a puskesmas, a klinik or a hospital, in plain Indonesian.
ICD10_ID: dict[str, str] = {
    "A01.0": "Demam tifoid (tipes)",
    "A09": "Diare dan radang lambung-usus karena infeksi",
    "A15.0": "TBC paru",
    "A16.2": "TBC paru",
    "A90": "Demam dengue",
    "A91": "Demam berdarah dengue (DBD)",
    "B01.9": "Cacar air",
    "B35.4": "Kurap di badan",
    "B86": "Kudis (skabies)",
    "D64.9": "Anemia (kurang darah)",
    "E03.9": "Hipotiroid (kurang hormon tiroid)",
    "E11.9": "Diabetes melitus tipe 2 tanpa komplikasi",
    "E14.9": "Diabetes melitus tanpa komplikasi",
    "E78.5": "Kolesterol tinggi",
    "E79.0": "Asam urat tinggi",
    "F32.9": "Depresi",
    "G43.9": "Migrain",
    "G44.2": "Sakit kepala tegang",
    "H10.9": "Radang selaput mata (belekan)",
    "H25.9": "Katarak karena usia",
    "H52.1": "Rabun jauh (minus)",
    "H52.4": "Rabun dekat karena usia (plus)",
    "H66.9": "Radang telinga tengah (congek)",
    "I10": "Tekanan darah tinggi (hipertensi)",
    "I11.9": "Penyakit jantung karena hipertensi",
    "I20.9": "Angina (nyeri dada jantung)",
    "I25.1": "Penyakit jantung koroner",
    "I50.0": "Gagal jantung",
    "I50.9": "Gagal jantung",
    "I63.9": "Stroke karena sumbatan",
    "I64": "Stroke",
    "I69.4": "Gejala sisa stroke",
    "J00": "Pilek (selesma)",
    "J02.9": "Radang tenggorokan",
    "J03.9": "Radang amandel",
    "J06.9": "Infeksi saluran napas atas (ISPA)",
    "J18.9": "Radang paru (pneumonia)",
    "J20.9": "Radang saluran napas (bronkitis akut)",
    "J30.4": "Rinitis alergi (pilek alergi)",
    "J44.9": "Penyakit paru obstruktif kronis (PPOK)",
    "J45.9": "Asma",
    "K02.1": "Gigi berlubang (karies dentin)",
    "K04.0": "Radang pulpa gigi",
    "K04.1": "Saraf gigi mati",
    "K05.1": "Radang gusi kronis",
    "K08.8": "Gangguan gigi dan jaringan penyangga lainnya",
    "K21.9": "Asam lambung naik (GERD)",
    "K25.9": "Tukak lambung",
    "K29.7": "Radang lambung (gastritis)",
    "K30": "Dispepsia (sakit maag)",
    "K35.8": "Radang usus buntu akut",
    "K40.9": "Hernia di lipat paha (turun berok)",
    "K59.0": "Sembelit",
    "L02.9": "Bisul",
    "L20.9": "Eksim (dermatitis atopik)",
    "L30.9": "Radang kulit (dermatitis)",
    "L50.9": "Biduran (urtikaria)",
    "M10.9": "Gout (asam urat)",
    "M17.9": "Pengapuran sendi lutut",
    "M54.5": "Nyeri pinggang bawah",
    "M79.1": "Nyeri otot",
    "N18.5": "Gagal ginjal kronis stadium 5",
    "N39.0": "Infeksi saluran kemih",
    "O80.9": "Persalinan normal",
    "O82.9": "Persalinan dengan operasi caesar",
    "R05": "Batuk",
    "R10.4": "Nyeri perut",
    "R50.9": "Demam",
    "R51": "Sakit kepala",
    "T14.1": "Luka terbuka",
    "Z00.0": "Pemeriksaan kesehatan umum",
    "Z00.1": "Pemeriksaan kesehatan rutin anak",
    "Z09.8": "Kontrol setelah pengobatan",
    "Z23": "Imunisasi",
    "Z30.4": "Kontrol KB (alat/obat kontrasepsi)",
    "Z34.9": "Pemeriksaan kehamilan normal",
    "Z35.9": "Pemeriksaan kehamilan berisiko",
    "Z39.2": "Kontrol rutin setelah melahirkan",
}

_ICD = re.compile(r"^\s*([A-Z]\d{2}(?:\.\d{1,2})?)\b\s*(?:[-–:]\s*(.*))?$", re.IGNORECASE)


def participant_type(raw: str) -> str:
    """'PBPU' -> 'Mandiri (bayar sendiri)'; unknown values are shown as they came."""
    key = " ".join(raw.upper().replace("(", " ").replace(")", " ").split())
    for abbreviation in sorted(PARTICIPANT_TYPES, key=len, reverse=True):
        if key == abbreviation or key.startswith(abbreviation + " "):
            return PARTICIPANT_TYPES[abbreviation]
    return raw.strip() or "-"


def care_class(raw: str) -> str:
    """'KELAS I' -> 'Kelas 1'; unknown values are shown as they came."""
    match = _CLASS.match(raw)
    return f"Kelas {_ROMAN[match.group(1).upper()]}" if match else (raw.strip() or "-")


def diagnosis(raw: str) -> str:
    """'Z00.1 - Routine child health examination' -> 'Z00.1 – Pemeriksaan kesehatan rutin
    anak'. A code not in the table is shown alone (the English name is dropped: a layperson
    cannot read it, a doctor can look the code up); text that is not a code stays as it is.
    """
    match = _ICD.match(raw)
    if not match:
        return raw.strip()
    code = match.group(1).upper()
    name = ICD10_ID.get(code)
    return f"{code} – {name}" if name else code
