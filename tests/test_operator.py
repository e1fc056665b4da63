"""The operator's chats (OPERATOR_CHAT_IDS, issue 23 item 9): /stats gives counts only and
is an unknown command anywhere else; /pengumuman is previewed, confirmed once and sent to
every consented chat once, resumed after a restart without anyone messaged twice; alerts
reach the operators (and the log) once an hour per kind, with no identifier."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from typing import Any

import pytest
from telegram.ext import CallbackContext

from bot import texts
from bot.config import SettingsError, load_settings, unknown_settings
from bot.devtools.harness import BotHarness
from bot.jkn.base import JknCredentialsRejected
from bot.services import Services
from handlers import errors, operator
from tests.conftest import (
    NIK_A,
    FakeClock,
    Phone,
    ServicesFactory,
    add_account,
    consent,
    restart,
    start_bot,
)
from tests.dbsql import query
from tests.process import wait_for

OPERATOR = 9001


@pytest.fixture
async def services(services_factory: ServicesFactory) -> Services:
    svc: Services = await services_factory(operator_chat_ids=f" {OPERATOR}, 9002 ")
    return svc


def notices_in(bot: BotHarness, chat_id: int) -> list[str]:
    return [m.text for m in bot.emulator.bot_messages(chat_id)
            if m.text.startswith("📢 Pengumuman Asisten KK")]


async def test_stats_counts_only_and_is_unknown_elsewhere(bot: BotHarness, phone: Phone
                                                          ) -> None:
    user = bot.chat(1001, title="Ani")
    await consent(user)
    await add_account(user, phone, NIK_A, "Ibu")
    admin = bot.chat(OPERATOR)
    await admin.send("/stats")
    shown = admin.last_text
    assert "Chat yang sudah setuju: 1" in shown
    assert "Akun tersimpan: 1" in shown
    assert "Kode OTP terkirim hari ini: 1" in shown
    for secret in (NIK_A, "1001", "Ibu", "SITI", phone.inbox[-1][0]):
        assert secret not in shown
    await user.send("/xyz")
    unknown = user.reply
    assert texts.UNKNOWN_COMMAND in unknown
    await user.send("/stats")
    assert user.reply == unknown  # as /xyz: nothing says it exists
    await user.send("/pengumuman Bot dimatikan")
    assert user.reply == unknown
    assert await query(bot.services.db, "SELECT id FROM notices") == []


async def test_a_notice_is_previewed_confirmed_once_and_sent_once(bot: BotHarness) -> None:
    users = [bot.chat(2000 + i) for i in range(5)]
    bot.chat(9002)  # the second operator
    for user in users[:4]:
        await consent(user)
    admin = bot.chat(OPERATOR)
    await admin.send("/pengumuman")
    assert "Tulis pengumumannya" in admin.reply, "no text: how to use it"
    await admin.send("/pengumuman " + "x" * 3501)
    assert "Tulis pengumumannya" in admin.reply, "too long"
    await admin.send("/pengumuman Perawatan <server> Minggu 22.00\nMaaf ya.")
    assert "(4 chat)" in admin.reply and "&lt;server&gt;" not in admin.last_text
    assert "Perawatan <server> Minggu 22.00\nMaaf ya." in admin.last_text
    assert notices_in(bot, users[0].chat_id) == [], "nothing before the confirmation"
    preview = admin.last_message
    stranger = users[4]  # a forged tap from a chat that is not an operator's
    data = next(d for label, d in preview.buttons if "Kirim" in label)
    await stranger.send("/start")
    answer = await stranger.tap_data(data)
    assert answer is not None and answer["text"] == texts.STALE_BUTTON
    await admin.tap("Kirim", message=preview)
    await wait_for(lambda: any("Pengumuman selesai" in m.text
                               for m in bot.emulator.bot_messages(OPERATOR)), "the report")
    assert [len(notices_in(bot, u.chat_id)) for u in users] == [1, 1, 1, 1, 0]
    assert "Perawatan <server> Minggu 22.00" in notices_in(bot, users[0].chat_id)[0]
    done = next(m.text for m in bot.emulator.bot_messages(OPERATOR) if "selesai" in m.text)
    assert "4 terkirim, 0 ditolak" in done
    answer = await admin.tap_data(data, message=preview)  # the same tap again
    assert answer is not None and answer["text"] == texts.NOTICE_TAKEN
    await bot.settle()
    assert [len(notices_in(bot, u.chat_id)) for u in users] == [1, 1, 1, 1, 0]
    await admin.send("/pengumuman Kedua")
    await admin.tap("Batal")
    assert texts.NOTICE_CANCELLED in admin.reply
    await bot.settle()
    assert [len(notices_in(bot, u.chat_id)) for u in users] == [1, 1, 1, 1, 0]


async def test_a_notice_resumes_after_a_restart_and_skips_unknown_outcomes(
        bot: BotHarness, services: Services, services_factory: ServicesFactory) -> None:
    users = [bot.chat(3000 + i) for i in range(6)]
    bot.chat(OPERATOR), bot.chat(9002)
    for user in users:
        await consent(user)
    repo = services.operator.repo
    notice = await repo.draft("Perawatan", services.clock())
    assert await repo.confirm(notice)
    # as a crash leaves it: two delivered, one claimed with its outcome unknown
    for user, state in zip(users[:3], ("sent", "sent", None), strict=True):
        assert await repo.claim(notice, user.chat_id, services.clock())
        if state:
            await repo.settle(notice, user.chat_id, state, services.clock())
    harness, _ = await restart(bot, services, lambda: services_factory(
        operator_chat_ids=f"{OPERATOR},9002"))
    try:
        await wait_for(lambda: any("Pengumuman selesai" in m.text
                                   for m in harness.emulator.bot_messages(OPERATOR)),
                       "the resumed notice's report")
        assert [len(notices_in(harness, u.chat_id)) for u in users] == [0, 0, 0, 1, 1, 1]
        done = next(m.text for m in harness.emulator.bot_messages(OPERATOR)
                    if "selesai" in m.text)
        assert "5 terkirim" in done and "1 tidak pasti" in done
    finally:
        await harness.stop()


async def test_alerts_reach_the_operators_once_an_hour_without_identifiers(
        bot: BotHarness, services: Services, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    admin = bot.chat(OPERATOR)
    bot.chat(9002)
    context: Any = CallbackContext(bot.app)  # type: ignore[arg-type]
    caplog.set_level(logging.ERROR, logger="bot.operator")

    class Rejecting:
        name = label = "vclaim"
        capabilities = frozenset()

        async def lookup(self, identifier: Any) -> Any:
            raise JknCredentialsRejected("401")

    services.backend.inner = Rejecting()  # type: ignore[attr-defined]
    for _ in range(3):
        with pytest.raises(JknCredentialsRejected):
            await services.backend.lookup(NIK_A)  # type: ignore[arg-type]
    services.otp._warn_budget(clock())
    errors_context: Any = CallbackContext(bot.app)  # type: ignore[arg-type]
    errors_context.error = sqlite3.OperationalError("database or disk is full")
    await errors.on_error(object(), errors_context)
    await operator.alerts_job(context)
    seen = [m.text for m in bot.emulator.bot_messages(OPERATOR)]
    assert seen == [texts.ALERTS["credentials_rejected"], texts.ALERTS["sms_budget"],
                    texts.ALERTS["disk_full"]]
    assert [m.text for m in bot.emulator.bot_messages(9002)] == seen, "every operator"
    logged = [r.getMessage() for r in caplog.records if "operator alert" in r.getMessage()]
    assert len(logged) == 3 and NIK_A not in " ".join(logged)
    services.otp._warn_budget(clock())  # within the hour: not again
    await operator.alerts_job(context)
    assert len(admin.bot_messages) == 3
    clock.advance(3601)
    services.otp._warn_budget(clock())
    await operator.alerts_job(context)
    assert admin.last_text == texts.ALERTS["sms_budget"] and len(admin.bot_messages) == 4
    assert all(not re.search(r"\d{6,}", m.text) for m in admin.bot_messages), "no ids"


async def test_telegram_unreachable_for_long_is_told_once_it_answers_again(
        bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    class Health:
        def __init__(self) -> None:
            self.now = 1000.0
            self.last_contact: float | None = 1000.0

        def clock(self) -> float:
            return self.now

        async def db_reason(self) -> str | None:
            return None

    health = Health()
    bot.chat(OPERATOR), bot.chat(9002)
    assert bot.app is not None
    bot.app.bot_data["health"] = health
    context: Any = CallbackContext(bot.app)  # type: ignore[arg-type]
    health.now += 300
    await operator.alerts_job(context)
    assert bot.emulator.bot_messages(OPERATOR) == [], "five minutes is not long"
    health.now += 400
    with caplog.at_level(logging.ERROR, logger="bot.operator"):
        await operator.alerts_job(context)
    assert any("Telegram has not answered" in r.getMessage() for r in caplog.records)
    assert [m.text for m in bot.emulator.bot_messages(OPERATOR)] == [
        texts.ALERTS["telegram_down"].format(minutes=10)]


async def test_no_operator_configured_means_no_alert_messages(
        services_factory: ServicesFactory, clock: FakeClock) -> None:
    svc: Services = await services_factory(operator_chat_ids="")
    harness = await start_bot(svc)
    try:
        svc.otp._warn_budget(clock())
        await operator.alerts_job(CallbackContext(harness.app))  # type: ignore[arg-type]
        assert not svc.alerts.queue
        assert [e for e in harness.emulator.events if e.kind == "message"] == []
    finally:
        await harness.stop()


async def test_a_delivery_stopped_mid_send_is_not_sent_again_on_resume(
        bot: BotHarness, services: Services) -> None:
    """The bot stops (SIGTERM) while a send is in flight: that chat may have it, so the
    resumed notice leaves it out; the others get it once."""
    users = [bot.chat(4000 + i) for i in range(5)]
    for user in users:
        await consent(user)
    repo = services.operator.repo
    notice = await repo.draft("Perawatan", services.clock())
    assert await repo.confirm(notice)
    received: list[int] = []

    async def stopped_at_the_third(chat_id: int, body: str) -> bool:
        received.append(chat_id)  # Telegram took it …
        if len(received) == 3:
            raise asyncio.CancelledError  # … and the bot stopped before hearing back
        return True

    async def delivering(chat_id: int, body: str) -> bool:
        received.append(chat_id)
        return True

    with pytest.raises(asyncio.CancelledError):
        await services.operator.run_notice(notice, stopped_at_the_third)
    report = await services.operator.run_notice(notice, delivering)
    assert report.finished
    assert sorted(received) == [u.chat_id for u in users], "each chat once"
    assert (report.tally.sent, report.tally.unknown) == (4, 1)


async def test_a_draft_is_confirmed_or_cancelled_once(services: Services) -> None:
    repo = services.operator.repo
    first = await repo.draft("Satu", services.clock())
    assert await repo.confirm(first)
    assert not await repo.confirm(first), "a second [Kirim] starts nothing"
    assert not await repo.cancel(first), "too late to cancel"
    second = await repo.draft("Dua", services.clock())
    assert await repo.cancel(second)
    assert not await repo.confirm(second), "a cancelled notice is never sent"
    assert await repo.sending() == [first]


async def test_two_runs_of_one_notice_at_once_message_each_chat_once(
        bot: BotHarness, services: Services) -> None:
    """A resume while the notice is still sending (or a second instance): the claim in the
    database lets one of them send to each chat."""
    users = [bot.chat(5000 + i) for i in range(6)]
    for user in users:
        await consent(user)
    notice = await services.operator.draft("Perawatan")
    assert await services.operator.repo.confirm(notice)
    received: list[int] = []

    async def delivering(chat_id: int, body: str) -> bool:
        received.append(chat_id)
        await asyncio.sleep(0.01)
        return True

    reports = await asyncio.gather(services.operator.run_notice(notice, delivering),
                                   services.operator.run_notice(notice, delivering))
    assert sorted(received) == [u.chat_id for u in users]
    assert [r.finished for r in reports].count(True) == 1, "one report"


def test_the_settings_are_checked_at_start() -> None:
    settings = load_settings(env_file=None, operator_chat_ids=" 12345678 , -100123 ,")
    assert settings.operator_ids == frozenset({12345678, -100123})
    assert load_settings(env_file=None).operator_ids == frozenset()
    for bad in ("12,abc", "0", "1.5", "99999999999999999999"):
        with pytest.raises(SettingsError, match=r"^invalid setting OPERATOR_CHAT_IDS"):
            load_settings(env_file=None, operator_chat_ids=bad)
    assert load_settings(env_file=None).retention_days == 365
    assert load_settings(env_file=None, retention_days=0).retention_days == 0
    assert load_settings(env_file=None, retention_days=14).retention_days == 14
    with pytest.raises(SettingsError, match=r"^invalid setting RETENTION_DAYS"):
        load_settings(env_file=None, retention_days=7)
    assert unknown_settings(None, {"OPERATOR_CHAT_ID": "1"}) == [
        "OPERATOR_CHAT_ID is not a setting; did you mean OPERATOR_CHAT_IDS?"]


async def test_a_stopping_bot_pauses_the_notice_between_two_chats(
        bot: BotHarness, services: Services) -> None:
    """SIGTERM while a long notice goes out: the stop does not wait for every chat; the
    notice stays unfinished and the next run sends to the rest, nobody twice."""
    users = [bot.chat(6000 + i) for i in range(5)]
    for user in users:
        await consent(user)
    notice = await services.operator.draft("Perawatan")
    assert await services.operator.confirm(notice)
    received: list[int] = []

    async def delivering(chat_id: int, body: str) -> bool:
        received.append(chat_id)
        return True

    first = await services.operator.run_notice(notice, delivering, lambda: len(received) < 2)
    assert not first.finished and len(received) == 2
    assert await services.operator.unfinished() == [notice]
    second = await services.operator.run_notice(notice, delivering)
    assert second.finished and sorted(received) == [u.chat_id for u in users]
