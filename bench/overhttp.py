"""Over HTTP: each bot is its own process, long-polling the emulator behind aiohttp on
127.0.0.1 (``tests/botapi_http.HttpBotApi``) in this process; the load generator is the
emulator's completion hook, in the same event loop as the server.

Every child is started with a minimal environment (PATH, HOME, PYTHONPATH and what the
run needs) in a fresh working directory, its output goes to a log file there, and it is
always stopped (SIGTERM, then SIGKILL after a timeout), also when the bench is
interrupted (see :func:`kill_leftovers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.addevict import CODE, SMS_BUDGET, STEPS, AddFlow
from bench.common import (
    BENCH_DIR,
    JSON,
    ROOT,
    TOKEN,
    BenchError,
    ClosedLoop,
    LoopResult,
    Pending,
    TrackingEmulator,
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
from bench.inprocess import SWITCHED, populate, show_listings
from bench.params import Params
from bench.ref_switch_bot import populate as populate_reference
from bot.services import open_services
from tests.botapi_http import HttpBotApi

BOT_RUN = (sys.executable, "-m", "bot", "run")
ECHO_BOT = (sys.executable, str(BENCH_DIR / "echo_bot.py"))
REF_BOT = (sys.executable, str(BENCH_DIR / "ref_switch_bot.py"))
_VMHWM = re.compile(r"^VmHWM:\s+(\d+)\s+kB", re.MULTILINE)
_SPAWNED: set[int] = set()  # pids started here and not yet reaped


def kill_leftovers() -> None:
    """For atexit: SIGKILL any child still running. A pid that was already reaped is not
    ours any more and is left alone."""
    for pid in list(_SPAWNED):
        _SPAWNED.discard(pid)
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if reaped == 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def child_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
           "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    env.update(extra)
    return env


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


class Child:
    """A process started by the bench."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @classmethod
    async def start(cls, argv: tuple[str, ...], env: dict[str, str], cwd: Path,
                    log_path: Path) -> Child:
        fd = _open_log(log_path)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=fd,
                stderr=asyncio.subprocess.STDOUT)
        finally:
            os.close(fd)
        _SPAWNED.add(proc.pid)
        return cls(proc, log_path)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far, from /proc (0 if unavailable)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        """VmHWM (peak resident set) from /proc, in MiB."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        match = _VMHWM.search(status)
        return int(match.group(1)) / 1024 if match else None

    async def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM; SIGKILL if it is still running after ``grace`` seconds."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                log(f"  pid {self.proc.pid} ignored SIGTERM for {grace:.0f}s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        _SPAWNED.discard(self.proc.pid)
        return self.proc.returncode


@dataclass
class Served:
    emulator: TrackingEmulator
    child: Child
    startup_s: float
    api: HttpBotApi


EnvFor = Callable[[HttpBotApi], dict[str, str]]


@asynccontextmanager
async def served(argv: tuple[str, ...], env_for: EnvFor, workdir: Path, name: str,
                 ready_timeout: float = 60.0) -> AsyncIterator[Served]:
    """Start the HTTP Bot API and the bot; yield once the bot's first getUpdates arrived."""
    emulator = TrackingEmulator()
    api = HttpBotApi(emulator)
    await api.start()
    child: Child | None = None
    try:
        env = child_env(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.url, **env_for(api))
        spawned = time.perf_counter()
        child = await Child.start(argv, env, workdir, workdir / f"{name}.log")
        running = child

        def ready() -> bool:
            if not running.alive:
                raise BenchError(f"{name} exited with {running.proc.returncode} before "
                                 f"polling:\n{running.tail()}")
            return emulator.first_poll_at is not None

        try:
            await wait_for(ready, f"{name} to poll", ready_timeout)
        except BenchError as exc:
            if not running.alive:
                raise
            raise BenchError(f"{exc}; its output so far:\n{running.tail()}") from None
        assert emulator.first_poll_at is not None
        yield Served(emulator, child, emulator.first_poll_at - spawned, api)
        if not child.alive:
            raise BenchError(f"{name} died during the run:\n{child.tail()}")
    finally:
        if child is not None:
            code = await child.stop()
            if code not in (0, -signal.SIGTERM):
                log(f"  {name} exited with {code}; log tail:\n{child.tail(800)}")
        emulator.wake_pollers()
        await api.stop()


