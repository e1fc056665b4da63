"""In-process benchmarks: PTB Applications over the emulator (``EmulatorRequest``), no
sockets. The echo baseline (closed loop and burst), the real bot's switch (closed loop,
bursts, isolation) and the cost of the per-update persistence write."""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_DIR,
    JSON,
    BenchError,
    ClosedLoop,
    Listing,
    LoopResult,
    Pending,
    QuietSender,
    TrackingEmulator,
    add_real_chat,
    answered_with,
    error_summary,
    listing_of,
    log,
    make_settings,
    percentile,
    rounded,
    switch_issuer,
    wait_for,
    wait_items,
)
from bench.echo_bot import build_echo_application
from bench.params import Params
from bot import texts
from bot.devtools.emulator import EmulatorRequest
from bot.devtools.harness import BotHarness
from bot.processor import ChatOrderedProcessor
from bot.services import Services, open_services
from handlers.keyboards import SWITCH

SLOW_NIK = "3174014506900003"  # the sandbox answers it after 3 seconds
SWITCHED = texts.SWITCHED.split("{", 1)[0]
LOOKING_UP = texts.LOOKING_UP.split("{", 1)[0]


class NoPersistProcessor(ChatOrderedProcessor):
    """The bot's processor without its per-update ``update_persistence()`` call."""

    async def _persist(self, update: object) -> None:
        return None


@dataclass
class Session:
    services: Services
    emulator: TrackingEmulator
    harness: BotHarness
    chat_ids: list[int]
    listings: dict[int, Listing]

    def bot_api(self) -> JSON:
        """Bot API errors the emulator recorded so far (set-up included) and how many calls
        the bot's transport repeated."""
        app = self.harness.app
        retries = getattr(app.bot.request, "retries", None) if app is not None else None
        return {"bot_api_errors": error_summary(self.emulator, 0),
                "transport_retries": retries}


@asynccontextmanager
async def services_in_tempdir(database_url: str | None = None, sms: QuietSender | None = None,
                              **settings: Any) -> AsyncIterator[Services]:
    """Fresh services: SQLite in a temporary directory, or the PostgreSQL database given;
    ``settings`` override the bench's (``make_settings``)."""
    extra = {"kk_database_url": database_url} if database_url else {}
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
        services = await open_services(make_settings(Path(tmp) / "data", **extra, **settings),
                                       sms=sms or QuietSender())
        try:
            yield services
        finally:
            await services.close()


async def populate(services: Services, chat_ids: list[int], accounts: int) -> None:
    for chat_id in chat_ids:
        if accounts:
            await add_real_chat(services, chat_id, accounts)
        else:
            await services.consent.record(chat_id)


async def start_harness(services: Services, emulator: TrackingEmulator,
                        processor: ChatOrderedProcessor | None = None) -> BotHarness:
    harness = BotHarness(services, emulator=emulator)
    if processor is not None:
        harness.processor = processor
    return await harness.start()


async def show_listings(emulator: TrackingEmulator, chat_ids: list[int]) -> dict[int, Listing]:
    """Every chat sends /akun once; returns each chat's listing."""
    items = [emulator.send(chat_id, "/akun") for chat_id in chat_ids]
    await wait_items(items, "the /akun listings", 120)
    return {chat_id: listing_of(emulator, chat_id) for chat_id in chat_ids}


@asynccontextmanager
async def bot_session(chats: int, *, first_chat: int = 1000, database_url: str | None = None,
                      sms: QuietSender | None = None, listings: bool = True,
                      **settings: Any) -> AsyncIterator[Session]:
    """The real bot over a fresh SQLite file (or a fresh PostgreSQL database): ``chats``
    chats with consent, three accounts and (unless ``listings`` is false) an /akun
    listing each."""
    async with services_in_tempdir(database_url, sms, **settings) as services:
        chat_ids = list(range(first_chat, first_chat + chats))
        await populate(services, chat_ids, 3)
        emulator = TrackingEmulator(clock=services.clock)
        harness = await start_harness(services, emulator)
        try:
            for chat_id in chat_ids:
                harness.chat(chat_id)
            shown = await show_listings(emulator, chat_ids) if listings else {}
            await harness.settle()
            yield Session(services, emulator, harness, chat_ids, shown)
        finally:
            await harness.stop()


# -- 1. the echo baseline -------------------------------------------------------------------

