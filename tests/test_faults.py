"""Faults of the real world never cost a user their flow or their data: Telegram's 5xx,
lost answers and rate limits, bursts of taps, and a database that is locked or full."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest
from psycopg import errors as pg_errors

from bot import texts
from bot.devtools.emulator import BotApiEmulator, Fault
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from handlers.errors import reply_for
from storage.pg import ConnectionLost, PgUnavailable
from tests.conftest import NIK_A, NIK_B, NIK_C, FakeClock, Phone, add_account, consent


def every(n: int, fault: Fault, *methods: str) -> Callable[[str], Fault | None]:
    """The n-th, 2n-th … call of the given methods (all but getUpdates if none) fails."""
    seen: Counter[str] = Counter()

    def decide(method: str) -> Fault | None:
        if method == "getUpdates" or (methods and method not in methods):
            return None
        seen["calls"] += 1
        return fault if seen["calls"] % n == 0 else None
    return decide


def once(fault: Fault, method: str) -> Callable[[str], Fault | None]:
    fired: list[bool] = []

    def decide(name: str) -> Fault | None:
        if name == method and not fired:
            fired.append(True)
            return fault
        return None
    return decide


async def test_every_fourth_call_answered_502_and_a_whole_card_is_still_added(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    bot.emulator.faults = every(4, Fault.GATEWAY)
    await add_account(chat, phone, NIK_A, "Ibu")
    await chat.send("/status")
    assert "Faskes pertama" in chat.last_text
    assert len(bot.emulator.injected) >= 2, "faults were really injected"
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["Ibu"]
    texts = [m.text for m in chat.bot_messages]
    assert len(texts) == len(set(texts)), "no reply was sent twice"
    assert not [e for e in bot.emulator.errors], bot.emulator.errors


async def test_a_lost_answer_to_a_send_is_not_sent_again(
        bot: BotHarness, chat: EmulatedChat) -> None:
    """The message reached the chat but its answer was lost: a blind retry would show it
    twice. The update fails instead and the user gets the apology once."""
    bot.emulator.faults = once(Fault.LOST, "sendMessage")
    await chat.send("/bantuan")
    helps = [m for m in chat.bot_messages if "Perintah Asisten KK" in m.text]
    assert len(helps) == 1
    assert "Maaf, terjadi kesalahan" in chat.last_text


@pytest.mark.parametrize("fault", [Fault.LOST, Fault.SERVER, Fault.GATEWAY, Fault.REFUSED])
async def test_edits_and_answers_are_repeated_safely(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        fault: Fault) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    await chat.send("/akun")
    listing = chat.last_message
    for method in ("answerCallbackQuery", "editMessageText"):
        bot.emulator.faults = once(fault, method)
        answer = await chat.tap("Ibu" if method == "answerCallbackQuery" else "Ayah",
                                message=listing)
        assert answer is not None and answer["text"].startswith("📌 «")
    after = [m for m in chat.bot_messages if m.message_id > listing.message_id]
    assert [m.text.split("\n")[0] for m in after] == ["Ibu 📌", "Ayah 📌"], \
        "one card per switch; the listing itself is edited, never sent again"
    shown = chat.emulator.chats[chat.chat_id].messages[listing.message_id]
    assert shown.buttons[1][0].startswith("📌 Ayah")
    assert "Maaf" not in chat.reply
    assert len(bot.emulator.injected) == 2


async def test_telegram_rate_limits_are_waited_out(
        bot: BotHarness, chat: EmulatedChat) -> None:
    bot.emulator.faults = once(Fault.RATE_LIMITED, "sendMessage")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await chat.send("/bantuan")
    assert "Perintah Asisten KK" in chat.last_text
    assert loop.time() - started >= 0.9, "retry_after was 1 second"


async def test_when_every_retry_fails_the_flow_stays_where_the_user_saw_it(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    bot.emulator.faults = lambda method: Fault.GATEWAY if method == "editMessageText" else None
    await chat.send(NIK_A)  # the code is sent, but the notice cannot be shown
    assert "Memproses" in chat.last_text or "Maaf" in chat.last_text
    assert len(bot.emulator.injected) == 4, "one call and three retries"
    bot.emulator.faults = None
    await chat.send(phone.last_code())  # the SMS arrived: the code still works
    assert "Kode benar" in chat.reply
    await chat.send("Ibu")
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["Ibu"]


async def test_a_burst_of_150_taps_is_answered_tap_by_tap(
        bot: BotHarness, chat: EmulatedChat, phone: Phone,
        caplog: pytest.LogCaptureFixture) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    await chat.send("/akun")
    listing = chat.last_message
    caplog.set_level(logging.WARNING, logger="bot.processor")
    queries = [bot.emulator.user_taps(chat.chat_id, listing.message_id, data)
               for data in [listing.buttons[i % 2][1] for i in range(150)]]
    await bot.settle()
    for _ in range(200):
        if not bot.emulator.unanswered_queries():
            break
        await asyncio.sleep(0.01)
    assert bot.emulator.unanswered_queries() == []
    answers = [bot.emulator.answer_of(q) for q in queries]
    too_fast = [a for a in answers if a is not None and a["text"].startswith("Terlalu cepat")]
    assert too_fast and len(too_fast) == bot.processor.dropped_taps
    bursts = [r for r in caplog.records if "burst" in r.getMessage()]
    assert len(bursts) == 1, "one line per burst, not one per update"
    # Taps made at once all carry the listing as it was; an edit computed from that old
    # copy can match what the message already shows, and Telegram says "not modified".
    bot.emulator.errors[:] = [e for e in bot.emulator.errors if "not modified" not in e[1]]


async def test_taps_in_flight_together_leave_the_listing_true(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    """Every tap carries the listing as it was when tapped; the last edit must still show
    the account that is really active."""
    await consent(chat)
    for nik, label in ((NIK_A, "Ibu"), (NIK_B, "Ayah"), (NIK_C, "Nenek")):
        await add_account(chat, phone, nik, label)
    await chat.send("/akun")
    listing = chat.last_message
    for order in ((0, 1), (1, 0), (2, 0), (0, 2), (1, 2)):
        for index in order:
            bot.emulator.user_taps(chat.chat_id, listing.message_id, listing.buttons[index][1])
        await bot.settle()
        active = next(a.label for a in await services.accounts.list(chat.chat_id) if a.active)
        shown = [label for label, _ in chat.emulator.chats[chat.chat_id].messages[
            listing.message_id].buttons if label.startswith("📌")]
        assert shown == [f"📌 {active} · " + shown[0].split(" · ")[1]], (order, shown, active)


async def test_a_forged_tap_on_a_listing_sends_no_edit(
        bot: BotHarness, chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await chat.send("/akun")
    edits = bot.emulator.calls.get("editMessageText", 0)
    for forged in ("acct:switch:nope", "acct:switch:AAAAAAAA"):
        answer = await chat.tap_data(forged)
        assert answer is not None and "tidak ada di daftar" in answer["text"]
    assert bot.emulator.calls.get("editMessageText", 0) == edits


# -- the database ---------------------------------------------------------------------

async def lock_the_database(services: Services) -> sqlite3.Connection:
    """Another process takes the write lock and keeps it; the bot waits 0.2 s, not 5."""
    await services.db.run(lambda conn: conn.execute("PRAGMA busy_timeout = 200"))
    other = sqlite3.connect(services.settings.database_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_database_locked_by_another_process_says_busy_and_changes_nothing(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    before = await services.accounts.list(chat.chat_id)
    await chat.send("/akun")
    other = await lock_the_database(services)
    try:
        await chat.tap("Ibu")
        assert "Server sedang sibuk" in chat.reply and "Tidak ada yang berubah" in chat.reply
        assert chat.last_answer is not None, "the tap was answered"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await services.accounts.list(chat.chat_id) == before
    await chat.tap("Ibu")
    assert chat.last_answer is not None and chat.last_answer["text"] == "📌 «Ibu» dipilih"


async def test_a_full_disk_says_so_writes_nothing_and_the_flow_resumes(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        clock: FakeClock) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await chat.send("/tambah_kk")
    await chat.send(NIK_C)
    await chat.send(phone.last_code())
    assert "Kode benar" in chat.reply

    def fill(conn: sqlite3.Connection) -> None:
        """No new page allowed, and the accounts table and its indexes filled with rows of
        another chat shaped like real ones, so the next account cannot fit (SQLITE_FULL)."""
        real = conn.execute("SELECT * FROM accounts LIMIT 1").fetchone()
        columns = [c[1] for c in conn.execute("PRAGMA table_info(accounts)")]
        conn.execute("PRAGMA max_page_count = " + str(
            conn.execute("PRAGMA page_count").fetchone()[0]))
        marks = ", ".join("?" for _ in columns)
        try:
            for i in range(100_000):
                row = dict(zip(columns, real, strict=True))
                row.update(chat_id=-1, slot=f"ballast{i}", nik_index=i.to_bytes(32, "big"),
                           active=0)
                conn.execute(f"INSERT INTO accounts VALUES ({marks})", list(row.values()))
        except sqlite3.OperationalError as exc:
            assert "full" in str(exc)
        else:
            raise AssertionError("the database never filled up")

    await services.db.run(fill)
    before = await services.accounts.list(chat.chat_id)
    await chat.send("Nenek")
    assert "Penyimpanan server sedang penuh" in chat.reply
    assert await services.accounts.list(chat.chat_id) == before, "nothing half-written"
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.consumed_at is not None, "the code still counts"

    def free(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA max_page_count = 1073741823")
        conn.execute("DELETE FROM accounts WHERE chat_id = -1")

    await services.db.run(free)
    await chat.send("Nenek")
    assert "Tersimpan" in chat.reply
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["Ibu", "Nenek"]


def test_the_emulator_can_refuse_and_lose_answers() -> None:
    emulator = BotApiEmulator()
    emulator.faults = every(2, Fault.GATEWAY, "getMe")
    assert asyncio.run(emulator.handle("getMe", {}))[0] == 200
    assert asyncio.run(emulator.handle("getMe", {}))[0] == 502


def test_postgres_trouble_gets_the_words_sqlite_trouble_gets() -> None:
    """Refused past the re-runs, unreachable, shutting down: busy, nothing changed; out of
    disk (53100): full; a connection lost mid-unit may have committed: the plain error."""
    for busy in (pg_errors.SerializationFailure("could not serialize access"),
                 pg_errors.DeadlockDetected("deadlock detected"),
                 pg_errors.LockNotAvailable("could not obtain lock"),
                 pg_errors.AdminShutdown("terminating connection"),
                 psycopg.OperationalError("connection failed: Connection refused"),
                 PgUnavailable("PostgreSQL at postgresql://h/db cannot be opened"),
                 sqlite3.OperationalError("database is locked")):
        assert reply_for(busy) == texts.DB_BUSY, busy
    for full in (pg_errors.DiskFull("could not extend file: No space left on device"),
                 sqlite3.OperationalError("database or disk is full")):
        assert reply_for(full) == texts.DISK_FULL, full
    for other in (ConnectionLost("lost during a unit of work"), ValueError("x"), None):
        assert reply_for(other) == texts.ERROR, other
