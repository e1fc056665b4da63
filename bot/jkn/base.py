"""The participant model and the typed errors every backend raises."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bot.identity import Identifier, virtual_account

#: Monthly contribution per person for PBPU (mandiri) members, by class text.
CLASS_PRICES = {"KELAS I": 150_000, "KELAS II": 100_000, "KELAS III": 35_000}


class JknError(Exception):
    """Base of all backend failures; the message is for operators, never for chats."""


class JknNotFound(JknError):
    """No participant with that NIK or card number."""


class JknCredentialsRejected(JknError):
    """The backend refused our credentials or signature."""


class JknTimeout(JknError):
    """The backend did not answer in time."""


class JknUnavailable(JknError):
    """The backend answered with a server error (5xx) or could not be reached."""


class JknBadResponse(JknError):
    """The answer could not be decrypted or parsed."""


@dataclass(frozen=True, slots=True)
class FamilyMember:
    name: str
    relation: str
    status_text: str
    active: bool


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

    @property
    def virtual_account(self) -> str:
        return virtual_account(self.card)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["family"] = [asdict(member) for member in self.family]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Participant:
        values = dict(data)
        values["family"] = tuple(FamilyMember(**m) for m in values.get("family", ()))
        return cls(**values)


class JknBackend(Protocol):
    """What the conversations need from a backend."""

    name: str

    async def lookup(self, identifier: Identifier) -> Participant:
        """Find a participant by NIK or card number, or raise a :class:`JknError`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
