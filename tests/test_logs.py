"""Logging: one format, quiet httpx, and nothing sensitive ever reaches a handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

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
