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
OTP_RE = re.compile(r"^[0-9]{6}$")
#: Six digits make a code; anything with that many digits close together may be a code.
MIN_SENSITIVE_DIGITS = 6
#: How many separators may stand between two digits of a code ("12 - 34 - 56").
CODE_GAP = 3
#: Thirteen digits make a card number (sixteen a NIK): the shortest identifier.
MIN_IDENTIFIER_DIGITS = 13


# -- the one grammar of "digits that belong together" ------------------------------------
#
# A digit is any character Unicode calls one (ASCII, full-width, Arabic-Indic, superscript,
# circled …: ``str.isdigit``). A separator is anything that is neither a digit nor a letter
# nor another numeral: spaces of any kind, tabs, line breaks, dots, dashes, slashes, commas,
# zero-width characters. Digits with only separators between them belong together, however
# many separators there are; a letter ends the group. The parser reads an identifier with
# this grammar (so it accepts a NIK only as one group) and the scrubber deletes every
# message with a group of 13 or more digits: whatever the parser accepts, the scrubber
# deletes (tests/test_identity.py checks it for any text hypothesis can make).

def digit_group_spans(text: str, max_gap: int | None = None) -> list[tuple[int, int, str]]:
    """Each group of digits in ``text`` as ``(start, end, digits)``: ``text[start:end]`` runs
    from its first digit to its last; with ``max_gap``, more separators in a row than that
    also end a group (for codes, which are typed close together)."""
    spans: list[tuple[int, int, str]] = []
    run: list[str] = []
    start = end = gap = 0
    for at, ch in enumerate(text):
        if ch.isdigit():
            if not run:
                start = at
            run.append(ch)
            end, gap = at + 1, 0
            continue
        if run and not ch.isalnum():
            gap += 1
            if max_gap is None or gap <= max_gap:
                continue
        if run:
            spans.append((start, end, "".join(run)))
        run, gap = [], 0
    if run:
        spans.append((start, end, "".join(run)))
    return spans


def digit_groups(text: str, max_gap: int | None = None) -> list[str]:
    """The groups of digits in ``text`` (see :func:`digit_group_spans`)."""
    return [digits for _start, _end, digits in digit_group_spans(text, max_gap)]


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
    """Parse a NIK (16 digits) or card number (13 digits): one group of digits in the
    grammar above (spaces, dots, dashes or any other separators between them)."""
    raw = text.strip()
    if not raw:
        return IdError(IdProblem.EMPTY)
    if len(raw) > 64:
        return IdError(IdProblem.TOO_LONG)
    groups = digit_groups(raw)
    if any(ch not in _ASCII_DIGITS for group in groups for ch in group):
        return IdError(IdProblem.NON_ASCII_DIGITS)
    if len(groups) != 1 or any(ch.isalnum() and not ch.isdigit() for ch in raw):
        return IdError(IdProblem.NOT_DIGITS)
    compact = groups[0]
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
    """Whether free text holds something that may be a NIK or a card number (a group of
    13 or more digits in the grammar above, the parser's own) or a code (six or more
    digits with at most three separators between any two)."""
    return (any(len(group) >= MIN_IDENTIFIER_DIGITS for group in digit_groups(text))
            or any(len(group) >= MIN_SENSITIVE_DIGITS
                   for group in digit_groups(text, CODE_GAP)))


#: Longer than any code typed with separators ("1 5 5 - 0 2 6"): not a code.
MAX_OTP_TEXT = 32


def parse_otp(text: str) -> str | None:
    """Return the 6 ASCII digits of an OTP, or None. The code may be typed with spaces,
    dashes or dots between its digits ("155 026", "155-026"): one group of the grammar
    above with at most ``CODE_GAP`` separators in a row, and no letter; the scrubber's
    code rule reads the same groups, so every text accepted here is deleted."""
    candidate = text.strip()
    if len(candidate) > MAX_OTP_TEXT or any(ch.isalnum() and not ch.isdigit()
                                            for ch in candidate):
        return None
    groups = digit_groups(candidate, CODE_GAP)
    if len(groups) != 1 or len("".join(digit_groups(candidate))) != len(groups[0]):
        return None
    return groups[0] if OTP_RE.fullmatch(groups[0]) else None


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
    """*********7890: only the last four digits, the part people compare with the card in
    their hand (every card starts 000…); a card of eight digits or fewer is hidden whole."""
    return "*" * (len(card) - 4) + card[-4:] if len(card) > 8 else "*" * len(card)


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
