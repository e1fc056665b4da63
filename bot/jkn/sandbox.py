"""The sandbox backend: deterministic synthetic participants, no network.

The same identifier always yields the same participant; the last four digits select the
special cases of SPEC §5 so every path of the bot can be shown without real data.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import date

from bot.identity import Identifier, IdKind
from bot.jkn.base import (
    CLASS_PRICES,
    FamilyMember,
    JknNotFound,
    JknUnavailable,
    Participant,
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


class SandboxBackend:
    """Synthetic participants; clearly marked ``sandbox=True``."""

    name = "sandbox"

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
            unpaid_amount=months * price * (1 + len(family)), sandbox=True)

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
