"""Reminders: opted in per account with two taps; a round on a given day sends each chat at
most one message, with arrears from the 5th to the 10th and status changes any day; a
backend failure says nothing and is retried; nothing is ever sent twice, not after a
restart in the middle of a round; a thousand chats are paced under Telegram's limits."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from telegram.ext import CallbackContext

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import Identifier, IdKind
from bot.jkn.sandbox import SandboxBackend
from bot.reminders import Notice, Pacer, RoundReport
from bot.services import Services
from handlers.reminders import daily_round, deliver_with
from storage.accounts_repo import NewAccount
from tests.conftest import (
    NIK_A,
    NIK_B,
    NIK_C,
    FakeClock,
    FastSandbox,
    Phone,
    ServicesFactory,
    add_account,
    both_stores,
    consent,
    start_bot,
)
from tests.dbsql import execute, query_one

store = both_stores  # every test here runs on SQLite and on PostgreSQL

ARREARS_NIK = "3174014506900001"  # the sandbox's participant with 3 months unpaid
NOVEMBER = {day: date(2026, 11, day) for day in range(1, 31)}


class FakeTime:
    """The pacer's clock and sleep: sleeping moves time, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def pace(services: Services) -> FakeTime:
    fake = FakeTime()
    services.reminders.pacer = Pacer(20.0, clock=fake, sleep=fake.sleep)
    return fake


async def opt_in(chat: EmulatedChat, *labels: str) -> None:
    await chat.send("/pengingat")
    for label in labels:
        await chat.tap(label)


def reminders_in(chat: EmulatedChat) -> list[str]:
    return [m.text for m in chat.bot_messages if m.text.startswith("🔔 Pengingat JKN —")]


async def round_on(bot: BotHarness, services: Services, day: date) -> RoundReport:
    assert bot.app is not None
    report = await services.reminders.run_round(day, deliver_with(bot.app.bot))
    await bot.settle()
    return report


