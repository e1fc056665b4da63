"""`make bench`: every measurement in turn, a table on stdout, bench/results.json.

Environment: ``BENCH_FULL=1`` (1 M-chat scale run, longer runs), ``BENCH_PROFILE=1`` (only
the in-process switch, under cProfile), ``BENCH_REBUILD=1`` (rebuild the cached scale
databases).
A step that fails is reported and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from bench import addevict, inprocess, overhttp, scale, scale_pg
from bench.common import (
    BENCH_DIR,
    JSON,
    LoopResult,
    RoundFn,
    log,
    machine_info,
    median,
    one_cpu,
    postgres,
    round_ratios,
    rounded,
    run_rounds,
    spread,
    summarize,
)
from bench.params import Params, from_environment

T = TypeVar("T")
RESULTS = BENCH_DIR / "results.json"


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


class Run:
    """Runs the steps, keeping going after a failure."""

    def __init__(self) -> None:
        self.failures: dict[str, str] = {}
        self.details: JSON = {}
        self.errors: dict[str, int] = {}  # Bot API errors the emulator recorded, per step

    async def step(self, key: str, title: str, make: Callable[[], Awaitable[T]] | None
                   ) -> T | None:
        """``make()`` reported under ``key``; None (a step left out) does nothing."""
        if make is None:
            return None
        log(title)
        started = time.perf_counter()
        try:
            value = await make()
        except (Exception, TimeoutError) as exc:
            log(f"  FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
            self.failures[key] = f"{type(exc).__name__}: {exc}"[:2000]
            return None
        if isinstance(value, LoopResult):
            self.details[key] = value.as_json()
            self.errors[key] = sum(value.errors.values())
            log(f"  {value.per_s:.1f} updates/s, p50 {value.p50_ms:.1f} ms, "
                f"p99 {value.p99_ms:.1f} ms ({value.completed} done"
                f"{', time cap' if value.capped else ''}) in "
                f"{time.perf_counter() - started:.1f}s")
        elif isinstance(value, dict):
            self.details[key] = value
            if "bot_api_errors" in value:
                self.errors[key] = sum(value["bot_api_errors"].values())
            log(f"  done in {time.perf_counter() - started:.1f}s")
        return value

    async def rounds(self, title: str, count: int, kinds: dict[str, RoundFn], *,
                     alternate: bool = True, warmup: int = 0,
                     finish: Callable[[], Awaitable[dict[str, str]]] | None = None
                     ) -> dict[str, list[LoopResult]]:
        """Interleaved rounds of closed loops (``common.run_rounds``), then ``finish`` (it
        returns failures found while cleaning up); the details of each kind are its
        summary (medians over the rounds, every round). A kind that failed is in
        ``failures`` and maps to no results."""
        log(title)
        started = time.perf_counter()
        try:
            results = await run_rounds(count, kinds, self.failures,
                                       alternate=alternate, warmup=warmup)
        finally:
            if finish is not None:
                for key, error in (await finish()).items():
                    log(f"  {key} FAILED: {error}")
                    self.failures.setdefault(key, error)
        for key, rounds in results.items():
            if rounds:
                self.details[key] = summarize(rounds)
                self.errors[key] = sum(self.details[key]["bot_api_errors"].values())
        log(f"  done in {time.perf_counter() - started:.1f}s")
        return {key: rounds for key, rounds in results.items()
                if rounds and key not in self.failures}

    def ratio(self, key: str, numerator: list[LoopResult] | None,
              denominator: list[LoopResult] | None) -> float | None:
        """The median of the per-round ratios (rounds of both kinds, same round number);
        every ratio and their extremes go to ``details.ratios``."""
        if not numerator or not denominator:
            return None
        ratios = round_ratios(numerator, denominator)
        if not ratios:
            return None
        self.details.setdefault("ratios", {})[key] = spread(ratios)
        return rounded(median(ratios), 4)


def _rate(rounds: list[LoopResult] | None) -> float | None:
    """The median rate of a kind's rounds (None if it failed)."""
    return None if not rounds else rounded(median([r.per_s for r in rounds]), 1)


def _adds(rounds: list[LoopResult] | None) -> float | None:
    """Completed adds per second: the median rate of actions / the actions of one add."""
    rate = _rate(rounds)
    return None if rate is None else rounded(rate / addevict.STEPS, 2)


