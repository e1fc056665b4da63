"""Identifier parsing, validation and masking: NIK, JKN card number, mobile phone, OTP.

Only ASCII digits count as digits anywhere here: full-width or Arabic-Indic digits are
rejected, never normalised, so what is stored is exactly what was typed.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import phonenumbers

from bot import texts

_ASCII_DIGITS = frozenset("0123456789")
_SEPARATORS = re.compile(r"[ \-.]")
OTP_RE = re.compile(r"^[0-9]{6}$")
#: Digits of any script, possibly grouped by up to three characters that are neither
#: letters nor digits: spaces of any kind, tabs, line breaks, dots, dashes, slashes,
#: zero-width characters ("3174 0145 …", "3174\u200b0145", "3174 / 0145").
DIGIT_GROUPS = re.compile(r"\d(?:[\W_]{0,3}\d)*")
#: Six digits make a code; anything with that many digits may be a code or an identifier.
MIN_SENSITIVE_DIGITS = 6


class IdKind(enum.StrEnum):
    NIK = "nik"
    CARD = "card"


class IdProblem(enum.StrEnum):
    """Why a typed identifier was refused; each maps to one Indonesian message."""

    EMPTY = "empty"
    NOT_DIGITS = "not_digits"
    NON_ASCII_DIGITS = "non_ascii_digits"
    WRONG_LENGTH = "wrong_length"
    NIK_LEADING_ZERO = "nik_leading_zero"
    NIK_BAD_DATE = "nik_bad_date"
    TOO_LONG = "too_long"


@dataclass(frozen=True, slots=True)
class Identifier:
    kind: IdKind
    value: str

    @property
    def masked(self) -> str:
        return mask_nik(self.value) if self.kind is IdKind.NIK else mask_card(self.value)


@dataclass(frozen=True, slots=True)
class IdError:
    problem: IdProblem
    length: int = 0


def parse_identifier(text: str) -> Identifier | IdError:
    """Parse a NIK (16 digits) or card number (13 digits); spaces, dots and dashes allowed."""
    raw = text.strip()
    if not raw:
        return IdError(IdProblem.EMPTY)
    if len(raw) > 64:
        return IdError(IdProblem.TOO_LONG)
    compact = _SEPARATORS.sub("", raw)
    if any(ch.isdigit() and ch not in _ASCII_DIGITS for ch in compact):
        return IdError(IdProblem.NON_ASCII_DIGITS)
    if not compact or any(ch not in _ASCII_DIGITS for ch in compact):
        return IdError(IdProblem.NOT_DIGITS)
    if len(compact) == 13:
        return Identifier(IdKind.CARD, compact)
    if len(compact) != 16:
        return IdError(IdProblem.WRONG_LENGTH, len(compact))
    if compact[0] == "0":
        return IdError(IdProblem.NIK_LEADING_ZERO)
    day, month = int(compact[6:8]), int(compact[8:10])
    if not (1 <= day <= 31 or 41 <= day <= 71) or not 1 <= month <= 12:
        return IdError(IdProblem.NIK_BAD_DATE)
    return Identifier(IdKind.NIK, compact)


def carries_identifier(text: str) -> bool:
    """Whether free text holds something that may be a NIK, a card number or a code: a run
    of six or more digits (of any script), with anything but letters between them."""
    return any(sum(ch.isdigit() for ch in match.group(0)) >= MIN_SENSITIVE_DIGITS
               for match in DIGIT_GROUPS.finditer(text))


def is_valid_nik(value: str) -> bool:
    parsed = parse_identifier(value)
    return isinstance(parsed, Identifier) and parsed.kind is IdKind.NIK and parsed.value == value


def parse_otp(text: str) -> str | None:
    """Return the 6 ASCII digits of an OTP, or None; only surrounding spaces are trimmed."""
    candidate = text.strip()
    return candidate if OTP_RE.fullmatch(candidate) else None


def normalise_phone(text: str) -> str | None:
    """Return the E.164 form (+62…) of an Indonesian mobile number, or None if it is not one."""
    try:
        number = phonenumbers.parse(text.strip(), "ID")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    kind = phonenumbers.number_type(number)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE,
                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    if number.country_code != 62:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def contact_phone(number: str) -> str | None:
    """The E.164 form of a number from a shared Telegram contact, or None if it is not an
    Indonesian mobile number. Telegram sends international numbers without the "+"
    (6281…); a client may also send +6281… or the national 081…."""
    number = number.strip()
    if number[:1].isdigit() and not number.startswith("0"):
        number = "+" + number
    return normalise_phone(number)


def national_phone(e164: str) -> str:
    """+6281234567890 → 081234567890."""
    return "0" + e164[3:] if e164.startswith("+62") else e164


def mask_nik(nik: str) -> str:
    """3174********0001: first 4, last 4; "NIK tidak diketahui" when BPJS gave none."""
    if not nik:
        return texts.NIK_UNKNOWN
    return nik[:4] + "*" * (len(nik) - 8) + nik[-4:] if len(nik) > 8 else "*" * len(nik)


def mask_card(card: str) -> str:
    """0001*******12: first 3, last 2 … as `000********12`."""
    return card[:3] + "*" * (len(card) - 5) + card[-2:] if len(card) > 5 else "*" * len(card)


def mask_phone(phone: str) -> str:
    """0812****7890 from either +62… or 08… form."""
    national = national_phone(phone)
    if len(national) < 8:
        return "*" * len(national)
    return national[:4] + "****" + national[-4:]


def phone_tail(phone: str) -> str:
    """The last four digits: all of a phone number a reply may show (…7890)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-4:] if len(digits) >= 8 else "****"


def mask_name(name: str) -> str:
    """Budi Santoso → B*** S******: the first letter of each word."""
    return " ".join(word[0] + "*" * max(len(word) - 1, 2) for word in name.split() if word)


def virtual_account(card: str) -> str:
    """The contribution virtual account: 88888 + the last 11 digits of the card number."""
    return "88888" + card[-11:]