def bot_env(data_dir: Path, database_url: str | None = None, **extra: str) -> EnvFor:
    """`python -m bot run` as in tests/test_process.py: sandbox backend, SMS over HTTP
    (and the store on PostgreSQL when ``database_url`` is given); ``extra`` settings."""
    def env_for(api: HttpBotApi) -> dict[str, str]:
        env = {"KK_DATA_DIR": str(data_dir), "OTP_SENDER": "http",
               "SMS_GATEWAY_URL": f"{api.url}/sms", "SMS_GATEWAY_TOKEN": api.sms_token,
               **extra}
        if database_url:
            env["KK_DATABASE_URL"] = database_url
        return env
    return env_for


def _chat_ids(p: Params) -> list[int]:
    return list(range(1000, 1000 + p.chats))


def _open_chats(emulator: TrackingEmulator, chat_ids: list[int]) -> None:
    for chat_id in chat_ids:
        emulator.open_chat(chat_id, title="Ani")


#: At most this many requests at once right before a closed loop starts (see _prime).
PRIMER = 8
#: The add rounds' chats: a block of ``p.chats`` per round from here, blocks this far apart.
ADD_CHAT_BASE = 20_000
ADD_BLOCK = 1_000
#: The add bots' settings beyond bot_env's: the global SMS budget raised (addevict.py).
ADD_ENV = {"SMS_MAX_PER_HOUR": str(SMS_BUDGET)}


async def _prime(emulator: TrackingEmulator, chat_ids: list[int],
                 send: Callable[[int], Pending], what: str) -> None:
    """``send`` in every chat, :data:`PRIMER` chats at a time, each group waited for.

    python-telegram-bot's HTTPXRequest (all three bots use it) keeps idle connections 5 s.
    After a longer pause (a bot waits while the other two have their rounds) its pool is
    empty, and the first burst of the loop opens a connection for nearly every request in
    flight (about 100); they then stay open, idle, until they expire, and httpcore 1.0's
    pool does work quadratic in its connections on every request: for those 5 s the bot
    spends about 4 times the CPU per update (3 to 13 ms for the echo bot). Small groups
    first leave a few warm connections that the loop's burst queues on instead, as after
    no pause at all, so every round of every bot starts from the same state."""
    for start in range(0, len(chat_ids), PRIMER):
        items = [send(chat_id) for chat_id in chat_ids[start:start + PRIMER]]
        await wait_items(items, what, 120)


async def _switch_loop(served_bot: Served, total: int, p: Params, chat_ids: list[int]
                       ) -> LoopResult:
    """Fresh /akun listings (their cycles follow the accounts active now), then taps."""
    emulator = served_bot.emulator
    await _prime(emulator, chat_ids, lambda chat_id: emulator.send(chat_id, "/akun"),
                 "the /akun listings")
    listings = {chat_id: listing_of(emulator, chat_id) for chat_id in chat_ids}
    return await ClosedLoop(emulator, chat_ids, switch_issuer(emulator, listings),
                            total=total, per_chat=p.per_chat, max_seconds=p.http_max_seconds,
                            check=answered_with(emulator, SWITCHED),
                            cpu=served_bot.child.cpu_seconds).run()


async def _echo_loop(served_bot: Served, total: int, p: Params, chat_ids: list[int]
                     ) -> LoopResult:
    emulator = served_bot.emulator
    await _prime(emulator, chat_ids[:PRIMER], lambda chat_id: emulator.send(chat_id, "halo"),
                 "the echo primer")
    return await ClosedLoop(emulator, chat_ids, lambda chat_id, n: emulator.send(
        chat_id, f"halo {n}"), total=total, per_chat=p.per_chat,
        max_seconds=p.http_max_seconds, cpu=served_bot.child.cpu_seconds).run()


class SmsCodes:
    """The latest code the HTTP SMS gateway got for each phone."""

    def __init__(self, api: HttpBotApi) -> None:
        self.api = api
        self.seen = 0
        self.latest: dict[str, str] = {}

    def code_for(self, phone: str) -> str | None:
        for sms in self.api.sms[self.seen:]:
            match = CODE.search(str(sms.get("message", "")))
            if match:
                self.latest[str(sms.get("to"))] = match.group(1)
        self.seen = len(self.api.sms)
        return self.latest.get(phone)


