"""The participant and visit models, the capabilities a backend may declare, and the typed
errors every backend raises."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any, Protocol

from bot.identity import Identifier, virtual_account

#: Monthly contribution per person for PBPU (mandiri) members, by class text.
CLASS_PRICES = {"KELAS I": 150_000, "KELAS II": 100_000, "KELAS III": 35_000}


class Capability(enum.StrEnum):
    """What a backend can supply beyond status, class, type, FKTP and phone."""

    ARREARS = "arrears"
    FAMILY = "family"
    HISTORY = "history"


class JknError(Exception):
    """Base of all backend failures; the message is for operators, never for chats."""


class JknNotFound(JknError):
    """No participant with that NIK or card number."""


class JknInvalidRequest(JknError):
    """BPJS refused the request itself (an invalid number, a date range it does not accept,
    PCare's 412 list of field messages): nothing can be found with it, and a retry with the
    same request would be refused again."""


class JknCredentialsRejected(JknError):
    """The backend refused our credentials or signature."""


class JknTimeout(JknError):
    """The backend did not answer in time."""


class JknUnavailable(JknError):
    """The backend answered with a server error (5xx) or could not be reached."""


class JknBadResponse(JknError):
    """The answer could not be decrypted or parsed."""


class JknUnsupported(JknError):
    """The backend does not offer that capability (e.g. service history over PCare)."""


def _known_fields(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True, slots=True)
class FamilyMember:
    name: str
    relation: str
    status_text: str
    active: bool


@dataclass(frozen=True, slots=True)
class Visit:
    """One service episode (a SEP) from the service history."""

    date: str  # yyyy-mm-dd (tglSep)
    facility: str  # ppkPelayanan
    poli: str
    inpatient: bool  # jnsPelayanan "1" = rawat inap, "2" = rawat jalan
    diagnosis: str
    discharge_date: str | None = None  # tglPlgSep

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Visit:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True, slots=True)
class Participant:
    name: str
    nik: str
    card: str
    sex: str
    birth_date: str
    age: int | None
    status_code: str
    status_text: str
    active: bool
    type_text: str
    class_text: str
    fktp_code: str
    fktp_name: str
    tmt: str | None
    tat: str | None
    phone: str | None
    family: tuple[FamilyMember, ...] = field(default_factory=tuple)
    unpaid_months: int = 0
    unpaid_amount: int = 0
    sandbox: bool = False
    #: False when the source cannot tell arrears (unpaid_* are then 0, not "no arrears").
    arrears_known: bool = True
    #: False when the source has no family list (``family`` is then empty, not "alone").
    family_known: bool = True
    #: The backend's user-facing name: "sandbox", "VClaim", "PCare".
    source: str = "sandbox"
    relation: str | None = None  # hubunganKeluarga, when the source gives it

    @property
    def virtual_account(self) -> str:
        return virtual_account(self.card)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["family"] = [asdict(member) for member in self.family]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Participant:
        """Rebuild from :meth:`to_dict`; unknown keys are ignored.

        A dict saved before ``source`` existed came from the sandbox or from VClaim (the
        only backends then); a non-sandbox one is marked as VClaim, which knows neither
        arrears nor the family list.
        """
        values = _known_fields(cls, data)
        values["family"] = tuple(FamilyMember(**_known_fields(FamilyMember, m))
                                 for m in values.get("family") or ())
        if "source" not in values and not values.get("sandbox", False):
            values["source"] = "VClaim"
            values.setdefault("arrears_known", False)
            values.setdefault("family_known", False)
        return cls(**values)


class JknBackend(Protocol):
    """What the conversations need from a backend."""

    #: Short configuration name ("sandbox", "vclaim", "pcare").
    name: str
    #: User-facing name ("sandbox", "VClaim", "PCare").
    label: str
    capabilities: frozenset[Capability]

    async def lookup(self, identifier: Identifier) -> Participant:
        """Find a participant by NIK or card number, or raise a :class:`JknError`."""
        ...

    async def history(self, card: str, start: date, end: date) -> list[Visit]:
        """Visits between two dates (inclusive), newest first; ``[]`` when there are none.

        Raises :class:`JknUnsupported` when ``Capability.HISTORY`` is not offered.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
