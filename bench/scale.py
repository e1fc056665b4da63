"""Scale: what one switch and one add+evict cost (through ``AccountService``, no Telegram)
with 1 k, 100 k (and, with BENCH_FULL=1, 1 M) chats of three accounts each.

The databases are cached in ``bench/.cache/scale-<chats>/`` (gitignored) and reused while
their manifest matches (size, schema version, bench format, built less than a week ago so
that no session has expired); ``BENCH_REBUILD=1`` rebuilds them. A build:

* the *real* chats (``scale_real_chats``, spread over the id range) get consent and three
  accounts through ``AccountsRepo.add``, so they decrypt; only they are measured;
* every other chat is filler, bulk-inserted in one transaction with ``executemany``:
  consent, and three accounts whose ciphertexts are random bytes of realistic lengths
  (never decrypted), a random 32-byte ``nik_index`` and a unique pseudo-random 8-character
  slot token (a bijective mix of a counter, so no collision is possible).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    CACHE_DIR,
    JSON,
    BenchError,
    QuietSender,
    add_real_chat,
    log,
    make_settings,
    median,
    new_account,
    one_cpu,
    rounded,
    spread,
)
from bench.params import Params
from bot.accounts import SwitchOutcome
from bot.config import Settings
from bot.services import Services, open_services
from storage.db import SCHEMA_VERSION

FORMAT = 1
MAX_AGE_S = 7 * 86400
CHAT_BASE = 100_000_000
ACCOUNTS_PER_CHAT = 3
CHUNK = 20_000  # filler chats per executemany
#: The filler row, column by column: (column, bytes of random data or None).
FILLER_COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("chat_id", None), ("slot", None), ("nik_index", 32), ("nik_ct", 49), ("card_ct", 46),
    ("name_ct", 53), ("phone_ct", 47), ("label_ct", 45), ("lookup_kind", None),
    ("verified_at", None), ("last_used_at", None), ("created_at", None), ("active", None),
)


def _spans() -> tuple[tuple[int, int], ...]:
    """Where each random column's bytes sit in a row's share of the random blob."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for _, length in FILLER_COLUMNS:
        if length:
            spans.append((offset, offset + length))
            offset += length
    return tuple(spans)


_SPANS = _spans()
_RANDOM_BYTES = _SPANS[-1][1]
_MASK48 = (1 << 48) - 1
_ODD = 0x9E3779B97F4B


@dataclass
class ScaleDb:
    size: int
    data_dir: Path
    real_chats: list[int]
    megabytes: float
    built_s: float | None  # None: reused from the cache
    database_url: str | None = None  # PostgreSQL; None: kk.sqlite3 in data_dir

    def settings(self) -> Settings:
        extra = {"kk_database_url": self.database_url} if self.database_url else {}
        return make_settings(self.data_dir, **extra)


def _filler_slot(number: int, key: int) -> str:
    """Distinct numbers give distinct tokens (multiplication by an odd constant and XOR
    are bijections on 48 bits); 6 bytes are 8 URL-safe base64 characters."""
    value = ((number * _ODD) & _MASK48) ^ key
    return base64.urlsafe_b64encode(value.to_bytes(6, "big")).decode("ascii")


def _check_schema(conn: sqlite3.Connection) -> None:
    info = conn.execute("PRAGMA table_info(accounts)").fetchall()
    check_filler_columns({str(row[1]) for row in info},
                         {str(row[1]) for row in info if row[3] and row[4] is None})


def check_filler_columns(existing: set[str], required: set[str]) -> None:
    """The filler writes every column the accounts table has without a default."""
    known = {name for name, _ in FILLER_COLUMNS}
    if not known <= existing or not required <= known:
        raise BenchError(
            "the accounts table changed (missing: "
            f"{sorted(known - existing)}, new required: {sorted(required - known)}); "
            "update FILLER_COLUMNS in bench/scale.py")


