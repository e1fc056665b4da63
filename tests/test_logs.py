"""Logging: one format, quiet httpx, and nothing sensitive ever reaches a handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.identity import Identifier, parse_identifier, parse_otp
from bot.logs import LOG_FORMAT, REDACTOR, RedactingFilter, Redactor, configure_logging

TOKEN = "7012345678:AAHk3vZ_secretSECRETsecret-0123456789ab"
NIK = "3174014506900011"
CARD = "0001234567890"
PHONES = ("081234567890", "+6281234567890", "6281234567890")
OTP = "482913"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactingFilter(Redactor([TOKEN])))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def test_every_kind_of_secret_is_masked(captured: io.StringIO) -> None:
    logger = logging.getLogger("test.redaction")
    logger.info("token %s nik %s card %s phones %s otp %s", TOKEN, NIK, CARD, PHONES, OTP)
    logger.info(f"https://api.telegram.org/bot{TOKEN}/sendMessage chat=%d", 12345)
    logger.info("an unconfigured token 123456789:%s", "Z" * 35)
    try:
        raise ValueError(f"lookup {NIK} via {PHONES[0]} failed with code {OTP}")
    except ValueError:
        logger.exception("boom")
    out = captured.getvalue()
    for secret in (TOKEN, TOKEN.split(":")[1], NIK, CARD, *PHONES, OTP, "Z" * 35):
        assert secret not in out, secret
    for mask in ("[token]", "[secret]", "[nik]", "[card]", "[phone]", "[otp]"):
        assert mask in out, mask
    assert "chat=12345" in out, "short numbers such as chat ids stay readable"
    assert "Traceback" in out and "ValueError" in out


@pytest.mark.parametrize("typed", [
    "3174 0145 0690 0011", "3174.0145.0690.0011", "3174-0145-0690-0011", "317401 450690 0011",
    "0001 2345 67890", "0812-3456-7890", "+62 812 3456 7890", "0812 3456 7890", "48 29 13",
    "482 913", "3174014506900011 081234567890",
])
def test_identifiers_typed_with_spaces_dots_or_dashes_are_masked(typed: str) -> None:
    out = Redactor()(f"user typed <{typed}> just now")
    digits = "".join(ch for ch in typed if ch.isdigit())
    assert not any(ch.isdigit() for ch in out), out
    assert digits not in out



@given(st.text(alphabet=st.sampled_from("0123456789 -./,_\t\u00a0\u200b:"), max_size=48))
def test_whatever_the_parser_or_the_code_reader_accepts_never_reaches_the_log(
        typed: str) -> None:
    """The redactor reads digits with the parser's own grammar (decision 40): an
    identifier or a code the bot would take from a user is masked in the log too."""
    out = Redactor()(f"user typed <{typed}> just now")
    found = parse_identifier(typed)
    if isinstance(found, Identifier):
        assert found.value not in "".join(ch for ch in out if ch.isdigit()), out
    code = parse_otp(typed)
    if code is not None:
        assert code not in "".join(ch for ch in out if ch.isdigit()), out


@pytest.mark.parametrize("typed", [
    "3174/0145/0690/0011", "3174 , 0145 , 0690 , 0011", "3174 ,\t 0145 - \n 0690 0011",
    "3174\u200b0145\u200b06900011",
    "\uff13\uff11\uff17\uff14\uff10\uff11\uff14\uff15\uff10\uff16\uff19\uff10"
    "\uff10\uff10\uff11\uff11",
    "\u0663\u0661\u0667\u0664\u0660\u0661\u0664\u0665\u0660\u0666\u0669\u0660"
    "\u0660\u0660\u0661\u0661",
    "4 8 2 - 9 1 3",
])
def test_identifiers_in_any_digits_and_separators_are_masked(typed: str) -> None:
    out = Redactor()(f"user typed <{typed}> just now")
    assert not any(ch.isdigit() for ch in out), out


def test_an_unknown_token_shape_is_still_masked() -> None:
    other = "123456789:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
    assert "ZZZZ" not in Redactor()(f"GET /bot{other}/getMe")


def test_configure_logging_installs_the_filter_and_quiets_httpx() -> None:
    configure_logging(logging.INFO, [TOKEN])
    try:
        root = logging.getLogger()
        assert len(root.handlers) == 1
        assert any(isinstance(f, RedactingFilter) for f in root.handlers[0].filters)
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("httpcore").level == logging.WARNING
        configure_logging(logging.DEBUG, [TOKEN])
        assert logging.getLogger("telegram").getEffectiveLevel() == logging.INFO, \
            "PTB logs message texts at DEBUG"
        assert logging.getLogger("telegram.ext.ExtBot").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("bot").getEffectiveLevel() == logging.DEBUG
        assert REDACTOR(f"GET https://api.telegram.org/bot{TOKEN}/getMe") == \
            "GET https://api.telegram.org/bot[secret]/getMe"
    finally:
        logging.getLogger().handlers.clear()


def test_every_configured_secret_is_handed_to_the_redactor(tmp_path: object) -> None:
    from bot.config import Settings

    settings = Settings(_env_file=None, telegram_bot_token=TOKEN,  # type: ignore[call-arg]
                        webhook_secret="hook_secret-1", sms_gateway_token="sms-tok",
                        vclaim_secret_key="vc-secret", vclaim_user_key="vc-user")
    assert set(settings.secret_values()) == {TOKEN, "hook_secret-1", "sms-tok", "vc-secret",
                                             "vc-user"}