def _get(data: JSON | None, key: str) -> Any:
    return None if data is None else data.get(key)


def _target(value: float | None, op: str, threshold: float | None, text: str) -> JSON:
    met: bool | None = None
    if value is not None and threshold is not None:
        met = {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold}[op]
    return {"target": text, "threshold": threshold, "value": value, "met": met}


async def measure(p: Params, stores_only: bool = False) -> JSON:
    with postgres() as fresh_pg:
        return await _measure(p, fresh_pg, stores_only)


async def _measure(p: Params, fresh_pg: Callable[[], str] | None,
                   stores_only: bool = False) -> JSON:
    """Every step; with ``stores_only`` only what compares the stores (``--only stores``):
    switch and add+evict in process and over HTTP on SQLite and PostgreSQL, and the scale
    on PostgreSQL."""
    run = Run()
    log(f"mode {p.mode}" + (", only the SQLite/PostgreSQL comparison" if stores_only else ""))

    def unless_stores_only(make: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]] | None:
        return None if stores_only else make

    kinds: dict[str, RoundFn] = {"echo": lambda _n: inprocess.run_echo(p),
                                 "switch": lambda _n: inprocess.run_switch(p)}
    if stores_only:
        del kinds["echo"]
    if fresh_pg is not None:  # the same switch with the store on PostgreSQL (issue 24)
        kinds["switch_pg"] = lambda _n: inprocess.run_switch(p, fresh_pg())
    # Add + evict through the bot (issue 24 item 6), on both stores, in the same rounds.
    kinds["add"] = lambda _n: addevict.run_add(p)
    if fresh_pg is not None:
        kinds["add_pg"] = lambda _n: addevict.run_add(p, fresh_pg())
    loops = await run.rounds(
        f"1+2. in process: echo baseline, switch and add+evict (SQLite, PostgreSQL), "
        f"{p.rounds} interleaved rounds", p.rounds, kinds)
    echo, switch, switch_pg = loops.get("echo"), loops.get("switch"), loops.get("switch_pg")
    add, add_pg = loops.get("add"), loops.get("add_pg")
    # A diagnostic beside 1+2: the same rounds with the process held on one CPU. The bot
    # runs on two threads (event loop, database), the echo bot on one, so switch_ratio
    # also depends on how busy the other CPU is and where the scheduler puts the thread.
    pinned: dict[str, list[LoopResult]] = {}
    if not stores_only:
        with one_cpu():
            pinned = await run.rounds(
                f"1+2 on one CPU (diagnostic): {p.one_cpu_rounds} interleaved rounds",
                p.one_cpu_rounds, {"echo_one_cpu": lambda _n: inprocess.run_echo(p),
                                   "switch_one_cpu": lambda _n: inprocess.run_switch(p)})
    switch_ratio_one_cpu = run.ratio("switch_ratio_one_cpu", pinned.get("switch_one_cpu"),
                                     pinned.get("echo_one_cpu"))
    echo_burst = await run.step("echo_burst", f"4a. {p.concurrency_chats} chats messaging the "
                                "echo bot at once",
                                unless_stores_only(lambda: inprocess.run_echo_burst(p)))
    burst = await run.step("burst", f"4b. {p.concurrency_chats} chats tapping at once",
                           unless_stores_only(lambda: inprocess.run_burst(p)))
    isolation = await run.step("isolation", f"5. isolation: slow look-up in A, {p.isolation_taps}"
                               " switches in B",
                               unless_stores_only(lambda: inprocess.run_isolation(p)))
    persistence = await run.step("persistence", "8. per-update persistence write on/off",
                                 unless_stores_only(lambda: inprocess.run_persistence(p)))

    with tempfile.TemporaryDirectory(prefix="kk-bench-http-") as tmp:
        bots = overhttp.HttpRounds(p, Path(tmp), fresh_pg() if fresh_pg else None,
                                   fresh_pg() if fresh_pg else None)
        http_kinds: dict[str, RoundFn] = {"http_echo": bots.echo, "http_switch": bots.bot,
                                          "http_reference": bots.reference}
        if fresh_pg is not None:
            http_kinds["http_switch_pg"] = bots.bot_pg
        http_kinds["http_add"] = bots.add
        if fresh_pg is not None:
            http_kinds["http_add_pg"] = bots.add_pg
        if stores_only:
            del http_kinds["http_echo"], http_kinds["http_reference"]
        http = await run.rounds(
            f"3. over HTTP: echo_bot.py, python -m bot run (switch and add+evict, SQLite "
            f"and PostgreSQL), ref_switch_bot.py, a warm-up round and {p.http_rounds} "
            "interleaved rounds", p.http_rounds, http_kinds, alternate=False, warmup=1,
            finish=bots.close)
    http_echo, http_switch, http_ref, http_switch_pg, http_add, http_add_pg = (
        http.get(key) for key in ("http_echo", "http_switch", "http_reference",
                                  "http_switch_pg", "http_add", "http_add_pg"))

    scaled = await run.step("scale", f"6. scale: {', '.join(map(str, p.scale_sizes))} chats",
                            unless_stores_only(lambda: scale.run_scale(
                                p, _flag("BENCH_REBUILD"))))
    scale_json = scaled[0] if scaled else None
    if scale_json is not None:
        run.details["scale"] = scale_json
    scaled_pg: JSON | None = None
    if fresh_pg is not None:
        scaled_pg = await run.step(
            "scale_pg", f"6 on PostgreSQL: {', '.join(map(str, p.pg_scale_sizes))} chats "
            "(built by COPY)", lambda: scale_pg.run_scale_pg(p, fresh_pg))
    startup = None
    if scaled is not None:
        largest = scaled[1]
        startup = await run.step(
            "startup", f"7. start-up and memory with {largest.size} chats",
            lambda: overhttp.startup_and_memory(p, largest.data_dir, largest.real_chats))

    switch_ratio = run.ratio("switch_ratio", switch, echo)
    http_switch_ratio = run.ratio("http_switch_ratio", http_switch, http_echo)
    http_reference_ratio = run.ratio("http_reference_ratio", http_ref, http_echo)
    pg_switch_ratio = run.ratio("pg_switch_ratio", switch_pg, switch)
    pg_http_switch_ratio = run.ratio("pg_http_switch_ratio", http_switch_pg, http_switch)
    pg_add_ratio = run.ratio("pg_add_ratio", add_pg, add)
    pg_http_add_ratio = run.ratio("pg_http_add_ratio", http_add_pg, http_add)
    results: JSON = {
        "echo_updates_per_s": _rate(echo),
        "switch_updates_per_s": _rate(switch),
        "switch_ratio": switch_ratio,
        "http_echo_updates_per_s": _rate(http_echo),
        "http_switch_updates_per_s": _rate(http_switch),
        "http_reference_updates_per_s": _rate(http_ref),
        "http_switch_ratio": http_switch_ratio,
        "http_reference_ratio": http_reference_ratio,
        "switch_p50_ms": _get(burst, "p50_ms"),
        "switch_p99_ms": _get(burst, "p99_ms"),
        "echo_burst_p50_ms": _get(echo_burst, "p50_ms"),
        "echo_burst_p99_ms": _get(echo_burst, "p99_ms"),
        "switch_loop_p50_ms": _get(run.details.get("switch"), "p50_ms") if switch else None,
        "switch_loop_p99_ms": _get(run.details.get("switch"), "p99_ms") if switch else None,
        "isolation_p99_ms": _get(isolation, "p99_ms"),
        "scale_ratio": _get(scale_json, "scale_ratio"),
        "scale_switch_ratio": _get(scale_json, "switch_ratio"),
        "scale_add_evict_ratio": _get(scale_json, "add_evict_ratio"),
        "startup_s": _get(startup, "startup_s"),
        "rss_mb": _get(startup, "rss_mb"),
        "persistence_overhead_ratio": _get(persistence, "ratio"),
        "pg_switch_updates_per_s": _rate(switch_pg),
        "pg_http_switch_updates_per_s": _rate(http_switch_pg),
        "pg_switch_ratio": pg_switch_ratio,
        "pg_http_switch_ratio": pg_http_switch_ratio,
        "add_per_s": _adds(add),
        "pg_add_per_s": _adds(add_pg),
        "pg_add_ratio": pg_add_ratio,
        "http_add_per_s": _adds(http_add),
        "pg_http_add_per_s": _adds(http_add_pg),
        "pg_http_add_ratio": pg_http_add_ratio,
        "pg_scale_ratio": _get(scaled_pg, "scale_ratio"),
        "pg_scale_switch_ratio": _get(scaled_pg, "switch_ratio"),
        "pg_scale_add_evict_ratio": _get(scaled_pg, "add_evict_ratio"),
        "pg_scale_largest": _get(scaled_pg, "largest"),
    }
    ref_threshold = (None if http_reference_ratio is None
                     else round(0.9 * http_reference_ratio, 4))
    results["targets"] = {
        "switch_ratio": _target(results["switch_ratio"], ">=", 0.30, ">= 0.30"),
        "http_switch_ratio": _target(http_switch_ratio, ">=", ref_threshold,
                                     ">= 0.9 x http_reference_ratio"),
        "switch_p99_ms": _target(results["switch_p99_ms"], "<=", 20.0, "<= 20 ms"),
        "isolation_p99_ms": _target(results["isolation_p99_ms"], "<", 100.0, "< 100 ms"),
        "scale_ratio": _target(results["scale_ratio"], "<=", 1.3, "<= 1.3"),
        "startup_s": _target(results["startup_s"], "<=", 2.0, "<= 2 s"),
        "rss_mb": _target(results["rss_mb"], "<=", 150.0, "<= 150 MB"),
        "pg_http_switch_ratio": _target(pg_http_switch_ratio, ">=", 0.8,
                                        ">= 0.8 x SQLite over HTTP"),
        "pg_scale_ratio": _target(results["pg_scale_ratio"], "<=", 1.3, "<= 1.3"),
    }
    run.details["switch_ratio_one_cpu"] = switch_ratio_one_cpu
    run.details["bot_api_errors"] = {"total": sum(run.errors.values()), **run.errors}
    results["details"] = run.details
    results["failures"] = run.failures
    return results


