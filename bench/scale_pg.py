"""Scale on PostgreSQL (issue 24 item 6): the measurement of ``bench/scale.py`` (one switch,
one add+evict, through ``AccountService``, alternating between the sizes) on PostgreSQL
databases of ``p.pg_scale_sizes`` chats, built fresh in the run's throwaway cluster (a
cluster does not outlive the run, so nothing is cached).

A build, per size:

* a fresh database, migrated by ``open_services`` (``KK_DATABASE_URL``); the *real* chats
  (``scale_real_chats``, spread over the id range as in ``scale.py``) get consent and three
  accounts through ``AccountsRepo.add``, so they decrypt; only they are measured;
* every other chat is filler, as in ``scale.py`` (consent, three accounts), written with
  ``COPY … FROM STDIN (FORMAT BINARY)`` in one transaction: a random 32-byte
  ``nik_index`` and a unique slot token per row, but **one** random ciphertext per column
  reused for every filler row (of the lengths ``scale.py`` uses). Filler ciphertexts are
  never decrypted (only real chats are measured), and PostgreSQL does not compress
  values this short, so the table and index sizes are those of distinct ciphertexts;
* then ``VACUUM (ANALYZE)`` of both tables, so that statistics exist and autovacuum does
  not start in the middle of the timed blocks (as on a server that has been running).

The cluster runs with ``fsync=off`` and ``synchronous_commit=off`` (tests/pgserver.py):
commits cost no disk flush here, unlike SQLite's checkpoints in ``scale.py``, so compare
the PostgreSQL ratio with itself across sizes, not its milliseconds with SQLite's.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.common import JSON, log
from bench.params import Params
from bench.scale import (
    _SPANS,
    ACCOUNTS_PER_CHAT,
    CHAT_BASE,
    FILLER_COLUMNS,
    ScaleDb,
    _filler_slot,
    add_real_chats,
    check_filler_columns,
    measure_sizes,
    real_layout,
)

CHUNK = 50_000  # filler chats per batch of COPY rows
#: PostgreSQL's type of each filler column, for binary COPY.
PG_TYPES = {"chat_id": "int8", "slot": "text", "lookup_kind": "text", "verified_at": "float8",
            "last_used_at": "float8", "created_at": "float8", "active": "int8"}


def _check_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The filler writes every column without a default (as ``scale._check_schema``)."""
    rows = conn.execute(
        "SELECT column_name, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_name = 'accounts'").fetchall()
    check_filler_columns({str(row[0]) for row in rows},
                         {str(row[0]) for row in rows
                          if row[1] == "NO" and row[2] is None and row[3] != "YES"})


def _pg_fill(url: str, size: int, real: set[int], real_slots: set[str], now: float,
             seed: int) -> float:
    """Filler chats 0..size-1 except ``real``, COPYed in one transaction, then VACUUM
    (ANALYZE). Seconds the COPY took (the vacuum not included)."""
    rng = random.Random(seed)
    key = rng.getrandbits(48)
    shared = [rng.randbytes(b - a) for a, b in _SPANS[1:]]  # every column but nik_index
    names = [name for name, _ in FILLER_COLUMNS]
    types = [PG_TYPES.get(name, "bytea") for name in names]
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        _check_schema(conn)
        with conn.cursor() as cur:
            with cur.copy(f"COPY accounts ({', '.join(names)}) FROM STDIN "
                          "(FORMAT BINARY)") as copy:
                copy.set_types(types)
                number = 0
                for start in range(0, size, CHUNK):
                    ids = [i for i in range(start, min(size, start + CHUNK)) if i not in real]
                    indexes = os.urandom(len(ids) * ACCOUNTS_PER_CHAT * 32)
                    at = 0
                    for index in ids:
                        chat_id = CHAT_BASE + index
                        for k in range(ACCOUNTS_PER_CHAT):
                            slot = _filler_slot(number, key)
                            number += 1
                            while slot in real_slots:
                                slot = _filler_slot(number + (1 << 40), key)
                                number += 1
                            stamp = now - (ACCOUNTS_PER_CHAT - k) * 60.0
                            copy.write_row((chat_id, slot, indexes[at:at + 32], *shared, "nik",
                                            stamp, stamp, stamp,
                                            int(k == ACCOUNTS_PER_CHAT - 1)))
                            at += 32
            with cur.copy("COPY consent (chat_id, consented_at) FROM STDIN "
                          "(FORMAT BINARY)") as copy:
                copy.set_types(["int8", "float8"])
                for index in range(size):
                    if index not in real:
                        copy.write_row((CHAT_BASE + index, now))
        conn.commit()
    copied = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) accounts")
        conn.execute("VACUUM (ANALYZE) consent")
    return copied


def _megabytes(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return float(row[0]) / 2 ** 20 if row else 0.0


async def build_pg_db(size: int, p: Params, url: str, root: Path) -> tuple[ScaleDb, JSON]:
    """A database of ``size`` chats at ``url`` (fresh, empty); its master key in ``root``."""
    started = time.perf_counter()
    data_dir = root / f"pg-{size}"
    real_index, real_chats = real_layout(size, p)
    db = ScaleDb(size, data_dir, real_chats, 0.0, None, database_url=url)
    real_slots = await add_real_chats(db.settings(), real_chats)
    copy_s = await asyncio.to_thread(_pg_fill, url, size, set(real_index), real_slots,
                                     time.time(), size)
    db.built_s = time.perf_counter() - started
    db.megabytes = await asyncio.to_thread(_megabytes, url)
    log(f"  PostgreSQL, {size} chats: built in {db.built_s:.1f}s (COPY {copy_s:.1f}s, "
        f"{db.megabytes:.0f} MiB)")
    return db, {"built_s": round(db.built_s, 1), "copy_s": round(copy_s, 1)}


@contextmanager
def _key_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="kk-bench-pgscale-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def run_scale_pg(p: Params, fresh_pg: Callable[[], str]) -> JSON:
    """Build the databases of ``p.pg_scale_sizes`` chats, then measure them as
    ``scale.py`` does; the figures as :func:`bench.scale.measure_sizes` gives them, plus
    each size's build and COPY seconds."""
    with _key_dir() as root:
        dbs: list[ScaleDb] = []
        builds: dict[str, JSON] = {}
        for size in p.pg_scale_sizes:
            db, build = await build_pg_db(size, p, fresh_pg(), root)
            dbs.append(db)
            builds[str(size)] = build
        result = await measure_sizes(p, dbs)
    for key, build in builds.items():
        result["sizes"][key].update(build)
    result["filler"] = ("COPY; one random ciphertext per column shared by every filler row, "
                        "random nik_index and unique slot per row")
    return result
