"""`make bench` still measures what it says against the bot of today: its loops complete
on both stores (a change of the bot's texts or flow once left the switch loop finding no
listing, and the switch's card crashing on the bench's NIKs), and a ``--only stores`` run
replaces only the store figures in bench/results.json."""

from __future__ import annotations

from dataclasses import replace

from bench import ref_switch_bot
from bench.addevict import STEPS, nik_for_add, run_add
from bench.common import ACTIVE_MARK, nik_for
from bench.inprocess import run_switch
from bench.main import STORE_KEYS, merge_store_run
from bench.params import QUICK
from bot.identity import Identifier, parse_identifier
from bot.jkn.sandbox import SandboxBackend
from handlers import keyboards
from storage.accounts_repo import Brief
from tests.conftest import both_stores

store = both_stores

SMALL = replace(QUICK, chats=4, updates=60, add_adds=8, max_seconds=60.0)


async def test_the_switch_loop_completes_every_tap_as_a_switch(database_url: str | None
                                                                ) -> None:
    result = await run_switch(SMALL, database_url)
    assert result.completed == SMALL.updates and not result.capped
    assert result.anomalies == 0, "every tap answered with the switch toast"
    assert result.errors == {}


async def test_the_add_loop_adds_and_evicts_through_the_whole_flow(database_url: str | None
                                                                   ) -> None:
    result = await run_add(SMALL, database_url)
    assert result.completed == SMALL.add_adds * STEPS and not result.capped
    # The loop issues actions, not whole adds: a chat may stop in the middle of one.
    assert SMALL.add_adds - SMALL.chats < result.info["adds_completed"] <= SMALL.add_adds
    assert result.anomalies == 0 and result.errors == {}


def test_the_bench_nik_values_are_valid_and_ordinary_for_the_sandbox() -> None:
    sandbox = SandboxBackend()
    for chat_id in (1000, 1063, 20_000, 100_000_000 + 999_999):
        populated = [nik_for(chat_id, n) for n in range(0, 3000, 7)]
        added = [nik_for_add(chat_id, n) for n in range(0, 600, 3)]
        assert len(set(populated)) == len(populated) and len(set(added)) == len(added)
        for nik in populated + added:
            parsed = parse_identifier(nik)
            assert isinstance(parsed, Identifier), nik
            assert int(nik[-4:]) >= 10, "not one of the sandbox's special cases"
            assert sandbox.participant(parsed).phone is not None
    every_add = {nik_for_add(chat_id, n) for chat_id in range(20_000, 26_000, 7)
                 for n in range(12)}
    assert len(every_add) == len(range(20_000, 26_000, 7)) * 12, "no NIK in two chats"


def test_a_stores_only_run_replaces_only_the_store_figures() -> None:
    previous = {"switch_ratio": 0.3, "pg_switch_ratio": 0.1, "details": {"a": 1},
                "targets": {"switch_ratio": {"met": True}, "pg_scale_ratio": {"met": False}}}
    run = {key: 2.0 for key in STORE_KEYS} | {
        "switch_ratio": None, "details": {"b": 2},
        "targets": {"pg_http_switch_ratio": {"met": True}, "pg_scale_ratio": {"met": True}}}
    merged = merge_store_run(previous, run)
    assert merged["switch_ratio"] == 0.3 and merged["details"] == {"a": 1}
    assert all(merged[key] == 2.0 for key in STORE_KEYS)
    assert merged["targets"]["switch_ratio"] == {"met": True}
    assert merged["targets"]["pg_scale_ratio"] == {"met": True}
    assert merged["stores_run"] is run
    assert merge_store_run(None, run) is run


def test_the_bench_and_its_reference_bot_mark_the_chosen_account_as_the_bot_does() -> None:
    """The loops find the listing's chosen account by its mark (issue 22 changed it)."""
    items = [Brief(1, "aaaa", "3174014506900011", "KK Saya", 0.0, False),
             Brief(1, "bbbb", "3273012304850022", "KK Ibu", 0.0, True)]
    rows = keyboards.accounts(items, set())["inline_keyboard"]
    assert rows[1][0]["text"].startswith(ACTIVE_MARK)
    assert not rows[0][0]["text"].startswith(ACTIVE_MARK)
    assert ref_switch_bot.ACTIVE_MARK.strip() == ACTIVE_MARK