def _range(data: JSON | None, low: str = "min", high: str = "max") -> str:
    if not data or data.get(low) is None or data.get(high) is None:
        return ""
    return f"{data[low]}-{data[high]}"


def table(results: JSON) -> str:
    """The figures; ``min-max`` is the spread of the rounds (of the pairs, for scale) whose
    median is the value."""
    targets: JSON = results.get("targets", {})
    details: JSON = dict(results.get("details", {}))
    ratios: JSON = dict(details.get("ratios", {}))
    stores: JSON = results.get("stores_run", {}).get("details", {})  # after --only stores
    details.update({key: stores[key] for key in STORE_DETAILS if key in stores})
    ratios.update({key: value for key, value in stores.get("ratios", {}).items()
                   if key in STORE_KEYS})
    rows: list[tuple[str, object, str, str]] = []

    def add(label: str, value: object, key: str | None = None, between: str = "") -> None:
        target = targets.get(key or "", {})
        mark = ""
        if target:
            met = {None: "-", True: "yes", False: "NO"}[target.get("met")]
            mark = f"{target['target']:<30} {met}"
        rows.append((label, value, between, mark))

    def rate_range(key: str) -> str:
        return _range(details.get(key), "updates_per_s_min", "updates_per_s_max")

    def scale_range(operation: str, step: str = "scale") -> str:
        sizes = _get(details.get(step), "sizes") or {}
        largest = str(_get(details.get(step), "largest"))
        return _range(_get(sizes.get(largest), f"{operation}_pair_ratios"))

    def adds_range(key: str) -> str:
        data = details.get(key) or {}
        low, high = data.get("updates_per_s_min"), data.get("updates_per_s_max")
        if low is None or high is None:
            return ""
        return f"{round(low / addevict.STEPS, 1)}-{round(high / addevict.STEPS, 1)}"

    rows.append(("in process (harness defaults)", "", "", ""))
    add("  echo_updates_per_s", results["echo_updates_per_s"], between=rate_range("echo"))
    add("  switch_updates_per_s", results["switch_updates_per_s"],
        between=rate_range("switch"))
    add("  switch_ratio", results["switch_ratio"], "switch_ratio",
        _range(ratios.get("switch_ratio")))
    add("    on one CPU (diagnostic)", details.get("switch_ratio_one_cpu"),
        between=_range(ratios.get("switch_ratio_one_cpu")))
    add("  switch_loop_p50_ms / p99 (64x2 loop)",
        f"{results['switch_loop_p50_ms']} / {results['switch_loop_p99_ms']}")
    add("  switch_p50_ms (100 chats at once)", results["switch_p50_ms"])
    add("  switch_p99_ms (100 chats at once)", results["switch_p99_ms"], "switch_p99_ms")
    add("  echo_burst_p50_ms / p99 (echo bot, same)",
        f"{results['echo_burst_p50_ms']} / {results['echo_burst_p99_ms']}")
    add("  isolation_p99_ms", results["isolation_p99_ms"], "isolation_p99_ms")
    add("  persistence_overhead_ratio", results["persistence_overhead_ratio"])
    rows.append(("over HTTP (own processes, loopback)", "", "", ""))
    add("  http_echo_updates_per_s", results["http_echo_updates_per_s"],
        between=rate_range("http_echo"))
    add("  http_switch_updates_per_s", results["http_switch_updates_per_s"],
        between=rate_range("http_switch"))
    add("  http_reference_updates_per_s", results["http_reference_updates_per_s"],
        between=rate_range("http_reference"))
    add("  http_reference_ratio", results["http_reference_ratio"],
        between=_range(ratios.get("http_reference_ratio")))
    threshold = targets.get("http_switch_ratio", {}).get("threshold")
    add(f"  http_switch_ratio (need >= {threshold})", results["http_switch_ratio"],
        "http_switch_ratio", _range(ratios.get("http_switch_ratio")))
    rows.append(("PostgreSQL store (KK_DATABASE_URL), vs SQLite"
                 + (f" (--only stores, {results['stores_run'].get('finished_at')})"
                    if "stores_run" in results else ""), "", "", ""))
    add("  pg_switch_updates_per_s (in process)", results.get("pg_switch_updates_per_s"),
        between=rate_range("switch_pg"))
    add("  pg_switch_ratio (in process)", results.get("pg_switch_ratio"),
        between=_range(ratios.get("pg_switch_ratio")))
    add("  pg_http_switch_updates_per_s", results.get("pg_http_switch_updates_per_s"),
        between=rate_range("http_switch_pg"))
    add("  pg_http_switch_ratio", results.get("pg_http_switch_ratio"), "pg_http_switch_ratio",
        _range(ratios.get("pg_http_switch_ratio")))
    add("  add_per_s (add+evict, SQLite, in process)", results.get("add_per_s"),
        between=adds_range("add"))
    add("  pg_add_per_s (add+evict, in process)", results.get("pg_add_per_s"),
        between=adds_range("add_pg"))
    add("  pg_add_ratio (in process)", results.get("pg_add_ratio"),
        between=_range(ratios.get("pg_add_ratio")))
    add("  http_add_per_s (add+evict, SQLite, HTTP)", results.get("http_add_per_s"),
        between=adds_range("http_add"))
    add("  pg_http_add_per_s (add+evict, HTTP)", results.get("pg_http_add_per_s"),
        between=adds_range("http_add_pg"))
    add("  pg_http_add_ratio", results.get("pg_http_add_ratio"),
        between=_range(ratios.get("pg_http_add_ratio")))
    add(f"  pg_scale_ratio ({results.get('pg_scale_largest')} / 1000 chats)",
        results.get("pg_scale_ratio"), "pg_scale_ratio")
    add("    pg_scale_switch_ratio", results.get("pg_scale_switch_ratio"),
        between=scale_range("switch", "scale_pg"))
    add("    pg_scale_add_evict_ratio", results.get("pg_scale_add_evict_ratio"),
        between=scale_range("add_evict", "scale_pg"))
    rows.append(("scale, start-up, memory", "", "", ""))
    add("  scale_ratio", results["scale_ratio"], "scale_ratio")
    add("    scale_switch_ratio", results["scale_switch_ratio"], between=scale_range("switch"))
    add("    scale_add_evict_ratio", results["scale_add_evict_ratio"],
        between=scale_range("add_evict"))
    add("  startup_s", results["startup_s"], "startup_s",
        _range({"min": min(runs), "max": max(runs)}) if (runs := _get(
            details.get("startup"), "startup_runs_s")) else "")
    add("  rss_mb", results["rss_mb"], "rss_mb")
    errors = details.get("bot_api_errors", {})
    add("Bot API errors recorded (all steps)", errors.get("total"))
    width = max(len(label) for label, value, _, _ in rows if value != "") + 2  # not headings
    lines = [f"{'metric':<{width}}{'value':>12}  {'min-max':<15}  target"
             + " " * 25 + "met", "-" * (width + 65)]
    for label, value, between, mark in rows:
        shown = "" if value == "" else ("n/a" if value is None else str(value))
        lines.append(f"{label:<{width}}{shown:>12}  {between:<15}  {mark}".rstrip())
    if results.get("failures"):
        lines.append("failed steps: " + ", ".join(results["failures"]))
    return "\n".join(lines)


