"""Shared fixtures: a controllable clock, an SMS phone that records, and the real bot
running against the in-process Bot API stand-in over a real SQLite file."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.devtools.emulator import BotApiEmulator, Fault
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.jkn.sandbox import SandboxBackend
from bot.services import Services, open_services
from bot.sms.base import SmsError
from storage.accounts_repo import NewAccount
from storage.db import CHAT_TABLES
from storage.persistence import SqlitePersistence
from tests import pgserver
from tests.dbsql import execute, query_one, schema_columns
from tests.pgserver import Cluster, PostgresUnavailable, postgres_server

NIK_A = "3174014506900011"  # woman born 05-06-1990, Jakarta
NIK_B = "3273012304850022"
NIK_C = "3578016712010033"
NIK_D = "5171020101990044"
NIK_E = "1271035508770055"
NIKS = (NIK_A, NIK_B, NIK_C, NIK_D, NIK_E)
CARD_A = "0001234567890"
PHONE = "+6281234567890"


class FakeClock:
    """Wall-clock time that tests can move forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Phone:
    """The SMS gateway as seen by the participants' phones: records every message."""

    def __init__(self) -> None:
        self.inbox: list[tuple[str, str]] = []
        self.fail_next = 0

    async def send(self, phone_e164: str, message: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise SmsError("gateway down (test)")
        self.inbox.append((phone_e164, message))

    async def aclose(self) -> None:
        pass

    def last_code(self) -> str:
        assert self.inbox, "no SMS was sent"
        match = re.search(r"\b([0-9]{6})\b", self.inbox[-1][1])
        assert match, "SMS without a 6-digit code"
        return match.group(1)


class CodeBook:
    """The services' code factory: random codes, unless a test queues the next ones (to
    give two chats or two participants the very same code)."""

    def __init__(self) -> None:
        self.queue: list[str] = []

    def __call__(self) -> str:
        from bot.otp import new_code

        return self.queue.pop(0) if self.queue else new_code()


class FastSandbox(SandboxBackend):
    """The sandbox, with its 3-second case and outages under the test's control."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.down = False
        #: BPJS refuses history requests themselves (a "201" that is not "nothing there").
        self.refuse_history = False
        #: The participant had no visit in the period asked for.
        self.no_visits = False
        self.lookups = 0
        #: Field changes BPJS made since, by the identifier looked up (e.g. a NIK).
        self.changed: dict[str, dict[str, Any]] = {}

        async def fake_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        super().__init__(sleep=fake_sleep)

    async def lookup(self, identifier: Any) -> Any:
        self.lookups += 1
        if self.down:
            from bot.jkn.base import JknUnavailable

            raise JknUnavailable("test outage")
        found = await super().lookup(identifier)
        return dataclasses.replace(found, **self.changed.get(identifier.value, {}))

    async def history(self, card: str, start: Any, end: Any) -> Any:
        if self.down:
            from bot.jkn.base import JknUnavailable

            raise JknUnavailable("test outage")
        if self.refuse_history:
            from bot.jkn.base import JknInvalidRequest

            raise JknInvalidRequest("test refusal")
        if self.no_visits:
            return []
        return await super().history(card, start, end)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"kk_data_dir": data_dir, "jkn_backend": "sandbox",
                              "otp_sender": "console"}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def phone() -> Phone:
    return Phone()


@pytest.fixture
def backend() -> FastSandbox:
    return FastSandbox()


@pytest.fixture
def codes() -> CodeBook:
    return CodeBook()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)  # as the bot makes it (an open one is tightened, with a warning)
    return path


ServicesFactory = Callable[..., Any]
STORES = ("sqlite", "postgres")


@pytest.fixture
def store() -> str:
    """The store the services open: SQLite, unless a module runs its tests on both with
    ``store = both_stores`` (tests/conftest.py)."""
    return "sqlite"


@pytest.fixture(params=STORES)
def both_stores(request: pytest.FixtureRequest) -> str:
    """Assign to ``store`` in a test module to run its tests on SQLite and PostgreSQL."""
    return str(request.param)


@pytest.fixture
def database_url(store: str, request: pytest.FixtureRequest) -> str | None:
    """KK_DATABASE_URL for the store under test: None (SQLite in the data directory) or a
    fresh PostgreSQL database of the throwaway cluster (``pg_db_url``)."""
    if store == "sqlite":
        return None
    return str(request.getfixturevalue("pg_db_url"))


@pytest.fixture
async def services_factory(data_dir: Path, clock: FakeClock, phone: Phone,
                           backend: FastSandbox, codes: CodeBook, database_url: str | None
                           ) -> AsyncIterator[ServicesFactory]:
    opened: list[Services] = []

    async def factory(**overrides: Any) -> Services:
        if database_url is not None:
            overrides.setdefault("kk_database_url", database_url)
        svc = await open_services(make_settings(data_dir, **overrides), clock=clock,
                                  backend=backend, sms=phone, code_factory=codes)
        opened.append(svc)
        return svc

    yield factory
    for svc in opened:
        await svc.close()


@pytest.fixture
async def services(services_factory: ServicesFactory) -> Services:
    svc: Services = await services_factory()
    return svc


@pytest.fixture
async def bot(services: Services) -> AsyncIterator[BotHarness]:
    harness = await start_bot(services)
    yield harness
    await harness.stop()
    assert not harness.emulator.unanswered_queries(), "a callback query was left unanswered"
    # Telegram would have refused nothing: no double answers, no bad HTML, no overlong text,
    # no edit to identical content. A call repeated after an answer the test made Telegram
    # lose (or answer 500) may find its work already done; that refusal is expected.
    repeated = Counter(method for method, fault in harness.emulator.injected
                       if fault in (Fault.LOST, Fault.SERVER))
    refused = []
    for method, description in harness.emulator.errors:
        if repeated[method]:
            repeated[method] -= 1
            continue
        refused.append((method, description))
    assert refused == [], refused


@pytest.fixture
async def chat(bot: BotHarness) -> EmulatedChat:
    return bot.chat(1001, title="Ani")


async def start_bot(services: Services, emulator: BotApiEmulator | None = None) -> BotHarness:
    return await BotHarness(services, emulator=emulator).start()


async def restart(harness: BotHarness, services: Services, factory: ServicesFactory,
                  while_down: Callable[[Services], Awaitable[None]] | None = None
                  ) -> tuple[BotHarness, Services]:
    """Stop the bot and close its database, then start both again over the same files and
    the same Bot API (as after a deploy or a crash)."""
    await harness.stop()
    if while_down is not None:
        await while_down(services)
    await services.close()
    fresh: Services = await factory()
    return await start_bot(fresh, harness.emulator), fresh


async def consent(chat: EmulatedChat) -> None:
    await chat.send("/start")
    await chat.tap("Saya setuju")


async def add_account(chat: EmulatedChat, phone: Phone, identifier: str,
                      label: str = "KK Saya", replacing: str | None = None) -> None:
    """The whole /tambah_kk flow; in a full cache it replaces the account labelled
    ``replacing`` (the first one listed if None)."""
    await chat.send("/tambah_kk")
    await chat.send(identifier)
    if "Pilih akun yang diganti" in chat.last_text:
        await chat.tap(replacing or chat.buttons[0])
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply, chat.reply
    await chat.send(phone.last_code())
    assert "Kode benar" in chat.reply, chat.reply
    if label in chat.buttons:
        await chat.tap(label)
    else:
        await chat.send(label)
    assert "Tersimpan" in chat.reply, chat.reply


def new(nik: str, label: str = "KK") -> NewAccount:
    """An account as the repository stores it, for tests below the conversations."""
    return NewAccount(nik=nik, card="0001" + nik[-9:], name="SITI RAHMAWATI", phone=PHONE,
                      label=label, status={"status_text": "AKTIF"})


async def fill_every_table(services: Services, chat: int) -> None:
    """A row of ``chat`` in every table that has chat rows (and the rate records)."""
    await services.consent.record(chat)
    await services.accounts.repo.add(chat, new(NIK_A, f"Ibu {chat}"), max_accounts=3, now=1.0)
    await services.accounts.repo.add(chat, new(NIK_B, f"Ayah {chat}"), max_accounts=3, now=2.0)
    await services.otp.issue(chat, purpose="add", nik=NIK_C, phone=PHONE,
                             payload={"kind": "nik", "value": NIK_C})
    persistence = SqlitePersistence(services.db)
    await persistence.update_conversation("tambah_kk", (chat,), 2)
    await persistence.update_chat_data(chat, {"bad_inputs": 1})
    await execute(services.db, ("INSERT INTO user_data (user_id, data) VALUES (?, '{}')", (chat,)))
    assert await services.reminders.repo.claim(chat, date(2026, 1, 5), 1.0)  # reminder_log
    notice = await services.operator.repo.draft("Perawatan", 1.0)
    assert await services.operator.repo.confirm(notice)
    assert await services.operator.repo.claim(notice, chat, 1.0)  # notice_deliveries
    assert await services.retention.repo.adopt("2026-01-05") >= 1  # chat_activity


async def chat_rows(services: Services, chat: int) -> dict[str, int]:
    """Rows of ``chat`` in every table that has a chat (or user) id column, found from the
    schema itself, so a table the erase forgets cannot hide from the tests."""
    counts: dict[str, int] = {}
    for table, columns in (await schema_columns(services.db)).items():
        for column in ("chat_id", "user_id"):
            if column in columns:
                row = await query_one(services.db,
                                      f"SELECT count(*) AS n FROM {table} WHERE {column} = ?",
                                      chat)
                counts[table] = int(row["n"]) if row else 0
    assert set(counts) >= {*CHAT_TABLES, "user_data"}
    return counts


def assert_a_row_in_every_table(counts: dict[str, int]) -> None:
    """Every table with a chat id holds at least one row of the chat (a dict's values, not
    its keys: ``all(counts)`` is true for any dict with non-empty names)."""
    assert set(counts) >= {*CHAT_TABLES, "user_data"}
    assert [table for table, rows in counts.items() if rows < 1] == []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Cluster]:
    """A PostgreSQL server for the whole session (tests/pgserver.py says where from); the
    tests are skipped with the reason when there is none, failed if KK_REQUIRE_POSTGRES."""
    try:
        with postgres_server() as cluster:
            yield cluster
    except PostgresUnavailable as exc:
        if pgserver.required():
            pytest.fail(f"PostgreSQL required ({pgserver.ENV_REQUIRE}) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(scope="session")
def pg_url(pg_server: Cluster) -> str:
    """The server's URL (its maintenance database)."""
    return pg_server.url


@pytest.fixture
def pg_db_url(pg_url: str) -> Iterator[str]:
    """A fresh, empty database of its own for one test, dropped after it."""
    import psycopg
    from psycopg import sql

    name = f"kk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pgserver.with_database(pg_url, name)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))
