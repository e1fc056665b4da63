"""The sandbox backend: deterministic synthetic participants and visits, no network.

The same identifier always yields the same participant; the last four digits select the
special cases below (also in the README) so every path of the bot can be shown without real data:

====  ====================================================================
0000  participant not found (a card ending 0000 also has no visits)
0001  inactive, unpaid contributions for 3 months
0002  no phone number on file
0003  answers after 3 seconds (lookup and history)
0004  backend error, HTTP 503 (lookup and history)
0005  no visits in the service history: a card ending 0005 has none, and a NIK ending
      0005 gets a card ending 0005 so the case is reachable from a NIK too
====  ====================================================================

Service history (:meth:`SandboxBackend.history`) is generated month by month from the card
number alone, so any date range gives the same visits as the months it covers (a shorter
range gives a subset, never different visits); nothing before JKN began (2014-01-01) or
after the sandbox's today. Visits are outpatient at puskesmas, klinik or hospital poli, and
now and then an inpatient stay at a hospital with its discharge date (None while still
admitted, i.e. when discharge would fall after today; always None for outpatient visits).
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

from bot.identity import Identifier, IdKind
from bot.jkn.base import (
    CLASS_PRICES,
    Capability,
    FamilyMember,
    JknNotFound,
    JknUnavailable,
    Participant,
    Visit,
)

FIRST_NAMES_M = ("Budi", "Agus", "Slamet", "Joko", "Rudi", "Hendra", "Wahyu", "Dedi",
                 "Bambang", "Eko", "Fajar", "Rizky", "Andi", "Yusuf", "Made", "Ketut")
FIRST_NAMES_F = ("Siti", "Sri", "Dewi", "Rina", "Ayu", "Nur", "Wulan", "Fitri", "Putri",
                 "Lestari", "Indah", "Ratna", "Yuliani", "Kartika", "Ni Luh", "Maria")
SURNAMES = ("Santoso", "Wijaya", "Hidayat", "Saputra", "Pratama", "Kusuma", "Nugroho",
            "Siregar", "Lubis", "Nasution", "Simanjuntak", "Harahap", "Wibowo", "Setiawan",
            "Rahmawati", "Sulistyo")
CLINICS = (
    ("0112R001", "Puskesmas Kecamatan Menteng"),
    ("0114U002", "Klinik Pratama Sehat Bersama"),
    ("0901R003", "Puskesmas Cibinong"),
    ("1301U004", "Klinik Pratama Harapan Kita"),
    ("0221R005", "Puskesmas Kedungkandang"),
    ("1702U006", "dr. Sri Handayani (Praktik Dokter)"),
)
TYPES = ("PBPU", "PPU", "PBI APBN", "PBI APBD", "BP")
CLASSES = ("KELAS I", "KELAS II", "KELAS III")
PHONE_PREFIXES = ("0812", "0813", "0821", "0852", "0857", "0878", "0896", "0811")
PROVINCES = ("31", "32", "33", "34", "35", "36", "51", "12", "13", "73")

SLOW_SECONDS = 3.0
#: Card endings (last four digits) that have no service history at all.
NO_VISITS = ("0000", "0005")
#: JKN began on 1 January 2014; the sandbox has no visits before that.
JKN_START = date(2014, 1, 1)

PRIMARY_FACILITIES = (
    "Puskesmas Kecamatan Menteng", "Puskesmas Cibinong", "Puskesmas Kedungkandang",
    "Puskesmas Kecamatan Tebet", "Klinik Pratama Sehat Bersama",
    "Klinik Pratama Harapan Kita",
)
HOSPITALS = (
    "RSUD Cibinong", "RSUD Tarakan Jakarta", "RSUD Dr. Saiful Anwar Malang",
    "RSUD Kota Bogor", "RSUP Dr. Sardjito", "RS Islam Jakarta Cempaka Putih",
)
#: Outpatient poli at a puskesmas or klinik, and the diagnoses seen there.
PRIMARY_POLI: dict[str, tuple[str, ...]] = {
    "UMUM": (
        "J06.9 - Acute upper respiratory infection, unspecified",
        "I10 - Essential (primary) hypertension",
        "E11.9 - Non-insulin-dependent diabetes mellitus without complications",
        "K30 - Dyspepsia",
        "M79.1 - Myalgia",
        "R51 - Headache",
    ),
    "GIGI": (
        "K02.1 - Caries of dentine",
        "K04.0 - Pulpitis",
        "K05.1 - Chronic gingivitis",
        "K08.8 - Other specified disorders of teeth and supporting structures",
    ),
    "KIA": (
        "Z34.9 - Supervision of normal pregnancy, unspecified",
        "Z30.4 - Surveillance of contraceptive drugs",
        "Z00.1 - Routine child health examination",
    ),
    "ANAK": (
        "A09 - Diarrhoea and gastroenteritis of presumed infectious origin",
        "J06.9 - Acute upper respiratory infection, unspecified",
        "R50.9 - Fever, unspecified",
    ),
}
#: Specialist poli at a hospital (outpatient, on referral) and the diagnoses seen there.
HOSPITAL_POLI: dict[str, tuple[str, ...]] = {
    "PENYAKIT DALAM": (
        "E11.9 - Non-insulin-dependent diabetes mellitus without complications",
        "I10 - Essential (primary) hypertension",
        "N18.5 - Chronic kidney disease, stage 5",
    ),
    "JANTUNG": (
        "I50.0 - Congestive heart failure",
        "I25.1 - Atherosclerotic heart disease",
    ),
    "MATA": (
        "H25.9 - Senile cataract, unspecified",
        "H52.1 - Myopia",
    ),
    "PARU": (
        "A15.0 - Tuberculosis of lung, confirmed by sputum microscopy",
        "J44.9 - Chronic obstructive pulmonary disease, unspecified",
    ),
    "SARAF": (
        "G43.9 - Migraine, unspecified",
        "I69.4 - Sequelae of stroke, not specified as haemorrhage or infarction",
    ),
}
#: The wards of an inpatient stay and the diagnoses that bring people there.
WARDS: dict[str, tuple[str, ...]] = {
    "PENYAKIT DALAM": (
        "A01.0 - Typhoid fever",
        "A91 - Dengue haemorrhagic fever",
        "E11.9 - Non-insulin-dependent diabetes mellitus without complications",
    ),
    "ANAK": (
        "A09 - Diarrhoea and gastroenteritis of presumed infectious origin",
        "J18.9 - Pneumonia, unspecified",
        "A91 - Dengue haemorrhagic fever",
    ),
    "OBGYN": (
        "O80.9 - Single spontaneous delivery, unspecified",
        "O82.9 - Delivery by caesarean section, unspecified",
    ),
    "BEDAH": (
        "K35.8 - Acute appendicitis, other and unspecified",
        "K40.9 - Unilateral or unspecified inguinal hernia, without obstruction or gangrene",
    ),
}


class _Dice:
    """A deterministic stream of numbers from one identifier."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._counter = 0

    def number(self, modulo: int) -> int:
        self._counter += 1
        digest = hashlib.sha256(self._seed + b"|%d" % self._counter).digest()
        return int.from_bytes(digest[:8], "big") % modulo

    def pick(self, items: tuple[str, ...]) -> str:
        return items[self.number(len(items))]

    def digits(self, count: int) -> str:
        return "".join(str(self.number(10)) for _ in range(count))