async def test_two_taps_opt_in_and_show_the_next_round(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    await chat.send("/pengingat")
    assert chat.buttons == ["🔕 Ibu · 3174********0011", "🔕 Ayah · 3273********0022"]
    assert "Belum ada pengingat yang menyala" in chat.last_text
    answer = await chat.tap("Ibu")
    assert answer is not None and answer["text"] == "Pengingat «Ibu» dinyalakan"
    assert chat.buttons[0].startswith("🔔 Ibu")
    nxt = services.reminders.next_round()
    assert f"{nxt.day} " in chat.last_text and "07:00 WIB" in chat.last_text
    assert [(b.label, b.remind) for b in await services.accounts.list_brief(1001)] == [
        ("Ibu", True), ("Ayah", False)]
    await chat.tap("Ibu")
    assert chat.buttons[0].startswith("🔕 Ibu") and "Belum ada pengingat" in chat.last_text


async def test_the_status_card_leads_to_the_reminders_and_forged_toggles_do_nothing(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await chat.send("/status")
    await chat.tap("Pengingat")
    assert "Pengingat JKN" in chat.last_text and chat.buttons == ["🔕 Ibu · 3174********0011"]
    other = bot.chat(2002)
    await consent(other)
    await add_account(other, phone, NIK_B, "Orang lain")
    theirs = (await services.accounts.list_brief(2002))[0].slot
    answer = await chat.tap_data(f"rem:toggle:{theirs}")
    assert answer is not None and "tidak ada di daftar" in answer["text"]
    assert not (await services.accounts.list_brief(2002))[0].remind


@pytest.mark.parametrize(("day", "expected"), [(4, False), (5, True), (10, True), (11, False)])
async def test_arrears_are_told_from_the_fifth_to_the_tenth(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        pace: FakeTime, day: int, expected: bool) -> None:
    await consent(chat)
    await add_account(chat, phone, ARREARS_NIK, "Nunggak")
    await opt_in(chat, "Nunggak")
    report = await round_on(bot, services, NOVEMBER[day])
    sent = reminders_in(chat)
    assert bool(sent) is expected and report.sent == int(expected)
    if expected:
        text = sent[0]
        assert "Iuran belum dibayar" in text and "«Nunggak»: 3 bulan" in text
        assert re.search(r"virtual account 88888\d{11}", text)
        # the sandbox's card with arrears is already inactive: no future due date
        assert "Kartu sudah tidak aktif dan belum bisa dipakai berobat" in text
        assert "paling lambat" not in text
        assert chat.bot_messages[-1].protected


async def test_a_status_change_is_told_once_and_no_change_says_nothing(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, pace: FakeTime) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    await opt_in(chat, "Ibu", "Ayah")
    assert (await round_on(bot, services, NOVEMBER[20])).nothing == 1
    assert reminders_in(chat) == []
    backend.changed[NIK_A] = {"active": False, "status_text": "TIDAK AKTIF", "status_code": "1"}
    await round_on(bot, services, NOVEMBER[21])
    (text,) = reminders_in(chat)
    assert "«Ibu»: status AKTIF → TIDAK AKTIF" in text
    assert "Kartu belum bisa dipakai berobat sampai tunggakan lunas" in text
    assert "Ayah" not in text
    await round_on(bot, services, NOVEMBER[22])
    assert len(reminders_in(chat)) == 1, "a change is told once"
    backend.changed[NIK_A] = {"fktp_name": "Klinik Baru", "fktp_code": "X1"}
    await round_on(bot, services, NOVEMBER[23])
    assert "TIDAK AKTIF → AKTIF" in reminders_in(chat)[-1]
    assert "faskes pertama" in reminders_in(chat)[-1] and "Klinik Baru" in reminders_in(chat)[-1]


async def test_a_second_run_the_same_day_sends_nothing(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        pace: FakeTime) -> None:
    await consent(chat)
    await add_account(chat, phone, ARREARS_NIK, "Nunggak")
    await opt_in(chat, "Nunggak")
    first = await round_on(bot, services, NOVEMBER[7])
    second = await round_on(bot, services, NOVEMBER[7])
    assert (first.sent, second.sent, second.already) == (1, 0, 1)
    assert len(reminders_in(chat)) == 1
    assert (await round_on(bot, services, NOVEMBER[8])).sent == 1, "one a day, every day"


async def test_backend_down_sends_nothing_and_the_next_round_tells_it(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, pace: FakeTime) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await opt_in(chat, "Ibu")
    backend.changed[NIK_A] = {"active": False, "status_text": "TIDAK AKTIF"}
    backend.down = True
    report = await round_on(bot, services, NOVEMBER[20])
    assert (report.sent, report.backend_failures) == (0, 1) and reminders_in(chat) == []
    backend.down = False
    await round_on(bot, services, NOVEMBER[21])
    assert "AKTIF → TIDAK AKTIF" in reminders_in(chat)[0]


async def test_opted_out_accounts_and_chats_get_nothing(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, pace: FakeTime) -> None:
    await consent(chat)
    await add_account(chat, phone, ARREARS_NIK, "Nunggak")
    await add_account(chat, phone, NIK_B, "Ayah")
    await opt_in(chat, "Ayah")
    calls = backend.lookups
    report = await round_on(bot, services, NOVEMBER[7])
    assert reminders_in(chat) == [] and report.chats == 1
    assert backend.lookups == calls + 1, "only the opted-in account is asked about"


async def test_removing_an_account_or_the_chat_removes_its_reminders(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        pace: FakeTime) -> None:
    await consent(chat)
    await add_account(chat, phone, ARREARS_NIK, "Nunggak")
    await add_account(chat, phone, NIK_B, "Ayah")
    await opt_in(chat, "Nunggak", "Ayah")
    await round_on(bot, services, NOVEMBER[7])
    await chat.send("/hapus_kk")
    await chat.tap("Nunggak")
    await chat.tap("Ya, hapus")
    assert [(a.label, a.remind) for a in await services.accounts.list_brief(1001)] == [
        ("Ayah", True)]
    await chat.send("/hapus_data")
    await chat.tap("Ya, hapus semua")
    row = await query_one(services.db,
                          "SELECT count(*) AS n FROM reminder_log WHERE chat_id = 1001")
    assert row is not None and row["n"] == 0
    assert (await round_on(bot, services, NOVEMBER[8])).chats == 0


async def test_a_restart_in_the_middle_of_a_round_sends_nothing_twice_and_loses_nothing(
        services_factory: ServicesFactory, phone: Phone, clock: FakeClock) -> None:
    services = await services_factory()
    harness = await start_bot(services)
    chats = [harness.chat(3000 + i) for i in range(12)]
    for i, chat in enumerate(chats):  # twelve different participants in arrears
        await consent(chat)
        await add_account(chat, phone, f"3174014506{70 + i:02d}0001", "Nunggak")
        await opt_in(chat, "Nunggak")
    await harness.stop()
    sent: Counter[int] = Counter()

    async def recording(notice: Notice) -> bool:
        sent[notice.chat_id] += 1
        if sum(sent.values()) == 5:
            stopping.cancel()  # the bot stops while the round is half done
            await asyncio.sleep(0)
        return True

    stopping = asyncio.create_task(services.reminders.run_round(NOVEMBER[7], recording))
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert 5 <= sum(sent.values()) < 12
    await services.close()
    restarted = await services_factory()
    assert not await restarted.reminders.repo.round_done(NOVEMBER[7])
    await restarted.reminders.run_round(NOVEMBER[7], recording)
    assert set(sent) == {c.chat_id for c in chats}, "nothing lost"
    assert set(sent.values()) == {1}, "nothing twice"
    assert await restarted.reminders.repo.round_done(NOVEMBER[7])


async def test_a_thousand_chats_are_each_told_once_at_twenty_a_second(
        services: Services, pace: FakeTime) -> None:
    person = SandboxBackend().participant(Identifier(IdKind.NIK, ARREARS_NIK))
    for chat_id in range(10_000, 11_000):
        await services.accounts.repo.add(chat_id, NewAccount(
            nik=ARREARS_NIK, card=person.card, name=person.name, phone="+6281234567890",
            label="Nunggak", status=person.to_dict()), max_accounts=3,
            now=services.accounts.clock())  # verified now: within KK_SESSION_DAYS
    await execute(services.db, "UPDATE accounts SET remind = 1")
    times: list[float] = []
    told: Counter[int] = Counter()
    pacer = services.reminders.pacer
    passing = pacer.wait

    async def timed() -> None:  # when each message was let through
        await passing()
        times.append(pace.now)

    pacer.wait = timed  # type: ignore[method-assign]

    async def recording(notice: Notice) -> bool:
        told[notice.chat_id] += 1
        return True

    report = await services.reminders.run_round(NOVEMBER[6], recording)
    assert report.sent == 1000 and len(told) == 1000 and set(told.values()) == {1}
    assert all(later - earlier >= 1.0 - 1e-6 for earlier, later in zip(
        times, times[20:], strict=False)), "at most 20 in any second"
    assert 49 <= times[-1] - times[0] <= 51, "spread over the fifty seconds they take"
    again = await services.reminders.run_round(NOVEMBER[6], recording)
    assert again.sent == 0 and again.already == 1000


async def test_the_daily_job_is_scheduled_and_runs_a_round(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, pace: FakeTime) -> None:
    assert bot.app is not None and bot.app.job_queue is not None
    (job,) = bot.app.job_queue.get_jobs_by_name("reminders")
    trigger: Any = job.trigger
    # the next run after 01:00 UTC (08:00 in Jakarta) is 00:00 UTC the next day: 07:00 WIB,
    # not 07:00 in UTC or the machine's zone ("hour='7'" in the text reads the same either way)
    after = datetime(2026, 11, 6, 1, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 11, 7, 0, 0, tzinfo=UTC)
    before = datetime(2026, 11, 6, 23, 59, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, before) == datetime(2026, 11, 7, 0, 0, tzinfo=UTC)
    await consent(chat)
    await add_account(chat, phone, NIK_C, "Mertua")
    await opt_in(chat, "Mertua")
    backend.changed[NIK_C] = {"class_text": "KELAS I"}
    await daily_round(CallbackContext(bot.app))
    await bot.settle()
    assert "«Mertua»: kelas" in reminders_in(chat)[0]
