"""Shared pieces of the benchmarks: progress lines, statistics, a Bot API stand-in that
timestamps completions, a closed-loop load generator and quick database population.

A *request* is one user action (a message or a tap) and is complete when the emulator has
processed every Bot API call it expects for it (``sendMessage`` for an echo;
``answerCallbackQuery`` and ``editMessageText`` of the tapped message for a switch). A call
counts once Telegram (the emulator) has dealt with it: a success, or a refusal that is
final (it is in ``emulator.errors`` and reported); a ``429`` or ``5xx``, which the bot's
transport retries, does not count. Each chat's requests complete in order, so each call is
matched to the oldest request of its chat that still waits for that method (callback
answers by their query id, edits by their message id).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import sys
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.devtools.emulator import BotApiEmulator
from bot.services import Services
from handlers.keyboards import SWITCH
from storage.accounts_repo import NewAccount

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
CACHE_DIR = BENCH_DIR / ".cache"
TOKEN = "7012345678:AAHk3vZ_benchBENCHbench-0123456789abcd"
LABELS = ("KK Saya", "KK Orang Tua", "KK Mertua")
#: How the listing marks the chosen account's button (handlers/keyboards.py, issue 22).
ACTIVE_MARK = "📌"
_T0 = time.monotonic()

JSON = dict[str, Any]


class BenchError(RuntimeError):
    """A benchmark step could not run as intended (timeout, dead process, wrong answer)."""


def log(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the bench started."""
    sys.stderr.write(f"[bench {time.monotonic() - _T0:7.1f}s] {message}\n")
    sys.stderr.flush()


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of unsorted values; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rounded(value: float, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def spread(values: Sequence[float], digits: int = 4) -> JSON:
    """The median of per-round (or per-pair) values, their extremes and every value."""
    return {"median": rounded(median(values), digits),
            "min": rounded(min(values), digits) if values else None,
            "max": rounded(max(values), digits) if values else None,
            "per_round": [rounded(v, digits) for v in values]}


@contextlib.contextmanager
def one_cpu() -> Iterator[int | None]:
    """Every thread of this process (and every thread started meanwhile) on one CPU of
    those allowed, restored afterwards. Yields that CPU (None where Linux affinity is not
    available). With two databases on two database threads, the scheduler may put one
    thread on the event loop's core and the other on the second core; each hop to a
    thread on another, idle core then costs a wake-up that has nothing to do with the
    database, and which thread gets which core changes from run to run."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)

    def apply(mask: set[int]) -> None:
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(tid), mask)

    apply({cpu})
    try:
        yield cpu
    finally:
        apply(set(allowed))


def machine_info() -> JSON:
    import sqlite3

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "python_telegram_bot": version("python-telegram-bot"),
        "aiosqlite": version("aiosqlite"),
        "cryptography": version("cryptography"),
        "aiohttp": version("aiohttp"),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


# -- the Bot API stand-in, timestamping completions ----------------------------------------

@dataclass(slots=True, eq=False)
class Pending:
    """One user action in flight."""

    chat_id: int
    started: float
    needs: list[str]  # Bot API methods still awaited, lower case; a name may repeat
    query_id: str | None = None
    message_id: int | None = None  # a tap: the message whose edit it waits for
    finished: float = 0.0
    text: str = ""  # the text of the last sendMessage or edit matched to it


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return None


class TrackingEmulator(BotApiEmulator):
    """The emulator, plus: which user action each bot call completes, and when the bot
    first polled. ``on_complete`` is called synchronously inside the bot's call."""

    def __init__(self, token: str = TOKEN, **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self.pending: dict[int, deque[Pending]] = {}
        self.on_complete: Callable[[Pending], None] | None = None
        self.first_poll_at: float | None = None

    def expect(self, item: Pending) -> Pending:
        self.pending.setdefault(item.chat_id, deque()).append(item)
        return item

    def send(self, chat_id: int, text: str, replies: int = 1) -> Pending:
        """The user sends ``text``; complete at the bot's next ``replies`` sendMessage calls
        in this chat."""
        item = self.expect(Pending(chat_id, time.perf_counter(), ["sendmessage"] * replies))
        self.user_sends(chat_id, text)
        return item

    def tap(self, chat_id: int, message_id: int, data: str,
            needs: tuple[str, ...] = ("answercallbackquery", "editmessagetext")) -> Pending:
        """The user taps a button; complete when the query is answered and (by default) the
        tapped message is edited."""
        started = time.perf_counter()
        query_id = self.user_taps(chat_id, message_id, data)
        return self.expect(Pending(chat_id, started, list(needs), query_id, message_id))

    def wake_pollers(self) -> None:
        """End a pending long poll now (with no updates), e.g. before the server stops."""
        if self._new_update is not None:
            self._new_update.set()

    def outstanding(self) -> int:
        return sum(len(queue) for queue in self.pending.values())

    def describe_outstanding(self) -> str:
        """What the actions still in flight wait for, e.g. for a stall message."""
        waiting: dict[str, int] = {}
        for queue in self.pending.values():
            for item in queue:
                key = "+".join(sorted(item.needs))
                waiting[key] = waiting.get(key, 0) + 1
        return f"{self.outstanding()} in flight, waiting for {waiting or 'nothing'}"

    async def handle(self, method: str, params: JSON) -> tuple[int, JSON]:
        name = method.lower()
        if name == "getupdates" and self.first_poll_at is None:
            self.first_poll_at = time.perf_counter()
        result = await super().handle(method, params)
        status = result[0]
        if (self.pending and status != 429 and status < 500
                and name in ("sendmessage", "editmessagetext", "answercallbackquery")):
            self._observe(name, params)
        return result

    def _observe(self, name: str, params: JSON) -> None:
        query_id: str | None = None
        message_id: int | None = None
        if name == "answercallbackquery":
            query_id = str(params.get("callback_query_id"))
            query = self.queries.get(query_id)
            chat_id = query["chat_id"] if query else None
        else:
            chat_id = _as_int(params.get("chat_id"))
            if name == "editmessagetext":
                message_id = _as_int(params.get("message_id"))
        queue = self.pending.get(chat_id) if chat_id is not None else None
        if not queue:
            return
        for item in queue:
            if (name in item.needs and (query_id is None or item.query_id == query_id)
                    and (message_id is None or item.message_id in (None, message_id))):
                item.needs.remove(name)
                if name != "answercallbackquery":
                    item.text = str(params.get("text", ""))
                if not item.needs:
                    item.finished = time.perf_counter()
                    queue.remove(item)
                    if self.on_complete is not None:
                        self.on_complete(item)
                return


async def wait_for(condition: Callable[[], bool], what: str, within: float,
                   interval: float = 0.005) -> None:
    """Poll ``condition`` until true; BenchError if it is not within ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_items(items: Sequence[Pending], what: str, within: float) -> None:
    """Wait until every action in ``items`` is complete."""
    await wait_for(lambda: all(item.finished for item in items), what, within)


# -- a closed loop --------------------------------------------------------------------------

Issue = Callable[[int, int], Pending]  # (chat_id, n-th action of that chat) -> the action


@dataclass
class LoopResult:
    completed: int
    window_s: float
    per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    capped: bool
    errors: dict[str, int] = field(default_factory=dict)
    anomalies: int = 0
    cpu_ms_per_update: float = math.nan
    info: JSON = field(default_factory=dict)

    def as_json(self) -> JSON:
        return {"completed": self.completed, "window_s": rounded(self.window_s),
                "updates_per_s": rounded(self.per_s, 1), "p50_ms": rounded(self.p50_ms, 2),
                "p99_ms": rounded(self.p99_ms, 2), "mean_ms": rounded(self.mean_ms, 2),
                "time_capped": self.capped, "bot_api_errors": self.errors,
                "anomalies": self.anomalies,
                "cpu_ms_per_update": rounded(self.cpu_ms_per_update, 3), **self.info}


def error_summary(emulator: BotApiEmulator, since: int) -> dict[str, int]:
    summary: dict[str, int] = {}
    for method, description in emulator.errors[since:]:
        key = f"{method}: {description[:60]}"
        summary[key] = summary.get(key, 0) + 1
    return summary


class ClosedLoop:
    """Each chat keeps ``per_chat`` actions in flight; a completion issues the chat's next
    action until ``total`` were issued or ``max_seconds`` passed. The first tenth of the
    completions is warm-up: rate and latencies come from the rest. ``cpu`` reads the CPU
    seconds of whoever does the work (this process by default, or the bot's process); the
    CPU per update covers the whole run, warm-up and the final drain included."""

    def __init__(self, emulator: TrackingEmulator, chat_ids: Sequence[int], issue: Issue, *,
                 total: int, per_chat: int, max_seconds: float, stall_seconds: float = 20.0,
                 check: Callable[[Pending], bool] | None = None,
                 cpu: Callable[[], float] = time.process_time) -> None:
        self.emulator = emulator
        self.chat_ids = list(chat_ids)
        self.issue = issue
        self.total = total
        self.per_chat = per_chat
        self.max_seconds = max_seconds
        self.stall_seconds = stall_seconds
        self.check = check
        self.cpu = cpu
        self.drained = 0
        self.counters = dict.fromkeys(self.chat_ids, 0)
        self.issued = 0
        self.done: list[Pending] = []
        self.stopped = False
        self._finished = asyncio.Event()
        self._last_progress = 0.0

    def _issue(self, chat_id: int) -> None:
        number = self.counters[chat_id]
        self.counters[chat_id] = number + 1
        self.issued += 1
        self.issue(chat_id, number)

    def _completed(self, item: Pending) -> None:
        self._last_progress = time.perf_counter()
        if self.stopped:
            self.drained += 1
            return
        self.done.append(item)
        if self.issued < self.total:
            self._issue(item.chat_id)
        elif len(self.done) >= self.total:
            self._finished.set()

    async def run(self) -> LoopResult:
        errors_before = len(self.emulator.errors)
        cpu_before = self.cpu()
        self.emulator.on_complete = self._completed
        start = self._last_progress = time.perf_counter()
        deadline = start + self.max_seconds
        capped = False
        try:
            for _ in range(self.per_chat):
                for chat_id in self.chat_ids:
                    if self.issued < self.total:
                        self._issue(chat_id)
            while not self._finished.is_set():
                now = time.perf_counter()
                if now >= deadline:
                    capped = True
                    break
                if now - self._last_progress > self.stall_seconds:
                    raise BenchError(f"no progress for {self.stall_seconds:.0f}s after "
                                     f"{len(self.done)} of {self.total} completions; "
                                     f"{self.emulator.describe_outstanding()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._finished.wait(), min(1.0, deadline - now))
        finally:
            self.stopped = True
        # Let what is still in flight finish so that the next step starts from idle.
        try:
            await wait_for(lambda: self.emulator.outstanding() == 0, "the in-flight actions",
                           self.stall_seconds + 60, interval=0.02)
        except BenchError as exc:
            raise BenchError(f"{exc}; {self.emulator.describe_outstanding()}") from None
        self.emulator.on_complete = None
        result = self._result(capped, errors_before)
        handled = len(self.done) + self.drained
        result.cpu_ms_per_update = (self.cpu() - cpu_before) * 1000 / handled
        return result

    def _result(self, capped: bool, errors_before: int) -> LoopResult:
        done = self.done
        if len(done) < 10:
            raise BenchError(f"only {len(done)} completions: too few to measure")
        warm = max(1, len(done) // 10)
        window = done[-1].finished - done[warm - 1].finished
        measured = done[warm:]
        latencies = [(item.finished - item.started) * 1000 for item in measured]
        anomalies = sum(1 for item in done if self.check is not None and not self.check(item))
        return LoopResult(
            completed=len(done), window_s=window,
            per_s=(len(done) - warm) / window if window > 0 else math.nan,
            p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
            mean_ms=sum(latencies) / len(latencies), capped=capped,
            errors=error_summary(self.emulator, errors_before), anomalies=anomalies)



# -- interleaved rounds ---------------------------------------------------------------------

RoundFn = Callable[[int], Awaitable[LoopResult]]  # round number -> one closed loop


async def run_rounds(rounds: int, kinds: dict[str, RoundFn], failures: dict[str, str],
                     *, alternate: bool = True, warmup: int = 0
                     ) -> dict[str, list[LoopResult]]:
    """``warmup`` unrecorded rounds, then ``rounds`` rounds of one closed loop of every
    kind, so that all see nearly the same moments of a noisy machine: the kinds in the
    given order, reversed in odd rounds if ``alternate`` (against drift; without it every
    kind waits equally long before each of its loops). A kind that fails is recorded in
    ``failures`` under its name and left out of the later rounds; the others go on. Its
    results so far are still returned."""
    results: dict[str, list[LoopResult]] = {name: [] for name in kinds}
    names = list(kinds)
    for number in range(-warmup, rounds):
        for name in names if number % 2 == 0 or not alternate else names[::-1]:
            if name in failures:
                continue
            started = time.perf_counter()
            try:
                result = await kinds[name](number)
            except Exception as exc:  # reported; the other kinds still run
                which = "warm-up" if number < 0 else f"round {number + 1}"
                log(f"  {which} {name} FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
                failures[name] = f"{which}: {type(exc).__name__}: {exc}"[:2000]
                continue
            if number < 0:
                log(f"  warm-up {name}: {result.per_s:.1f} updates/s (not recorded)")
                continue
            results[name].append(result)
            log(f"  round {number + 1}/{rounds} {name}: {result.per_s:.1f} updates/s, "
                f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms "
                f"({result.completed} done{', time cap' if result.capped else ''}) in "
                f"{time.perf_counter() - started:.1f}s")
    return results


def summarize(results: Sequence[LoopResult]) -> JSON:
    """One kind's rounds: medians of rate, latencies and CPU per update, the rate's
    extremes, totals of completions, errors and anomalies, and every round."""
    def med(values: list[float], digits: int) -> float | None:
        return rounded(median([v for v in values if not math.isnan(v)]), digits)

    rates = [r.per_s for r in results]
    errors: dict[str, int] = {}
    for result in results:
        for key, number in result.errors.items():
            errors[key] = errors.get(key, 0) + number
    info: JSON = {}
    for result in results:  # numeric extras (transport retries) are summed
        for key, value in result.info.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                info[key] = info.get(key, 0) + value
            else:
                info.setdefault(key, value)
    return {"rounds": len(results), "completed": sum(r.completed for r in results),
            "window_s": rounded(sum(r.window_s for r in results)),
            "updates_per_s": med(rates, 1),
            "updates_per_s_min": rounded(min(rates), 1) if rates else None,
            "updates_per_s_max": rounded(max(rates), 1) if rates else None,
            "p50_ms": med([r.p50_ms for r in results], 2),
            "p99_ms": med([r.p99_ms for r in results], 2),
            "mean_ms": med([r.mean_ms for r in results], 2),
            "time_capped": any(r.capped for r in results), "bot_api_errors": errors,
            "anomalies": sum(r.anomalies for r in results),
            "cpu_ms_per_update": med([r.cpu_ms_per_update for r in results], 3), **info,
            "per_round": [r.as_json() for r in results]}


def round_ratios(numerators: Sequence[LoopResult], denominators: Sequence[LoopResult]
                 ) -> list[float]:
    """Rate / rate of the same round, for the rounds both kinds completed."""
    return [a.per_s / b.per_s for a, b in zip(numerators, denominators, strict=False)
            if b.per_s > 0 and not math.isnan(a.per_s) and not math.isnan(b.per_s)]

# -- the /akun listing ----------------------------------------------------------------------

@dataclass
class Listing:
    """An /akun listing and the order its accounts are tapped in: the two inactive ones,
    then the one active now, round and round. Every tap then differs from the account
    active when it is handled (a chat's taps are handled in order), so it really switches
    and the listing really needs an edit."""

    message_id: int
    cycle: tuple[str, str, str]

    def slot(self, number: int) -> str:
        return self.cycle[number % 3]


def listing_of(emulator: BotApiEmulator, chat_id: int) -> Listing:
    """The newest bot message of the chat with switch buttons (the active one: 📌)."""
    for message in reversed(emulator.bot_messages(chat_id)):
        slots = [(label, slot) for label, data in message.buttons
                 if (slot := SWITCH.arg_of(data)) is not None]
        if not slots:
            continue
        active = [slot for label, slot in slots if label.startswith(ACTIVE_MARK)]
        others = [slot for label, slot in slots if not label.startswith(ACTIVE_MARK)]
        if len(active) != 1 or len(others) < 2:
            raise BenchError(f"chat {chat_id}: listing has {len(active)} active and "
                             f"{len(others)} other accounts, expected 1 and 2")
        return Listing(message.message_id, (others[0], others[1], active[0]))
    raise BenchError(f"chat {chat_id}: no /akun listing with switch buttons")


def switch_issuer(emulator: TrackingEmulator, listings: dict[int, Listing]) -> Issue:
    def issue(chat_id: int, number: int) -> Pending:
        listing = listings[chat_id]
        return emulator.tap(chat_id, listing.message_id, SWITCH.data(listing.slot(number)))
    return issue


def answered_with(emulator: BotApiEmulator, prefix: str) -> Callable[[Pending], bool]:
    """A completion check: the callback answer starts with ``prefix``."""
    def check(item: Pending) -> bool:
        query = emulator.queries.get(item.query_id or "")
        answer = query.get("answer") if query else None
        if not answer:
            return False
        return str(answer.get("text", "")).startswith(prefix)
    return check


# -- settings and population ----------------------------------------------------------------

def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"kk_data_dir": data_dir, "jkn_backend": "sandbox",
                              "otp_sender": "console"}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class QuietSender:
    """An SMS sender that keeps the codes instead of printing them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone_e164: str, message: str) -> None:
        self.sent.append((phone_e164, message))

    async def aclose(self) -> None:
        """Nothing to release."""


def nik_for(chat_id: int, number: int) -> str:
    """A valid NIK (Jakarta 3174, a real date of birth, day + 40 for women), distinct per
    (chat, number) over 6.7e10 values, whose last four digits (0010-9999) avoid the
    sandbox's special cases: since issue 22 a switch shows the card, which looks the
    participant up in the sandbox, and that parses the date of birth."""
    return nik_from(chat_id * 7 + number)


def nik_from(number: int, region: str = "3174") -> str:
    """A valid NIK of ``region`` (4 digits) for ``number``; distinct numbers below 6.7e10
    give distinct NIKs, all ending in 0010-9999 (see :func:`nik_for`)."""
    value = number % (100 * 56 * 12 * 100 * 9990)
    value, seq = divmod(value, 9990)
    value, year = divmod(value, 100)
    value, month = divmod(value, 12)
    district, day = divmod(value, 56)
    day = 1 + day if day < 28 else 41 + day - 28
    return f"{region}{district:02d}{day:02d}{month + 1:02d}{year:02d}{10 + seq:04d}"


def new_account(chat_id: int, number: int, label: str) -> NewAccount:
    return NewAccount(nik=nik_for(chat_id, number), card=f"0001{number % 10 ** 9:09d}",
                      name="SITI RAHAYU", phone="+6281234567890", label=label)


async def add_real_chat(services: Services, chat_id: int, accounts: int = 3) -> None:
    """Consent and ``accounts`` accounts, through the repository (they decrypt)."""
    await services.consent.record(chat_id)
    repo = services.accounts.repo
    for number in range(accounts):
        await repo.add(chat_id, new_account(chat_id, number, LABELS[number % len(LABELS)]),
                       max_accounts=services.accounts.max_accounts,
                       now=services.clock() + number * 0.001)


@contextlib.contextmanager
def postgres() -> Iterator[Callable[[], str] | None]:
    """A throwaway PostgreSQL cluster (as the tests find one, tests/pgserver.py) and a
    maker of fresh empty databases on it; None, with a line in the log, when none."""
    import uuid

    import psycopg

    from tests import pgserver

    try:
        with pgserver.postgres_server() as cluster:
            def fresh() -> str:
                name = f"kk_bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(cluster.url, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return pgserver.with_database(cluster.url, name)
            yield fresh
    except pgserver.PostgresUnavailable as exc:
        log(f"PostgreSQL unavailable, its rounds are skipped: {exc}")
        yield None
