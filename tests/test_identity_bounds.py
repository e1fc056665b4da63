"""The edges of identity parsing and masking, found by mutation testing (issue 19): each
case below killed a mutant that the earlier tests let through (a bound moved by one, a
mask that shows a short value whole)."""

from __future__ import annotations

import pytest

from bot.identity import (
    Identifier,
    IdError,
    IdKind,
    IdProblem,
    mask_card,
    mask_name,
    mask_nik,
    mask_phone,
    parse_identifier,
    phone_tail,
)


def _nik(day: str, month: str) -> str:
    return f"317401{day}{month}900011"


@pytest.mark.parametrize(("day", "month", "ok"), [
    ("01", "01", True), ("31", "12", True), ("41", "10", True), ("71", "06", True),
    ("00", "01", False), ("32", "01", False), ("40", "01", False), ("72", "01", False),
    ("15", "00", False), ("15", "13", False), ("15", "10", True), ("15", "11", True),
])
def test_a_nik_date_is_checked_at_its_edges(day: str, month: str, ok: bool) -> None:
    parsed = parse_identifier(_nik(day, month))
    if ok:
        assert parsed == Identifier(IdKind.NIK, _nik(day, month))
    else:
        assert isinstance(parsed, IdError) and parsed.problem is IdProblem.NIK_BAD_DATE


def test_lengths_at_their_edges() -> None:
    assert parse_identifier("1" * 65) == IdError(IdProblem.TOO_LONG)
    at_limit = parse_identifier("1" * 64)
    assert at_limit == IdError(IdProblem.WRONG_LENGTH, 64), "64 characters are still read"
    assert parse_identifier("12345") == IdError(IdProblem.WRONG_LENGTH, 5)


@pytest.mark.parametrize(("mask", "value", "shown"), [
    (mask_nik, "12345678", "********"), (mask_nik, "123456789", "1234*6789"),
    (mask_nik, "1234", "****"),
    (mask_card, "12345", "*****"), (mask_card, "12345678", "********"),
    (mask_card, "123456789", "*****6789"), (mask_card, "123", "***"),
    (mask_phone, "+62123456", "*******"), (mask_phone, "+621234567", "0123****4567"),
    (phone_tail, "1234567", "****"), (phone_tail, "12345678", "5678"),
    (mask_name, "Al Budi", "A** B***"), (mask_name, "Budi Santoso", "B*** S******"),
])
def test_short_values_are_masked_whole(mask: object, value: str, shown: str) -> None:
    assert callable(mask)
    assert mask(value) == shown
