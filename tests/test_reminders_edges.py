"""The reminder round at its edges (issue 19, the survivors of mutation testing of
bot/reminders.py), below the Bot API: what the round counts and logs for each kind of
chat, when the next round is, and what a notice holds."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.identity import Identifier, IdKind
from bot.reminders import Change, Notice, Pacer, RoundReport, changes_between
from bot.services import Services
from bot.wib import WIB_ZONE
from tests.conftest import NIK_B, NIK_C, FakeClock, FastSandbox, new
from tests.dbsql import query_one

ARREARS = ("3174014506700001", "3174014506710001", "3174014506720001")
DAY = date(2026, 11, 7)


class FakeTime:
    """The pacer's clock and sleep: sleeping moves time, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def pace(services: Services) -> FakeTime:
    fake = FakeTime()
    services.reminders.pacer = Pacer(20.0, clock=fake, sleep=fake.sleep)
    return fake


async def _opted_in(services: Services, chat: int, nik: str, label: str) -> str:
    """An opted-in account whose saved status is what the backend says now."""
    account, _ = await services.accounts.repo.add(chat, new(nik, label), max_accounts=3,
                                                  now=services.clock())
    slot = account.slot
    await services.accounts.save_status(chat, slot, await _status_now(services, nik))
    assert await services.accounts.set_remind(chat, slot, True)
    return slot


async def _status_now(services: Services, nik: str) -> dict[str, Any]:
    found = await services.backend.lookup(Identifier(IdKind.NIK, nik))
    data: dict[str, Any] = found.to_dict()
    return data


