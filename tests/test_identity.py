"""Identifiers: parsing, validation, masking, phones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.identity import (
    Identifier,
    IdError,
    IdKind,
    IdProblem,
    carries_identifier,
    contact_phone,
    mask_card,
    mask_name,
    mask_nik,
    mask_phone,
    normalise_phone,
    parse_identifier,
    parse_otp,
    phone_tail,
    virtual_account,
)


def test_nik_and_card_are_told_apart_by_length_with_separators_tolerated() -> None:
    assert parse_identifier(" 3174-0145-0690-0011 ") == Identifier(IdKind.NIK, "3174014506900011")
    assert parse_identifier("0001 2345 67890") == Identifier(IdKind.CARD, "0001234567890")


def test_problems_are_specific() -> None:
    cases = {
        "": IdProblem.EMPTY, "abc": IdProblem.NOT_DIGITS, "１２３": IdProblem.NON_ASCII_DIGITS,
        "123": IdProblem.WRONG_LENGTH, "0174014506900011": IdProblem.NIK_LEADING_ZERO,
        "3174013206900011": IdProblem.NIK_BAD_DATE, "3174017206900011": IdProblem.NIK_BAD_DATE,
        "3174010000900011": IdProblem.NIK_BAD_DATE, "1" * 65: IdProblem.TOO_LONG,
    }
    for text, problem in cases.items():
        result = parse_identifier(text)
        assert isinstance(result, IdError) and result.problem is problem, text


@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_any_sixteen_ascii_digits_parse_as_nik_or_give_a_reason(value: str) -> None:
    result = parse_identifier(value)
    if isinstance(result, Identifier):
        assert result.kind is IdKind.NIK and result.value == value
    else:
        assert result.problem in (IdProblem.NIK_LEADING_ZERO, IdProblem.NIK_BAD_DATE)


@given(st.text(min_size=1, max_size=80))
def test_parse_never_accepts_non_ascii_digits(value: str) -> None:
    result = parse_identifier(value)
    if isinstance(result, Identifier):
        assert result.value.isascii() and result.value.isdigit()


def test_otp_is_six_ascii_digits_typed_close_together() -> None:
    assert parse_otp(" 123456 ") == "123456"
    for typed in ("155 026", "155-026", "155.026", "1 5 5 0 2 6", "155 - 026", "12 3456"):
        assert parse_otp(typed) == typed.replace(" ", "").replace("-", "").replace(".", ""), \
            typed
    for bad in ("12345", "1234567", "１２３４５６", "١٢٣٤٥٦", "12345a", "", "155    026",
                "kode 155026", "155 026 7", "12 34 5", "1" * 40):
        assert parse_otp(bad) is None, bad


@given(st.text(alphabet=st.sampled_from("0123456789 -.\u00a0\t_/a"), max_size=40))
def test_every_code_the_parser_accepts_the_scrubber_deletes(text: str) -> None:
    """One grammar (decisions.md 40): whatever parse_otp takes for a code is a message the
    scrubber deletes."""
    if parse_otp(text) is not None:
        assert carries_identifier(text), repr(text)


def test_masks() -> None:
    assert mask_nik("3174014506900011") == "3174********0011"
    assert mask_card("0001234567890") == "*********7890"
    assert mask_phone("+6281234567890") == "0812****7890"
    assert mask_phone("081234567890") == "0812****7890"
    assert phone_tail("+6281234567890") == phone_tail("081234567890") == "7890"
    assert mask_name("Siti Aminah") == "S*** A*****"
    assert virtual_account("0001234567890") == "8888801234567890"


@pytest.mark.parametrize(("shared", "e164"), [
    ("6281234567890", "+6281234567890"),      # as Telegram sends it
    ("+6281234567890", "+6281234567890"),
    ("081234567890", "+6281234567890"),
    (" +62 812-3456-7890 ", "+6281234567890"),
    ("81234567890", None),                    # +81: Japan, not an Indonesian mobile
    ("62215551234", None),                    # a Jakarta landline
    ("6591234567", None),                     # Singapore
    ("", None),
    ("bukan nomor", None),
])
def test_a_shared_contacts_number_is_read_as_telegram_writes_it(
        shared: str, e164: str | None) -> None:
    assert contact_phone(shared) == e164


def test_phone_normalisation_accepts_indonesian_mobiles_only() -> None:
    assert normalise_phone("0812-3456-7890") == "+6281234567890"
    assert normalise_phone("+62 812 3456 7890") == "+6281234567890"
    assert normalise_phone("021 5551234") is None, "a Jakarta landline"
    assert normalise_phone("+14155552671") is None
    assert normalise_phone("bukan nomor") is None


def test_what_counts_as_carrying_an_identifier_or_a_code() -> None:
    for text in ("3174014506900011", "/tambah_kk 3174 0145 0690 0011", "kode 12 34 56",
                 "0001-2345-67890", "nik: 3174.0145.0690.0011 ya", "١٢٣٤٥٦", "９９９９９９",
                 "123456", "9" * 4096, "/tambah_kk 3174  0145  0690  0011",
                 "3174\n0145\n0690\n0011", "3174\t0145\t0690\t0011",
                 "3174\u00a00145\u00a00690\u00a00011", "3174\u200b0145\u200b0690\u200b0011",
                 "3174–0145–0690–0011", "3174/0145/0690/0011", "3174,0145,0690,0011",
                 "12 - 34 - 56"):
        assert carries_identifier(text), text
    for text in ("12345", "RT 005 RW 012", "KK Saya", "/status semua", "1 2 3 4 5", "",
                 "123    456", "Rumah 12 Blok C 34"):
        assert not carries_identifier(text), text