def _bulk_fill(db_path: Path, size: int, real: set[int], real_slots: set[str], now: float,
               seed: int) -> None:
    """Filler chats 0..size-1 except ``real``, in one transaction (on a worker thread)."""
    rng = random.Random(seed)
    key = rng.getrandbits(48)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        _check_schema(conn)
        for pragma in ("journal_mode=DELETE", "synchronous=OFF", "cache_size=-262144",
                       "secure_delete=OFF"):
            conn.execute(f"PRAGMA {pragma}")
        names = [name for name, _ in FILLER_COLUMNS]
        insert = (f"INSERT INTO accounts ({', '.join(names)}) "
                  f"VALUES ({', '.join('?' * len(names))})")
        number = 0
        conn.execute("BEGIN")
        for start in range(0, size, CHUNK):
            ids = [i for i in range(start, min(size, start + CHUNK)) if i not in real]
            blob = rng.randbytes(len(ids) * ACCOUNTS_PER_CHAT * _RANDOM_BYTES)
            at = 0
            rows: list[tuple[object, ...]] = []
            for index in ids:
                chat_id = CHAT_BASE + index
                for k in range(ACCOUNTS_PER_CHAT):
                    slot = _filler_slot(number, key)
                    number += 1
                    while slot in real_slots:  # beyond any counter value used here
                        slot = _filler_slot(number + (1 << 40), key)
                        number += 1
                    stamp = now - (ACCOUNTS_PER_CHAT - k) * 60.0
                    rows.append((chat_id, slot,
                                 *[blob[at + a:at + b] for a, b in _SPANS],
                                 "nik", stamp, stamp, stamp, int(k == ACCOUNTS_PER_CHAT - 1)))
                    at += _RANDOM_BYTES
            conn.executemany(insert, rows)
            conn.executemany("INSERT INTO consent (chat_id, consented_at) VALUES (?, ?)",
                             [(CHAT_BASE + index, now) for index in ids])
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    # synchronous=OFF left the file in the page cache: write it out now, not while the
    # operations are being timed.
    fd = os.open(db_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _manifest_path(size: int) -> Path:
    return CACHE_DIR / f"scale-{size}" / "manifest.json"


def _cached(size: int, real_count: int) -> ScaleDb | None:
    path = _manifest_path(size)
    data_dir = path.parent / "data"
    db_path = data_dir / "kk.sqlite3"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (manifest.get("format") != FORMAT or manifest.get("size") != size
            or manifest.get("schema_version") != SCHEMA_VERSION
            or len(manifest.get("real_chats", [])) != real_count
            or time.time() - float(manifest.get("built_at", 0)) > MAX_AGE_S
            or not db_path.exists() or not (data_dir / "master.key").exists()):
        return None
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        chats = conn.execute("SELECT count(*) FROM consent").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if version != SCHEMA_VERSION or chats != size:
        return None
    return ScaleDb(size, data_dir, [int(c) for c in manifest["real_chats"]],
                   db_path.stat().st_size / 2 ** 20, None)


def real_layout(size: int, p: Params) -> tuple[list[int], list[int]]:
    """Where the measured chats sit among ``size``: their filler indexes and chat ids."""
    stride = size // p.scale_real_chats
    real_index = [k * stride + stride // 2 for k in range(p.scale_real_chats)]
    return real_index, [CHAT_BASE + i for i in real_index]


async def add_real_chats(settings: Settings, real_chats: list[int]) -> set[str]:
    """The measured chats, added through the bot's services; the slots they hold."""
    services = await open_services(settings, sms=QuietSender())
    try:
        for chat_id in real_chats:
            await add_real_chat(services, chat_id)
        return {a.slot for chat_id in real_chats
                for a in await services.accounts.list(chat_id)}
    finally:
        await services.close()


async def ensure_db(size: int, p: Params, rebuild: bool) -> ScaleDb:
    """The cached database of ``size`` chats, built first if needed."""
    if not rebuild:
        cached = await asyncio.to_thread(_cached, size, p.scale_real_chats)
        if cached is not None:
            log(f"  {size} chats: reusing {cached.data_dir} ({cached.megabytes:.0f} MiB)")
            return cached
    started = time.perf_counter()
    root = _manifest_path(size).parent
    await asyncio.to_thread(shutil.rmtree, root, True)
    data_dir = root / "data"
    real_index, real_chats = real_layout(size, p)
    log(f"  {size} chats: building in {root}")
    real_slots = await add_real_chats(make_settings(data_dir), real_chats)
    db_path = data_dir / "kk.sqlite3"
    await asyncio.to_thread(_bulk_fill, db_path, size, set(real_index), real_slots,
                            time.time(), size)
    built = time.perf_counter() - started
    manifest = {"format": FORMAT, "size": size, "schema_version": SCHEMA_VERSION,
                "real_chats": real_chats, "built_at": time.time(), "built_s": round(built, 1)}
    _manifest_path(size).write_text(json.dumps(manifest))
    megabytes = db_path.stat().st_size / 2 ** 20
    log(f"  {size} chats: built in {built:.1f}s ({megabytes:.0f} MiB)")
    return ScaleDb(size, data_dir, real_chats, megabytes, built)


# -- the operations -------------------------------------------------------------------------

class Switches:
    """One switch at a time, as a tap does it (``AccountService.tap``: the switch and the
    listing after it, one unit of work); each chat alternates between its two inactive
    accounts."""

    def __init__(self, services: Services, chats: list[int]) -> None:
        self.services = services
        self.chats = chats
        self.others: dict[int, list[str]] = {}
        self.done = 0

    async def prepare(self) -> None:
        """Read which accounts are inactive now (an add+evict changes them)."""
        for chat_id in self.chats:
            self.others[chat_id] = [a.slot for a in await self.services.accounts.list(chat_id)
                                    if not a.active][:2]
        self.done = 0

    async def one(self) -> float:
        chat_id = self.chats[self.done % len(self.chats)]
        slot = self.others[chat_id][(self.done // len(self.chats)) % 2]
        self.done += 1
        started = time.perf_counter()
        outcome, _, _ = await self.services.accounts.tap(chat_id, slot)
        elapsed = time.perf_counter() - started
        if outcome is not SwitchOutcome.SWITCHED:
            raise BenchError(f"chat {chat_id}: a switch gave {outcome}")
        return elapsed


class AddEvicts:
    """One add+evict at a time, as /tambah_kk does it: the eviction candidate (least
    recently used), then the atomic insert-and-evict."""

    def __init__(self, services: Services, chats: list[int], rng: random.Random) -> None:
        self.services = services
        self.chats = chats
        self.rng = rng
        self.done = 0

    async def one(self) -> float:
        chat_id = self.chats[self.done % len(self.chats)]
        self.done += 1
        new = new_account(chat_id, self.rng.randrange(10 ** 12), "KK Baru")
        started = time.perf_counter()
        candidate = await self.services.accounts.eviction_candidate(chat_id)
        if candidate is None:
            raise BenchError(f"chat {chat_id} is not full")
        await self.services.accounts.add(chat_id, new, evict_slot=candidate.slot)
        return time.perf_counter() - started


async def interleaved(ops: list[Switches] | list[AddEvicts], count: int, warm: int
                      ) -> list[list[float]]:
    """A block: ``warm`` unrecorded operations, then ``count`` recorded ones, on every
    database, one database after the other (the order flips every time), so that all see
    the same moments of the machine. Seconds of every recorded operation, per database."""
    times: list[list[float]] = [[] for _ in ops]
    for number in range(warm + count):
        order = range(len(ops)) if number % 2 == 0 else range(len(ops) - 1, -1, -1)
        for index in order:
            elapsed = await ops[index].one()
            if number >= warm:
                times[index].append(elapsed)
    return times


def _ms(times: list[float]) -> float:
    """Mean cost of one operation in a block, in ms: WAL checkpoints included."""
    return sum(times) / len(times) * 1000


async def run_scale(p: Params, rebuild: bool) -> tuple[JSON, ScaleDb]:
    """The SQLite databases of ``p.scale_sizes`` chats (cached), measured by
    :func:`measure_sizes`."""
    dbs = [await ensure_db(size, p, rebuild) for size in p.scale_sizes]
    return await measure_sizes(p, dbs), dbs[-1]


async def measure_sizes(p: Params, dbs: list[ScaleDb]) -> JSON:
    """``scale_reps`` pairs after one unrecorded one. A pair is a block of switches then a
    block of add+evicts, each operation alternating between the databases, each block
    starting with a few unrecorded operations (the first add+evict after switches would
    otherwise pay the switches' WAL checkpoint). Per pair and operation the mean cost at
    each size / the mean cost at the smallest; the figures are the medians of those ratios.
    The process is held on one CPU while it measures (see ``common.one_cpu``)."""
    opened: list[Services] = []
    # Not a fixed seed: the cached databases keep their accounts from run to run, and one
    # that the switches keep recent is never evicted; the same NIKs again would collide.
    rng = random.Random()
    costs: dict[int, dict[str, list[float]]] = {
        db.size: {"switch": [], "add_evict": [], "switch_p50": [], "add_evict_p50": []}
        for db in dbs}
    with one_cpu() as cpu:
        try:
            for db in dbs:
                opened.append(await open_services(db.settings(), sms=QuietSender()))
            pairs = list(zip(opened, dbs, strict=True))
            switches = [Switches(services, db.real_chats) for services, db in pairs]
            adds = [AddEvicts(services, db.real_chats, rng) for services, db in pairs]
            for rep in range(p.scale_reps + 1):
                for switch in switches:
                    await switch.prepare()
                switch_times = await interleaved(switches, p.scale_switch_ops,
                                                 warm=p.scale_real_chats)
                add_times = await interleaved(adds, p.scale_add_ops, warm=4)
                if rep == 0:
                    continue  # warm-up pair
                for db, one_switch, one_add in zip(dbs, switch_times, add_times, strict=True):
                    costs[db.size]["switch"].append(_ms(one_switch))
                    costs[db.size]["add_evict"].append(_ms(one_add))
                    costs[db.size]["switch_p50"].append(median(one_switch) * 1000)
                    costs[db.size]["add_evict_p50"].append(median(one_add) * 1000)
                log(f"  pair {rep}/{p.scale_reps}: " + "; ".join(
                    f"{db.size} chats: switch {costs[db.size]['switch'][-1]:.3f} ms, "
                    f"add+evict {costs[db.size]['add_evict'][-1]:.3f} ms" for db in dbs))
        finally:
            for services in opened:
                await services.close()
    smallest, largest = dbs[0].size, dbs[-1].size

    def ratios(size: int, key: str) -> list[float]:
        return [a / b for a, b in zip(costs[size][key], costs[smallest][key], strict=True)]

    sizes: JSON = {}
    for db in dbs:
        sizes[str(db.size)] = {
            "switch_ms": rounded(median(costs[db.size]["switch"]), 4),
            "add_evict_ms": rounded(median(costs[db.size]["add_evict"]), 4),
            "switch_ratio": rounded(median(ratios(db.size, "switch")), 3),
            "add_evict_ratio": rounded(median(ratios(db.size, "add_evict")), 3),
            "switch_runs_ms": [rounded(x, 4) for x in costs[db.size]["switch"]],
            "add_evict_runs_ms": [rounded(x, 4) for x in costs[db.size]["add_evict"]],
            "switch_pair_ratios": spread(ratios(db.size, "switch"), 3),
            "add_evict_pair_ratios": spread(ratios(db.size, "add_evict"), 3),
            "switch_op_p50_ms": rounded(median(costs[db.size]["switch_p50"]), 4),
            "add_evict_op_p50_ms": rounded(median(costs[db.size]["add_evict_p50"]), 4),
            "switch_op_p50_ratio": rounded(median(ratios(db.size, "switch_p50")), 3),
            "add_evict_op_p50_ratio": rounded(median(ratios(db.size, "add_evict_p50")), 3),
            "database_mib": round(db.megabytes),
            "built_s": rounded(db.built_s, 1) if db.built_s is not None else "cached"}
    switch_ratio = median(ratios(largest, "switch"))
    add_ratio = median(ratios(largest, "add_evict"))
    result = {"sizes": sizes, "largest": largest, "pairs": p.scale_reps,
              "pinned_cpu": cpu, "switch_ratio": rounded(switch_ratio, 3),
              "add_evict_ratio": rounded(add_ratio, 3),
              "scale_ratio": rounded(max(switch_ratio, add_ratio), 3)}
    return result