def _birth_from_nik(nik: str) -> tuple[str, str]:
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    sex = "P" if day > 40 else "L"
    day = day - 40 if day > 40 else day
    century = 2000 if year <= date.today().year % 100 else 1900
    day = min(day, 28)
    return f"{century + year:04d}-{month:02d}-{day:02d}", sex


def _age(birth: str, today: date) -> int:
    born = date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _months(start: date, end: date) -> list[date]:
    """The first day of every month from start's month to end's month."""
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


class SandboxBackend:
    """Synthetic participants; clearly marked ``sandbox=True``."""

    name = "sandbox"
    label = "sandbox"
    capabilities = frozenset({Capability.ARREARS, Capability.FAMILY, Capability.HISTORY})

    def __init__(self, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 today: Callable[[], date] = date.today) -> None:
        self._sleep = sleep
        self._today = today

    async def lookup(self, identifier: Identifier) -> Participant:
        case = identifier.value[-4:]
        if case == "0000":
            raise JknNotFound("sandbox: not found")
        if case == "0003":
            await self._sleep(SLOW_SECONDS)
        if case == "0004":
            raise JknUnavailable("sandbox: HTTP 503")
        return self.participant(identifier)

    def participant(self, identifier: Identifier) -> Participant:
        dice = _Dice(f"{identifier.kind}:{identifier.value}")
        if identifier.kind is IdKind.NIK:
            nik = identifier.value
            card = "0001" + dice.digits(9)
            if nik.endswith("0005"):  # "no visits" must be reachable from a NIK
                card = card[:-4] + "0005"
        else:
            card = identifier.value
            day = 1 + dice.number(28) + (40 if dice.number(2) else 0)
            nik = (dice.pick(PROVINCES) + f"{1 + dice.number(70):02d}{1 + dice.number(40):02d}"
                   f"{day:02d}{1 + dice.number(12):02d}{dice.number(100):02d}"
                   + card[-4:])
        birth, sex = _birth_from_nik(nik)
        first = dice.pick(FIRST_NAMES_F if sex == "P" else FIRST_NAMES_M)
        surname = dice.pick(SURNAMES)
        name = f"{first} {surname}".upper()
        case = identifier.value[-4:]
        type_text = dice.pick(TYPES)
        class_text = "KELAS III" if type_text.startswith("PBI") else dice.pick(CLASSES)
        fktp_code, fktp_name = CLINICS[dice.number(len(CLINICS))]
        active = case != "0001"
        months = 3 if not active else 0
        if not active:
            type_text, class_text = "PBPU", dice.pick(CLASSES)
        phone = None if case == "0002" else "+62" + dice.pick(PHONE_PREFIXES)[1:] + dice.digits(8)
        family = self._family(dice, surname, sex, active)
        price = CLASS_PRICES.get(class_text, 0) if type_text == "PBPU" else 0
        status_code, status_text = ("0", "AKTIF") if active else ("1", "TIDAK AKTIF")
        return Participant(
            name=name, nik=nik, card=card, sex=sex, birth_date=birth,
            age=_age(birth, self._today()), status_code=status_code, status_text=status_text,
            active=active, type_text=type_text, class_text=class_text, fktp_code=fktp_code,
            fktp_name=fktp_name, tmt=f"{2014 + dice.number(10)}-0{1 + dice.number(9)}-01",
            tat="2099-12-31", phone=phone, family=family, unpaid_months=months,
            unpaid_amount=months * price * (1 + len(family)), sandbox=True,
            source=self.label)

    async def history(self, card: str, start: date, end: date) -> list[Visit]:
        """Synthetic visits between start and end (inclusive), newest first."""
        case = card[-4:]
        if case == "0003":
            await self._sleep(SLOW_SECONDS)
        if case == "0004":
            raise JknUnavailable("sandbox: HTTP 503")
        return self.visits(card, start, end)

    def visits(self, card: str, start: date, end: date) -> list[Visit]:
        today = self._today()
        start, end = max(start, JKN_START), min(end, today)
        if card[-4:] in NO_VISITS or end < start:
            return []
        found: list[Visit] = []
        for month in _months(start, end):
            found.extend(visit for visit in self._month(card, month, today)
                         if start.isoformat() <= visit.date <= end.isoformat())
        return sorted(found, key=lambda visit: visit.date, reverse=True)

    @staticmethod
    def _month(card: str, month: date, today: date) -> list[Visit]:
        """The visits of one card in one month; depends on nothing else."""
        dice = _Dice(f"history:{card}:{month:%Y-%m}")
        count = (0, 0, 0, 0, 0, 1, 1, 1, 2, 3)[dice.number(10)]
        days = calendar.monthrange(month.year, month.month)[1]
        home = _Dice(f"home:{card}").pick(PRIMARY_FACILITIES)
        visits: list[Visit] = []
        for _ in range(count):
            day = month.replace(day=1 + dice.number(days))
            kind = dice.number(12)
            if kind == 0:  # an inpatient stay
                poli = dice.pick(tuple(WARDS))
                discharge: date | None = day + timedelta(days=1 + dice.number(7))
                visits.append(Visit(
                    date=day.isoformat(), facility=dice.pick(HOSPITALS), poli=poli,
                    inpatient=True, diagnosis=dice.pick(WARDS[poli]),
                    discharge_date=discharge.isoformat()
                    if discharge is not None and discharge <= today else None))
            elif kind <= 3:  # a referral to a hospital poli
                poli = dice.pick(tuple(HOSPITAL_POLI))
                visits.append(Visit(
                    date=day.isoformat(), facility=dice.pick(HOSPITALS), poli=poli,
                    inpatient=False, diagnosis=dice.pick(HOSPITAL_POLI[poli])))
            else:  # the participant's own puskesmas or klinik
                poli = dice.pick(tuple(PRIMARY_POLI))
                visits.append(Visit(
                    date=day.isoformat(), facility=home, poli=poli, inpatient=False,
                    diagnosis=dice.pick(PRIMARY_POLI[poli])))
        return visits

    @staticmethod
    def _family(dice: _Dice, surname: str, sex: str, active: bool) -> tuple[FamilyMember, ...]:
        size = dice.number(5)  # 0–4 others, so 1–5 people on the card
        members: list[FamilyMember] = []
        status = "AKTIF" if active else "TIDAK AKTIF"
        if size:
            spouse_f = sex == "L"
            members.append(FamilyMember(
                f"{dice.pick(FIRST_NAMES_F if spouse_f else FIRST_NAMES_M)} {surname}".upper(),
                "ISTRI" if spouse_f else "SUAMI", status, active))
        for _ in range(size - 1):
            girl = bool(dice.number(2))
            members.append(FamilyMember(
                f"{dice.pick(FIRST_NAMES_F if girl else FIRST_NAMES_M)} {surname}".upper(),
                "ANAK", status, active))
        return tuple(members)

    async def aclose(self) -> None:
        """Nothing to release."""