def write_results(results: JSON) -> None:
    tmp = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(RESULTS)


#: The figures a ``--only stores`` run measures (SQLite against PostgreSQL, each ratio from
#: rounds of that run); they replace those of bench/results.json, the rest stays.
STORE_KEYS = ("pg_switch_updates_per_s", "pg_http_switch_updates_per_s", "pg_switch_ratio",
              "pg_http_switch_ratio", "add_per_s", "pg_add_per_s", "pg_add_ratio",
              "http_add_per_s", "pg_http_add_per_s", "pg_http_add_ratio", "pg_scale_ratio",
              "pg_scale_switch_ratio", "pg_scale_add_evict_ratio", "pg_scale_largest")
STORE_TARGETS = ("pg_http_switch_ratio", "pg_scale_ratio")
#: The details of those figures (the table shows their spread from ``stores_run``).
STORE_DETAILS = ("switch_pg", "add", "add_pg", "http_switch_pg", "http_add", "http_add_pg",
                 "scale_pg")


def merge_store_run(previous: JSON | None, run: JSON) -> JSON:
    """bench/results.json after a ``--only stores`` run: the previous full run's figures,
    with :data:`STORE_KEYS` (and their targets) from ``run``, which is kept whole under
    ``stores_run`` (its SQLite rates, details, machine, parameters)."""
    if not previous:
        return run
    merged = dict(previous)
    for key in STORE_KEYS:
        merged[key] = run.get(key)
    merged["targets"] = dict(previous.get("targets", {}))
    for key in STORE_TARGETS:
        merged["targets"][key] = run["targets"][key]
    merged["stores_run"] = run
    return merged


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="make bench: every measurement, a table on stdout, "
        "bench/results.json (see bench/README.md). Environment: BENCH_FULL=1 (1 M-chat "
        "SQLite scale, longer rounds), BENCH_PROFILE=1 (only the in-process switch, under "
        "cProfile), BENCH_REBUILD=1 (rebuild the cached SQLite scale databases), "
        "BENCH_PG_SCALE_CHATS=N (the largest PostgreSQL scale database; 1 000 000 by "
        "default).")
    parser.add_argument("--only", choices=["stores"], help="stores: only SQLite against "
                        "PostgreSQL (switch and add+evict in process and over HTTP, the "
                        "PostgreSQL scale); its figures replace those in results.json")
    return parser.parse_args(argv)


async def amain(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    p = from_environment()
    if _flag("BENCH_PROFILE"):
        log(f"profiling the in-process switch ({p.updates} taps)")
        sys.stdout.write(await inprocess.profile_switch(p))
        log(f"written to {BENCH_DIR / 'profile.txt'}")
        return 0
    started = time.perf_counter()
    machine = machine_info()
    stores_only = args.only == "stores"
    results = await measure(p, stores_only)
    results["machine"] = machine | {
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    results["parameters"] = p.as_json()
    results["duration_s"] = round(time.perf_counter() - started, 1)
    if stores_only:
        results["only"] = "stores"
        results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            previous = json.loads(RESULTS.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        write_results(merge_store_run(previous, results))
    else:
        write_results(results)
    sys.stdout.write(table(results) + "\n")
    log(f"finished in {results['duration_s']}s; wrote {RESULTS}")
    return 1 if results["failures"] else 0


def main() -> int:
    args = _arguments(sys.argv[1:])  # --help exits here, before anything starts
    atexit.register(overhttp.kill_leftovers)
    try:
        return asyncio.run(amain(["--only", args.only] if args.only else []))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted")
        return 130