async def test_the_round_counts_and_logs_each_kind_of_chat(
        services: Services, pace: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    sent_to = await _opted_in(services, 1, ARREARS[0], "Satu")
    await _opted_in(services, 2, ARREARS[1], "Dua")  # Telegram refuses it
    await _opted_in(services, 3, ARREARS[2], "Tiga")  # already told today
    await _opted_in(services, 4, NIK_B, "Empat")
    assert await services.reminders.repo.claim(3, DAY, services.clock())
    told: list[Notice] = []

    async def deliver(notice: Notice) -> bool:
        told.append(notice)
        return notice.chat_id != 2

    before = {o: _chats_counted(o) for o in ("sent", "already", "nothing", "refused")}
    with caplog.at_level(logging.INFO, logger="bot.reminders"):
        report = await services.reminders.run_round(DAY, deliver)
    assert report == RoundReport(DAY, chats=4, sent=1, already=1, nothing=1, failed=1,
                                 backend_failures=0)
    assert {o: _chats_counted(o) - before[o] for o in before} == {
        "sent": 1, "already": 1, "nothing": 1, "refused": 1}
    assert sorted(n.chat_id for n in told) == [1, 2]
    (one,) = [n for n in told if n.chat_id == 1]
    assert [(a.label, a.months, a.due, a.slot) for a in one.arrears] == [
        ("Satu", 3, date(2026, 11, 10), sent_to)]
    assert [r.getMessage() for r in caplog.records if r.name == "bot.reminders"] == [
        "reminder round 2026-11-07: 4 chat(s), 1 sent, 1 with nothing to say, "
        "1 already sent, 1 failed, 0 backend failure(s)"]
    assert await services.reminders.repo.round_done(DAY)
    again = await services.reminders.run_round(DAY, deliver)
    assert (again.sent, again.already, again.nothing) == (0, 2, 1), \
        "the refused one is released, the sent one is not"


async def test_a_backend_failure_is_counted_per_account_and_logged_without_identifiers(
        services: Services, backend: FastSandbox, pace: FakeTime,
        caplog: pytest.LogCaptureFixture) -> None:
    await _opted_in(services, 1, ARREARS[0], "Satu")
    await _opted_in(services, 1, ARREARS[1], "Dua")
    backend.down = True

    async def deliver(notice: Notice) -> bool:
        raise AssertionError("nothing to tell")

    before = _chats_counted("backend_failure")
    with caplog.at_level(logging.INFO, logger="bot.reminders"):
        report = await services.reminders.run_round(DAY, deliver)
    assert (report.chats, report.nothing, report.backend_failures) == (1, 1, 2)
    assert _chats_counted("backend_failure") - before == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.reminders"]
    assert messages == ["reminder: a status could not be fetched (JknUnavailable)"] * 2 + [
        "reminder round 2026-11-07: 1 chat(s), 0 sent, 1 with nothing to say, "
        "0 already sent, 0 failed, 2 backend failure(s)"]


@pytest.mark.parametrize(("at", "due", "next_day"), [
    ("06:59:59", False, 0), ("07:00:00", True, 1), ("23:59:59", True, 1), ("00:00:00", False, 0),
])
async def test_the_next_round_and_whether_today_is_due_turn_at_the_time_exactly(
        services: Services, clock: FakeClock, at: str, due: bool, next_day: int) -> None:
    wib = datetime.fromisoformat(f"2026-11-07T{at}").replace(tzinfo=WIB_ZONE)
    clock.now = wib.timestamp()
    reminders = services.reminders
    assert reminders.today() == DAY
    assert reminders.due_now() is due
    assert reminders.next_round() == datetime(2026, 11, 7, 7, 0) + timedelta(days=next_day)
    assert await reminders.missed_today() is due
    await reminders.repo.mark_round_done(DAY)
    assert await reminders.missed_today() is False


async def test_the_pacer_lets_one_through_every_interval_in_order() -> None:
    fake = FakeTime()
    pacer = Pacer(20.0, clock=fake, sleep=fake.sleep)
    assert pacer.interval == 0.05
    for _ in range(3):
        await pacer.wait()
    assert fake.slept == pytest.approx([0.05, 0.05])
    fake.now += 1.0  # idle for a while: the next one passes at once
    await pacer.wait()
    assert len(fake.slept) == 2


async def _log_rows(services: Services, chat: int) -> int:
    row = await query_one(services.db,
                          "SELECT count(*) AS n FROM reminder_log WHERE chat_id = ?", chat)
    assert row is not None
    return int(row["n"])


async def test_chats_whose_only_news_was_removed_during_the_round_are_released(
        services: Services, pace: FakeTime) -> None:
    """Two chats, each with one account in arrears and one with nothing to say; the one in
    arrears is removed between the backend's answer and the send: nothing is sent, each
    counts as "nothing to say", and the day's claim is given back."""
    news = {}
    for chat in (1, 2):
        news[chat] = await _opted_in(services, chat, ARREARS[chat], "Nunggak")
        await _opted_in(services, chat, NIK_B, "Ayah")
    asked = services.reminders.notice_for

    async def meanwhile(chat_id: int, slots: list[str], day: date, report: RoundReport
                        ) -> Notice:
        notice = await asked(chat_id, slots, day, report)
        assert notice.arrears
        assert await services.accounts.remove(chat_id, news[chat_id]) is not None
        return notice

    services.reminders.notice_for = meanwhile  # type: ignore[method-assign]

    async def deliver(notice: Notice) -> bool:
        raise AssertionError("nothing to tell")

    report = await services.reminders.run_round(DAY, deliver)
    assert (report.chats, report.nothing, report.sent, report.already) == (2, 2, 0, 0)
    assert [await _log_rows(services, chat) for chat in (1, 2)] == [0, 0]


async def test_a_round_stopped_right_after_the_claim_gives_the_claim_back(
        services: Services, pace: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    await _opted_in(services, 1, ARREARS[0], "Nunggak")
    repo = services.reminders.repo
    claim = repo.claim_held

    async def claim_then_stop(*args: Any, **kwargs: Any) -> Any:
        await claim(*args, **kwargs)
        assert await _log_rows(services, 1) == 1
        raise asyncio.CancelledError  # the bot stops before the send

    monkeypatch.setattr(repo, "claim_held", claim_then_stop)
    told: list[int] = []

    async def deliver(notice: Notice) -> bool:
        told.append(notice.chat_id)
        return True

    with pytest.raises(asyncio.CancelledError):
        await services.reminders.run_round(DAY, deliver)
    assert told == [] and await _log_rows(services, 1) == 0, "the claim is given back"
    monkeypatch.setattr(repo, "claim_held", claim)
    assert (await services.reminders.run_round(DAY, deliver)).sent == 1 and told == [1]


@pytest.mark.parametrize(("amount", "told"), [(0, False), (1, True)])
async def test_arrears_of_a_single_rupiah_are_told(
        services: Services, backend: FastSandbox, pace: FakeTime, amount: int,
        told: bool) -> None:
    await _opted_in(services, 1, ARREARS[0], "Nunggak")
    backend.changed[ARREARS[0]] = {"unpaid_amount": amount}
    notices: list[Notice] = []

    async def deliver(notice: Notice) -> bool:
        notices.append(notice)
        return True

    await services.reminders.run_round(DAY, deliver)
    assert [a.amount for n in notices for a in n.arrears] == ([amount] if told else [])


async def test_each_change_carries_the_status_now(services: Services) -> None:
    before = await services.backend.lookup(Identifier(IdKind.NIK, NIK_B))
    assert before.active
    inactive = dataclasses.replace(before, active=False)
    assert changes_between("Ayah", before, inactive, "s1") == [
        Change("Ayah", "status", before.status_text, before.status_text, False, "s1")]
    renamed = dataclasses.replace(before, status_text="TIDAK AKTIF")
    assert changes_between("Ayah", before, renamed, "s1") == [
        Change("Ayah", "status", before.status_text, "TIDAK AKTIF", True, "s1")]
    moved = dataclasses.replace(before, class_text="KELAS X", fktp_code="X9",
                                fktp_name="Klinik Baru", active=False,
                                status_text="TIDAK AKTIF")
    assert changes_between("Ayah", before, moved, "s1") == [
        Change("Ayah", "status", before.status_text, "TIDAK AKTIF", False, "s1"),
        Change("Ayah", "class", before.class_text, "KELAS X", False, "s1"),
        Change("Ayah", "fktp", before.fktp_name, "Klinik Baru", False, "s1")]
    assert changes_between("Ayah", before, before, "s1") == []


def _chats_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("kk_reminder_chats_total", {"outcome": outcome}) or 0.0


async def test_every_chat_of_every_page_is_counted_once_by_its_outcome(
        services: Services, pace: FakeTime, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Eight chats over pages of two: two told, two refused by Telegram, two whose send
    ended in an unknown outcome, two with nothing to say."""
    for chat in range(1, 7):
        await _opted_in(services, chat, f"3174014506{70 + chat:02d}0001", "Nunggak")
    await _opted_in(services, 7, NIK_B, "Ayah")
    await _opted_in(services, 8, NIK_C, "Ibu")
    repo = services.reminders.repo
    monkeypatch.setattr(repo, "opted_in", functools.partial(repo.opted_in, limit=2))

    async def deliver(notice: Notice) -> bool:
        if notice.chat_id in (3, 4):
            return False
        if notice.chat_id in (5, 6):
            raise RuntimeError("the answer was lost")
        return True

    before = {o: _chats_counted(o) for o in ("sent", "nothing", "refused")}
    with caplog.at_level(logging.INFO, logger="bot.reminders"):
        report = await services.reminders.run_round(DAY, deliver)
    assert report == RoundReport(DAY, chats=8, sent=2, nothing=2, failed=4)
    assert {o: _chats_counted(o) - before[o] for o in before} == {
        "sent": 2, "nothing": 2, "refused": 4}
    unknown = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in unknown] == [
        "reminder: sending failed with an unknown outcome"] * 2
    assert all(r.exc_info is not None for r in unknown)
    assert [await _log_rows(services, chat) for chat in range(1, 9)] == [1, 1, 0, 0, 1, 1, 0, 0]
