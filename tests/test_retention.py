"""Storage limitation (RETENTION_DAYS, issue 23 item 10), with the clock moved: a chat
away for RETENTION_DAYS - 7 days is warned, a week later erased as /hapus_data erases it;
activity in between keeps everything; only a last day per chat is kept for it."""

from __future__ import annotations

from typing import Any

import pytest
from telegram.ext import CallbackContext

from bot import texts
from bot.devtools.harness import BotHarness
from bot.services import Services
from handlers import jobs
from tests.conftest import (
    NIK_A,
    FakeClock,
    Phone,
    ServicesFactory,
    add_account,
    chat_rows,
    consent,
)
from tests.dbsql import query

DAY = 86_400.0


@pytest.fixture
async def services(services_factory: ServicesFactory) -> Services:
    svc: Services = await services_factory(retention_days=30)
    return svc


def warnings_in(bot: BotHarness, chat_id: int) -> list[str]:
    return [m.text for m in bot.emulator.bot_messages(chat_id)
            if m.text.startswith("⏳ Anda sudah lama tidak memakai")]


async def daily(bot: BotHarness) -> None:
    context: Any = CallbackContext(bot.app)  # type: ignore[arg-type]
    await jobs.daily(context)
    await bot.settle()


async def test_warned_a_week_ahead_then_erased(bot: BotHarness, services: Services,
                                               clock: FakeClock, phone: Phone) -> None:
    away, back = bot.chat(1001), bot.chat(1002)
    for chat in (away, back):
        await consent(chat)
    await add_account(away, phone, NIK_A, "Ibu")
    await daily(bot)  # day 0: both get a last day (today)
    rows = await query(services.db, "SELECT chat_id, day, warned_on FROM chat_activity "
                                    "ORDER BY chat_id")
    assert [tuple(r) for r in rows] == [(1001, services.retention.today().isoformat(), None),
                                        (1002, services.retention.today().isoformat(), None)]
    clock.advance(22 * DAY)
    await daily(bot)
    assert warnings_in(bot, 1001) == [], "22 days of 30: too early"
    clock.advance(1 * DAY)  # 23 = 30 - 7
    await daily(bot)
    (warning,) = warnings_in(bot, 1001)
    assert len(warnings_in(bot, 1002)) == 1
    assert "akan dihapus mulai" in warning and NIK_A not in warning and "Ibu" not in warning
    await daily(bot)
    assert len(warnings_in(bot, 1001)) == 1, "never warned twice"
    clock.advance(3 * DAY)
    await back.send("/akun")  # activity in between withdraws the warning
    clock.advance(4 * DAY)  # 30 days since chat 1001 was last seen
    await daily(bot)
    assert all(n == 0 for n in (await chat_rows(services, 1001)).values()), "all erased"
    assert await services.accounts.list(1001) == []
    assert (await chat_rows(services, 1002))["consent"] == 1, "the active one is kept"
    before = len(bot.emulator.bot_messages(1001))
    await away.send("/akun")
    assert len(bot.emulator.bot_messages(1001)) == before + 1
    assert "Akun JKN Anda" not in away.last_text, "nothing of it is left"
    clock.advance(18 * DAY)  # day 48: 22 days since chat 1002 was active (day 26)
    await daily(bot)
    assert len(warnings_in(bot, 1002)) == 1, "warned again only after RETENTION_DAYS - 7"
    clock.advance(1 * DAY)
    await daily(bot)
    assert len(warnings_in(bot, 1002)) == 2
    clock.advance(6 * DAY)  # day 55: 29 days away, warned 6 days ago
    await daily(bot)
    assert (await chat_rows(services, 1002))["consent"] == 1, "not before RETENTION_DAYS"
    clock.advance(1 * DAY)
    await daily(bot)
    assert all(n == 0 for n in (await chat_rows(services, 1002)).values())


async def test_strangers_leave_no_activity_row(bot: BotHarness, services: Services) -> None:
    stranger = bot.chat(1003)
    await stranger.send("/bantuan")
    await stranger.send("/start")  # asked, not yet agreed
    await daily(bot)
    assert await query(services.db, "SELECT chat_id FROM chat_activity") == []


async def test_retention_off_erases_nothing(services_factory: ServicesFactory,
                                            clock: FakeClock) -> None:
    from tests.conftest import start_bot
    svc: Services = await services_factory(retention_days=0)
    harness = await start_bot(svc)
    try:
        chat = harness.chat(1004)
        await consent(chat)
        await chat.send("/privasi")
        assert "tidak menghapus data yang lama tidak dipakai" in chat.last_text
        clock.advance(4000 * DAY)
        await daily(harness)
        assert warnings_in(harness, 1004) == []
        assert (await chat_rows(svc, 1004))["consent"] == 1
    finally:
        await harness.stop()


async def test_privacy_states_the_retention(bot: BotHarness) -> None:
    chat = bot.chat(1005)
    await chat.send("/privasi")
    assert "tidak memakai bot selama 30 hari" in chat.last_text


async def test_a_late_warning_still_comes_a_week_before_the_erase(
        bot: BotHarness, services: Services, clock: FakeClock) -> None:
    """The daily job did not run for weeks (the bot was down): a chat long past
    RETENTION_DAYS is warned first and erased only a week later."""
    chat = bot.chat(1006)
    await consent(chat)
    await daily(bot)
    clock.advance(40 * DAY)
    await daily(bot)
    assert len(warnings_in(bot, 1006)) == 1
    assert (await chat_rows(services, 1006))["consent"] == 1, "not erased unwarned"
    clock.advance(6 * DAY)
    await daily(bot)
    assert (await chat_rows(services, 1006))["consent"] == 1
    clock.advance(1 * DAY)
    await daily(bot)
    assert all(n == 0 for n in (await chat_rows(services, 1006)).values())


async def test_an_erase_mid_conversation_leaves_no_step_behind(
        bot: BotHarness, services: Services, clock: FakeClock) -> None:
    chat = bot.chat(1007)
    await consent(chat)
    await chat.send("/tambah_kk")  # then gone for a month, mid-conversation
    await daily(bot)
    clock.advance(23 * DAY)
    await daily(bot)
    clock.advance(7 * DAY)
    await daily(bot)
    assert all(n == 0 for n in (await chat_rows(services, 1007)).values())
    await chat.send("halo")
    assert texts.UNKNOWN_TEXT in chat.reply, "no /tambah_kk step is waiting any more"
