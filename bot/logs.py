"""Logging with one format and a redaction filter on every handler.

The filter masks the bot token and anything shaped like a NIK (16 digits), a JKN card
number (13 digits), an Indonesian mobile number or a 6-digit OTP — in any digits, typed
plain or grouped with any separators, read with the parser's own grammar (decision 40) —
in the message, its arguments and any traceback text, before a handler formats the record.
Any other group of ten or more digits is masked too, except an update id (a number right
after "update", "update_id" or "update with id"): it identifies
no person and an operator needs it to follow one update through the log.

``LOG_FORMAT=json`` writes one JSON object a line: ``time`` (ISO 8601 with the offset),
``level``, ``logger``, ``message`` and, when there is one, ``exception`` (the whole
traceback as one string), all after redaction.

python-telegram-bot logs request parameters (message texts, so names on status cards) at
DEBUG, and httpx logs URLs (with the token) at INFO: those libraries stay at INFO and
WARNING whatever ``LOG_LEVEL`` says.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.identity import CODE_GAP, MIN_IDENTIFIER_DIGITS, digit_group_spans

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_TOKEN_RE = re.compile(r"(?<![0-9])[0-9]{5,20}:[A-Za-z0-9_-]{30,100}")
#: Loggers that would otherwise print message texts or URLs with the token.
LIBRARY_FLOORS = {"telegram": logging.INFO, "httpx": logging.WARNING,
                  "httpcore": logging.WARNING, "apscheduler": logging.WARNING,
                  "aiosqlite": logging.WARNING, "tornado.access": logging.WARNING,
                  "aiohttp.access": logging.WARNING}


#: Just before an update id: "update 123", "update_id=123", "Update with ID 123".
_UPDATE_BEFORE_RE = re.compile(r"(?i)\bupdate(?:[ _]?id| with id)?[\s:=#'\"]{0,3}$")


def _masked(text: str, start: int, end: int, digits: str) -> str:
    """What a group of digits (``text[start:end]``) becomes in the log."""
    if (digits == text[start:end] and not digits.startswith("0") and len(digits) <= 10
            and _UPDATE_BEFORE_RE.search(text, 0, start)):
        return digits  # an update id
    if digits.startswith(("62", "08")) and 9 <= len(digits) <= 15:
        return "[phone]"
    if len(digits) == 16:
        return "[nik]"
    if len(digits) == 13:
        return "[card]"
    if len(digits) == 6:
        return "[otp]"
    if len(digits) >= 10:
        return "[number]"
    return text[start:end]


def _mask_digits(text: str) -> str:
    """Digits are grouped by the parser's and scrubber's own grammar (bot/identity.py,
    decision 40): any digits Unicode knows, any separators between them. A group of 13 or
    more is masked whole; in a shorter one, digits typed close together as a code are."""
    out: list[str] = []
    done = 0
    for start, end, digits in digit_group_spans(text):
        if len(digits) >= MIN_IDENTIFIER_DIGITS:
            parts = [(start, end, digits)]
        else:
            parts = [(start + a, start + b, d)
                     for a, b, d in digit_group_spans(text[start:end], CODE_GAP)]
        for a, b, d in parts:
            out += [text[done:a], _masked(text, a, b, d)]
            done = b
    out.append(text[done:])
    return "".join(out)


class Redactor:
    """Masks secrets and identifiers in free text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [s for s in secrets if s]

    def add_secret(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        text = _TOKEN_RE.sub("[token]", text)
        return _mask_digits(text)


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no handler ever sees the raw values."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line (``LOG_FORMAT=json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).astimezone().isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


REDACTOR = Redactor()


def configure_logging(level: int | str = logging.INFO, secrets: Iterable[str] = (),
                      fmt: str = "plain") -> None:
    """Install one stderr handler with the redaction filter; quiet httpx and httpcore.
    ``fmt``: "plain" (LOG_FORMAT above) or "json"."""
    for secret in secrets:
        REDACTOR.add_secret(secret)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactingFilter(REDACTOR))
    root.addHandler(handler)
    root.setLevel(level)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    for name, floor in LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, int(numeric)))