@asynccontextmanager
async def echo_session(chats: int) -> AsyncIterator[tuple[TrackingEmulator, list[int]]]:
    """The bare PTB echo bot over the emulator, polling, with ``chats`` open chats."""
    emulator = TrackingEmulator()
    application = build_echo_application(emulator.token, request=EmulatorRequest(emulator))
    chat_ids = list(range(1000, 1000 + chats))
    for chat_id in chat_ids:
        emulator.open_chat(chat_id)
    await application.initialize()
    await application.start()
    assert application.updater is not None
    try:
        await application.updater.start_polling(poll_interval=0.0, timeout=1,
                                                allowed_updates=["message"])
        yield emulator, chat_ids
    finally:
        if application.updater.running:
            await application.updater.stop()
        await application.stop()
        await application.shutdown()


async def run_echo(p: Params) -> LoopResult:
    async with echo_session(p.chats) as (emulator, chat_ids):
        loop = ClosedLoop(emulator, chat_ids, lambda chat_id, n: emulator.send(
            chat_id, f"halo {n}"), total=p.echo_updates, per_chat=p.per_chat,
            max_seconds=p.max_seconds)
        result = await loop.run()
        result.errors = error_summary(emulator, 0)
        return result


# -- 2. switch, closed loop -----------------------------------------------------------------

async def run_switch(p: Params, database_url: str | None = None) -> LoopResult:
    """Closed loop of taps; a tap is complete once its callback answer and the edit of the
    tapped listing were both processed (see bench.common). On SQLite, or on the
    PostgreSQL database ``database_url`` (fresh)."""
    async with bot_session(p.chats, database_url=database_url) as s:
        loop = ClosedLoop(s.emulator, s.chat_ids, switch_issuer(s.emulator, s.listings),
                          total=p.updates, per_chat=p.per_chat, max_seconds=p.max_seconds,
                          check=answered_with(s.emulator, SWITCHED))
        result = await loop.run()
        api = s.bot_api()
        result.errors = api["bot_api_errors"]
        result.info["transport_retries"] = api["transport_retries"]
        return result


