"""Prometheus metrics (prometheus-client): counts and durations only, never an identifier.

Every label takes its values from a small fixed set written in this program (an update's
kind, a Bot API method and HTTP status, a cap's name, a backend's configuration name, an
outcome); no chat id, NIK, card number, phone, name or label is ever a label value. The
whole set is served at ``/metrics`` (bot/web.py) in the text format.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import date

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from telegram import Update

from bot.identity import Identifier
from bot.jkn.base import Capability, JknBackend, JknError, JknNotFound, Participant, Visit
from storage.db import Database, count

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: start times are not worth a series each

__all__ = ["CONTENT_TYPE_LATEST", "MeteredBackend", "exposition", "refresh", "update_kind"]

UPDATES = Counter("kk_updates", "Updates handled, by kind", ["kind"])
UPDATES_DROPPED = Counter("kk_updates_dropped", "Updates over a chat's backlog, not handled")
UPDATE_SECONDS = Histogram("kk_update_duration_seconds", "Time to handle one update",
                           ["kind"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                              2.5, 5, 10, 30))
BOT_API_ERRORS = Counter("kk_bot_api_errors", "Bot API answers that were not OK, by method "
                         "and HTTP status ('network' when there was no answer)",
                         ["method", "code"])
BOT_API_RETRIES = Counter("kk_bot_api_retries", "Bot API calls repeated by the transport")
SMS_SENT = Counter("kk_sms_sent", "OTP codes handed to the SMS gateway")
SMS_FAILED = Counter("kk_sms_failed", "OTP codes the SMS gateway did not take")
SMS_REFUSED = Counter("kk_sms_refused", "OTP codes not sent because a cap was reached",
                      ["cap"])
BACKEND_CALLS = Counter("kk_backend_calls", "JKN backend calls, by backend, call and outcome",
                        ["backend", "call", "outcome"])
BACKEND_SECONDS = Histogram("kk_backend_duration_seconds", "JKN backend call duration",
                            ["backend", "call"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8,
                                                          15, 30))
REMINDER_ROUNDS = Counter("kk_reminder_rounds", "Reminder rounds run")
REMINDER_CHATS = Counter("kk_reminder_chats", "Chats in reminder rounds, by outcome",
                         ["outcome"])
ACCOUNTS_CACHED = Gauge("kk_accounts_cached", "Verified accounts held, all chats together")
CHATS_CONSENTED = Gauge("kk_chats_consented", "Chats that have given consent")
ERASES = Counter("kk_erases", "Erasures: a whole chat (/hapus_data) or one account",
                 ["what"])
TELEGRAM_UP = Gauge("kk_telegram_reachable", "1 when Telegram answered within the health "
                    "window, else 0")
CONFLICTS = Counter("kk_telegram_conflicts", "getUpdates answered 409 Conflict (another "
                    "instance polls the same token)")

#: Kinds of update (the label values of kk_updates_total).
KINDS = ("command", "message", "contact", "callback_query", "edited_message", "other")


def update_kind(update: object) -> str:
    """A fixed word for what an update is; nothing of its content."""
    if not isinstance(update, Update):
        return "other"
    if update.callback_query is not None:
        return "callback_query"
    if update.edited_message is not None:
        return "edited_message"
    message = update.message
    if message is None:
        return "other"
    if message.contact is not None:
        return "contact"
    if message.text is not None and message.text.startswith("/"):
        return "command"
    return "message"


def observe_update(kind: str, seconds: float) -> None:
    UPDATES.labels(kind).inc()
    UPDATE_SECONDS.labels(kind).observe(seconds)


def bot_api_error(method: str, code: int | None) -> None:
    BOT_API_ERRORS.labels(method.lower(), "network" if code is None else str(code)).inc()


def reminder_round(sent: int, nothing: int, already: int, failed: int,
                   backend_failures: int) -> None:
    REMINDER_ROUNDS.inc()
    for outcome, value in (("sent", sent), ("nothing", nothing), ("already", already),
                           ("refused", failed), ("backend_failure", backend_failures)):
        if value:
            REMINDER_CHATS.labels(outcome).inc(value)


async def refresh(db: Database) -> None:
    """Set the gauges that are read from the database (counts only)."""
    def unit(conn: sqlite3.Connection) -> tuple[int, int]:
        return count(conn, "SELECT count(*) FROM accounts"), count(
            conn, "SELECT count(*) FROM consent")
    accounts, chats = await db.run(unit)
    ACCOUNTS_CACHED.set(accounts)
    CHATS_CONSENTED.set(chats)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


class MeteredBackend:
    """A JKN backend that counts its calls, failures and their duration."""

    def __init__(self, inner: JknBackend) -> None:
        self.inner = inner
        #: Told when BPJS rejects the credentials (the operators' alert, bot/operator.py).
        self.on_credentials_rejected: Callable[[], object] | None = None
        self.name: str = inner.name
        self.label: str = inner.label
        self.capabilities: frozenset[Capability] = inner.capabilities

    def _done(self, call: str, started: float, outcome: str) -> None:
        if outcome == "credentialsrejected" and self.on_credentials_rejected is not None:
            self.on_credentials_rejected()
        BACKEND_CALLS.labels(self.name, call, outcome).inc()
        BACKEND_SECONDS.labels(self.name, call).observe(time.monotonic() - started)

    @staticmethod
    def _outcome(exc: BaseException) -> str:
        if isinstance(exc, JknNotFound):
            return "not_found"
        if isinstance(exc, JknError):
            return type(exc).__name__.removeprefix("Jkn").lower()
        return "error"

    async def lookup(self, identifier: Identifier) -> Participant:
        started = time.monotonic()
        try:
            found = await self.inner.lookup(identifier)
        except BaseException as exc:
            self._done("lookup", started, self._outcome(exc))
            raise
        self._done("lookup", started, "ok")
        return found

    async def history(self, card: str, start: date, end: date) -> list[Visit]:
        started = time.monotonic()
        try:
            visits = await self.inner.history(card, start, end)
        except BaseException as exc:
            self._done("history", started, self._outcome(exc))
            raise
        self._done("history", started, "ok")
        return visits

    async def aclose(self) -> None:
        await self.inner.aclose()