async def _add_loop(served_bot: Served, total: int, p: Params, chat_ids: list[int]
                    ) -> LoopResult:
    """Adds (``total`` actions, five per add: bench/addevict.py) in chats holding three
    accounts each, primed like the echo bot (a few /akun listings)."""
    emulator = served_bot.emulator
    await _prime(emulator, chat_ids[:PRIMER], lambda chat_id: emulator.send(chat_id, "/akun"),
                 "the add primer")
    flow = AddFlow(emulator, chat_ids, SmsCodes(served_bot.api).code_for)
    result = await ClosedLoop(emulator, chat_ids, flow.issue, total=total, per_chat=1,
                              max_seconds=p.http_max_seconds, check=flow.check,
                              cpu=served_bot.child.cpu_seconds).run()
    if flow.trouble:
        raise BenchError(f"{len(flow.trouble)} add flows went astray, first: "
                         f"{flow.trouble[0]}")
    if result.anomalies:
        raise BenchError(f"{result.anomalies} adds did not end in 'Tersimpan'")
    result.info["adds_completed"] = sum(flow.adds.values())
    return result


Loop = Callable[[Served, int, Params, list[int]], Awaitable[LoopResult]]


class HttpRounds:
    """3a, 3b and 3c as rounds. Each bot is started once (with its own HTTP Bot API), on
    its first round, which the caller does not record (a fresh process is slower for its
    first few hundred updates: cold code, an empty connection pool). Each round is one
    closed loop, primed (:func:`_prime`); the bots not in it stay idle in their long poll.
    :meth:`close` stops them all."""

    def __init__(self, p: Params, workdir: Path, pg_url: str | None = None,
                 pg_add_url: str | None = None) -> None:
        self.p = p
        self.workdir = workdir
        self.pg_url = pg_url
        self.pg_add_url = pg_add_url
        self.pg_data = workdir / "bot_run_pg-data"
        self.chat_ids = _chat_ids(p)
        self.bot_data = workdir / "bot_run-data"
        self.ref_db = workdir / "ref.sqlite3"
        self.add_data = workdir / "bot_run_add-data"
        self.add_pg_data = workdir / "bot_run_add_pg-data"
        self._stacks: dict[str, AsyncExitStack] = {}
        self._served: dict[str, Served] = {}
        self._errors_seen: dict[str, int] = {}

    async def _round(self, key: str, argv: tuple[str, ...], env_for: EnvFor, name: str,
                     loop: Loop, chats: list[int] | None = None, total: int | None = None
                     ) -> LoopResult:
        if key not in self._served:
            stack = AsyncExitStack()
            self._stacks[key] = stack
            served_bot = await stack.enter_async_context(
                served(argv, env_for, self.workdir, name))
            self._served[key] = served_bot
            _open_chats(served_bot.emulator, self.chat_ids)
        served_bot = self._served[key]
        if not served_bot.child.alive:
            raise BenchError(f"{name} died between rounds:\n{served_bot.child.tail()}")
        if chats is not None:
            _open_chats(served_bot.emulator, chats)
        result = await loop(served_bot, total or self.p.http_updates, self.p,
                            chats or self.chat_ids)
        # Errors since the previous round (the first: set-up included).
        result.errors = error_summary(served_bot.emulator, self._errors_seen.get(key, 0))
        self._errors_seen[key] = len(served_bot.emulator.errors)
        return result

    async def echo(self, _number: int) -> LoopResult:
        """(a) the bare PTB echo bot as a process."""
        return await self._round("http_echo", ECHO_BOT, lambda api: {}, "echo_bot",
                                 _echo_loop)

    async def bot(self, _number: int) -> LoopResult:
        """(b) `python -m bot run`, on a database filled beforehand."""
        if "http_switch" not in self._served:
            await prepare_bot_data(self.bot_data, self.chat_ids)
        return await self._round("http_switch", BOT_RUN, bot_env(self.bot_data), "bot_run",
                                 _switch_loop)

    async def bot_pg(self, _number: int) -> LoopResult:
        """(b) on PostgreSQL: `python -m bot run` with KK_DATABASE_URL, same chats."""
        if "http_switch_pg" not in self._served:
            await prepare_bot_data(self.pg_data, self.chat_ids, self.pg_url)
        return await self._round("http_switch_pg", BOT_RUN, bot_env(self.pg_data, self.pg_url),
                                 "bot_run_pg", _switch_loop)

    def _add_chats(self, number: int) -> list[int]:
        """Round ``number``'s chats for adds (-1 is the warm-up): a block of its own, so
        that no chat reaches its 10 codes a day over the rounds."""
        first = ADD_CHAT_BASE + (number + 1) * ADD_BLOCK
        return list(range(first, first + self.p.chats))

    def _all_add_chats(self) -> list[int]:
        return [c for n in range(-1, self.p.http_rounds) for c in self._add_chats(n)]

    async def add(self, number: int) -> LoopResult:
        """Add + evict (bench/addevict.py) with `python -m bot run` on SQLite."""
        if "http_add" not in self._served:
            await prepare_bot_data(self.add_data, self._all_add_chats())
        return await self._round("http_add", BOT_RUN, bot_env(self.add_data, **ADD_ENV),
                                 "bot_run_add", _add_loop, self._add_chats(number),
                                 self.p.http_adds * STEPS)

    async def add_pg(self, number: int) -> LoopResult:
        """The same with the store on PostgreSQL (its own fresh database)."""
        if "http_add_pg" not in self._served:
            await prepare_bot_data(self.add_pg_data, self._all_add_chats(), self.pg_add_url)
        return await self._round("http_add_pg", BOT_RUN,
                                 bot_env(self.add_pg_data, self.pg_add_url, **ADD_ENV),
                                 "bot_run_add_pg", _add_loop, self._add_chats(number),
                                 self.p.http_adds * STEPS)

    async def reference(self, _number: int) -> LoopResult:
        """(c) the minimal switch bot."""
        if "http_reference" not in self._served:
            await asyncio.to_thread(populate_reference, str(self.ref_db), self.chat_ids,
                                    ("KK Saya", "KK Orang Tua", "KK Mertua"))
        ref_db = str(self.ref_db)
        return await self._round("http_reference", REF_BOT, lambda api: {"REF_DB": ref_db},
                                 "ref_switch_bot", _switch_loop)

    async def close(self) -> dict[str, str]:
        """Stop every bot started; what went wrong on the way (a bot that died), per key."""
        failures: dict[str, str] = {}
        for key, stack in self._stacks.items():
            try:
                await stack.aclose()
            except Exception as exc:  # reported; the others are still stopped
                failures[key] = f"{type(exc).__name__}: {exc}"[:2000]
        self._stacks.clear()
        self._served.clear()
        return failures


