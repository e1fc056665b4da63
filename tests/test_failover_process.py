"""Two `python -m bot run` on one PostgreSQL (issue 24): one serves, the other stands by,
and SIGKILL of the leader mid-conversation hands the chat to the standby with nothing
committed lost and nothing done twice."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import psycopg

from bot.devtools.emulator import BotApiEmulator
from storage.crypto import generate_master_key
from storage.keys import encode_key
from tests.botapi_http import HttpBotApi
from tests.conftest import NIK_A
from tests.failover_traffic import KillLoop
from tests.process import TOKEN, RunningBot, http_env, spawn_bot, wait_for

#: The issue's bound: a standby serves within 10 s of the leader's SIGKILL.
FAILOVER_LIMIT = 10.0


async def test_a_standby_takes_over_a_killed_leader_mid_conversation(
        tmp_path: Path, pg_db_url: str) -> None:
    settings = {"KK_DATABASE_URL": pg_db_url,
                "KK_MASTER_KEY": encode_key(generate_master_key())}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with RunningBot(tmp_path / "a", **settings) as bot:
        chat = bot.chat(77)
        await chat.consent()
        standby = await spawn_bot(tmp_path / "b", http_env(tmp_path / "b", bot.api,
                                                           **settings))
        try:
            await chat.send("/tambah_kk", expect="Kirim")
            await chat.send(NIK_A, expect="Kode OTP 6 angka sudah dikirim")
            sms_before = len(bot.sms)
            assert standby.returncode is None, "the standby waits, it does not exit"
            polls = bot.emulator.calls.get("getUpdates", 0)
            await bot.stop(signal.SIGKILL)
            killed = time.monotonic()
            await wait_for(lambda: bot.emulator.calls.get("getUpdates", 0) > polls,
                           "the standby to poll", timeout=FAILOVER_LIMIT)
            assert time.monotonic() - killed < FAILOVER_LIMIT
            await bot.caught_up()
            await chat.send(bot.last_code(), expect="Kode benar")
            await chat.send("KK Saya", expect="Tersimpan")
            await chat.send("/akun", expect="Akun JKN Anda (1/3)")
            assert len(bot.sms) <= sms_before + 1
        finally:
            bot.proc = standby  # stopped (SIGTERM) by the context manager
    assert "standby" in bot.stderr
    with psycopg.connect(pg_db_url) as conn:
        row = conn.execute("SELECT count(*) FROM accounts WHERE chat_id = 77").fetchone()
        consumed = conn.execute("SELECT count(*) FROM challenges").fetchone()
    assert row is not None and row[0] == 1, "no card added twice"
    assert consumed is not None and consumed[0] == 0, "the code was used once and dropped"


async def test_a_standby_says_so_and_exits_cleanly_on_sigterm(
        tmp_path: Path, pg_db_url: str) -> None:
    settings = {"KK_DATABASE_URL": pg_db_url,
                "KK_MASTER_KEY": encode_key(generate_master_key())}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with RunningBot(tmp_path / "a", **settings) as bot:
        standby = await spawn_bot(tmp_path / "b", http_env(tmp_path / "b", bot.api,
                                                           **settings))
        await asyncio.sleep(3)
        assert standby.returncode is None
        standby.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(standby.communicate(), 30)
        assert standby.returncode == 0
        assert "standby" in err.decode()


async def test_kills_with_traffic_lose_nothing_and_do_nothing_twice(
        tmp_path: Path, pg_db_url: str) -> None:
    """Five chats in real conversations (codes, switches by button, removals, bursts)
    while the serving instance is SIGKILLed three times at random moments, a standby
    always waiting (tests/failover_traffic.py defines each figure)."""
    settings = {"KK_DATABASE_URL": pg_db_url,
                "KK_MASTER_KEY": encode_key(generate_master_key())}
    api = HttpBotApi(BotApiEmulator(token=TOKEN))
    await api.start()
    try:
        figures = await KillLoop(tmp_path, api, settings, seed=7).run(3, 5, gap=(1.0, 3.0))
    finally:
        await api.stop()
    summary = figures.summary()
    assert len(figures.takeovers) == 3, summary
    assert max(figures.takeovers) < FAILOVER_LIMIT, summary
    assert figures.lost == [], summary
    assert figures.unconfirmed == 0 and figures.unanswered_queries == 0, summary
    assert figures.order_breaks == [] and figures.bursts > 0, summary
    assert figures.doubled_cards == 0 and figures.missing_cards == 0, summary
    assert figures.cards_saved > 0 and figures.codes_accepted > 0, summary
    assert figures.codes_twice == 0, summary
    assert figures.reminders_twice == 0, summary