async def profile_switch(p: Params) -> str:
    """The closed-loop switch under cProfile; returns the report (also in profile.txt)."""
    async with bot_session(p.chats) as s:
        loop = ClosedLoop(s.emulator, s.chat_ids, switch_issuer(s.emulator, s.listings),
                          total=p.updates, per_chat=p.per_chat, max_seconds=p.max_seconds,
                          check=answered_with(s.emulator, SWITCHED))
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            result = await loop.run()
        finally:
            profiler.disable()
    out = io.StringIO()
    out.write(f"in-process switch under cProfile: {p.chats} chats, {result.completed} taps, "
              f"{result.per_s:.0f} taps/s (profiled); SQLite runs on the database thread "
              "and is not in this profile\n")
    for key in ("cumulative", "tottime"):
        out.write(f"\n=== top 30 by {key} ===\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(key).print_stats(30)
    report = out.getvalue()
    (BENCH_DIR / "profile.txt").write_text(report, encoding="utf-8")
    return report


# -- 4. a burst: many chats tapping at once -------------------------------------------------

BURST_PAUSE = 0.05  # seconds between the rounds of a burst


def _burst_json(p: Params, latencies: list[float]) -> JSON:
    return {"chats": p.concurrency_chats, "rounds": p.concurrency_rounds,
            "samples": len(latencies), "p50_ms": rounded(percentile(latencies, 50), 2),
            "p99_ms": rounded(percentile(latencies, 99), 2),
            "max_ms": rounded(max(latencies), 2)}


async def run_echo_burst(p: Params) -> JSON:
    """The burst's shape against the bare echo bot: ``concurrency_chats`` chats send a
    message at the same moment, ``concurrency_rounds`` times after a warm-up round; latency
    of every message until its echo arrives. What any PTB bot in one process can reach."""
    async with echo_session(p.concurrency_chats) as (emulator, chat_ids):
        latencies: list[float] = []
        for round_number in range(p.concurrency_rounds + 1):
            items = [emulator.send(chat_id, f"halo {round_number}") for chat_id in chat_ids]
            await wait_items(items, f"echo burst round {round_number}", 120)
            if round_number:
                latencies += [(item.finished - item.started) * 1000 for item in items]
            await asyncio.sleep(BURST_PAUSE)
        return _burst_json(p, latencies) | {"bot_api_errors": error_summary(emulator, 0)}


async def run_burst(p: Params) -> JSON:
    """``concurrency_chats`` chats tap at the same moment, ``concurrency_rounds`` times
    (after one unrecorded warm-up round); latency of every tap."""
    async with bot_session(p.concurrency_chats) as s:
        check = answered_with(s.emulator, SWITCHED)
        latencies: list[float] = []
        anomalies = 0
        for round_number in range(p.concurrency_rounds + 1):
            items = [s.emulator.tap(chat_id, s.listings[chat_id].message_id,
                                    SWITCH.data(s.listings[chat_id].slot(round_number)))
                     for chat_id in s.chat_ids]
            await wait_items(items, f"burst round {round_number}", 120)
            await s.harness.settle()
            if round_number:
                latencies += [(item.finished - item.started) * 1000 for item in items]
                anomalies += sum(1 for item in items if not check(item))
            await asyncio.sleep(BURST_PAUSE)
        api = s.bot_api()
    return _burst_json(p, latencies) | {"anomalies": anomalies} | api


# -- 5. isolation: a slow look-up in chat A, switches in chat B ------------------------------

async def run_isolation(p: Params) -> JSON:
    async with bot_session(1) as s:
        chat_b, chat_a = s.chat_ids[0], 999
        await s.services.consent.record(chat_a)
        s.harness.chat(chat_a)
        item = s.emulator.send(chat_a, "/tambah_kk")
        await wait_items([item], "the NIK question", 30)

        def newest_a() -> str:
            messages = s.emulator.bot_messages(chat_a)
            return messages[-1].text if messages else ""

        if "NIK" not in newest_a():
            raise BenchError(f"chat A is not at the NIK question: {newest_a()[:80]!r}")
        s.emulator.user_sends(chat_a, SLOW_NIK)
        await wait_for(lambda: newest_a().startswith(LOOKING_UP), "chat A's look-up", 30)
        lookup_started = time.perf_counter()
        listing = s.listings[chat_b]
        check = answered_with(s.emulator, SWITCHED)
        latencies: list[float] = []
        during = anomalies = 0
        for number in range(p.isolation_taps):
            busy = newest_a().startswith(LOOKING_UP)
            tap = s.emulator.tap(chat_b, listing.message_id,
                                 SWITCH.data(listing.slot(number)))
            await wait_items([tap], "chat B's switch", 30)
            latencies.append((tap.finished - tap.started) * 1000)
            during += busy and newest_a().startswith(LOOKING_UP)
            anomalies += not check(tap)
        b_done = time.perf_counter() - lookup_started
        await wait_for(lambda: not newest_a().startswith(LOOKING_UP), "chat A's answer", 30)
        lookup_s = time.perf_counter() - lookup_started
        await s.harness.settle()
        answer_a = newest_a()
        api = s.bot_api()
    return {"taps": len(latencies), "taps_during_lookup": during,
            "p50_ms": rounded(percentile(latencies, 50), 2),
            "p99_ms": rounded(percentile(latencies, 99), 2),
            "max_ms": rounded(max(latencies), 2), "chat_b_seconds": rounded(b_done, 2),
            "chat_a_lookup_seconds_at_least": rounded(lookup_s, 2),
            "chat_a_answer": answer_a.split("\n", 1)[0][:60], "anomalies": anomalies,
            **api}


# -- 8. the per-update persistence write ----------------------------------------------------

async def run_persistence(p: Params) -> JSON:
    """Alternating /tambah_kk and /batal (each changes the conversation state) in every
    chat, closed loop, with the processor's persistence write on and off, interleaved."""
    chat_ids = list(range(1000, 1000 + p.chats))
    parity = dict.fromkeys(chat_ids, 0)
    times: dict[str, list[float]] = {"on": [], "off": []}
    async with services_in_tempdir() as services:
        await populate(services, chat_ids, 0)
        emulator = TrackingEmulator(clock=services.clock)
        for chat_id in chat_ids:
            emulator.open_chat(chat_id)

        def issue(chat_id: int, _number: int) -> Pending:
            parity[chat_id] += 1
            return emulator.send(chat_id, "/tambah_kk" if parity[chat_id] % 2 else "/batal")

        for rep in range(p.persistence_reps):
            for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):
                processor = NoPersistProcessor() if mode == "off" else ChatOrderedProcessor()
                harness = await start_harness(services, emulator, processor)
                try:
                    result = await ClosedLoop(
                        emulator, chat_ids, issue, total=p.persistence_updates,
                        per_chat=p.per_chat, max_seconds=p.max_seconds).run()
                    await harness.settle()
                finally:
                    await harness.stop()
                times[mode].append(1000 / result.per_s)
                log(f"  persistence {mode}: {result.per_s:.0f} updates/s "
                    f"({1000 / result.per_s:.3f} ms/update)")
    on, off = percentile(times["on"], 50), percentile(times["off"], 50)
    return {"ms_per_update_on": rounded(on, 4), "ms_per_update_off": rounded(off, 4),
            "runs_on_ms": [rounded(t, 4) for t in times["on"]],
            "runs_off_ms": [rounded(t, 4) for t in times["off"]],
            "ratio": rounded(on / off, 3),
            "bot_api_errors": error_summary(emulator, 0)}