async def prepare_bot_data(data_dir: Path, chat_ids: list[int],
                           database_url: str | None = None) -> None:
    """Consent and three accounts per chat, written with the bot's own services (same
    data directory, so the same master.key) and closed before the bot starts."""
    extra = {"kk_database_url": database_url} if database_url else {}
    services = await open_services(make_settings(data_dir, **extra))
    try:
        await populate(services, chat_ids, 3)
    finally:
        await services.close()


# -- 7. start-up time and memory with the largest database ----------------------------------

async def startup_and_memory(p: Params, data_dir: Path, real_chats: list[int]) -> JSON:
    """Spawn `python -m bot run` on ``data_dir`` ``startup_runs`` times: seconds until its
    first getUpdates; in the last run some real chats then open /akun and switch a few
    times before VmHWM is read (just before SIGTERM)."""
    startups: list[float] = []
    rss_ready: list[float] = []
    rss_final: float | None = None
    errors: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="kk-bench-start-") as tmp:
        for run in range(p.startup_runs):
            async with served(BOT_RUN, bot_env(data_dir), Path(tmp), f"startup{run}") as s:
                startups.append(s.startup_s)
                rss_ready.append(s.child.peak_rss_mb() or 0.0)
                log(f"  start-up {run + 1}/{p.startup_runs}: {s.startup_s:.2f}s, "
                    f"VmHWM {rss_ready[-1]:.0f} MiB")
                if run == p.startup_runs - 1:
                    chats = real_chats[:16]
                    _open_chats(s.emulator, chats)
                    listings = await show_listings(s.emulator, chats)
                    await ClosedLoop(s.emulator, chats, switch_issuer(s.emulator, listings),
                                     total=len(chats) * 6, per_chat=1, max_seconds=60).run()
                    rss_final = s.child.peak_rss_mb()
                for key, count in error_summary(s.emulator, 0).items():
                    errors[key] = errors.get(key, 0) + count
    return {"startup_s": rounded(percentile(startups, 50), 3),
            "startup_runs_s": [rounded(x, 3) for x in startups],
            "rss_mb": rounded(max([rss_final or 0.0, *rss_ready]), 1),
            "rss_ready_mb": rounded(max(rss_ready), 1), "bot_api_errors": errors}
