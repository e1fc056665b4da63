"""The benchmark's parameters: quick by default, ``BENCH_FULL=1`` for the 1 M-chat run."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Params:
    mode: str
    chats: int = 64                 # closed loops: chats, each with ...
    per_chat: int = 2               # ... at most this many updates in flight
    rounds: int = 5                 # 1+2 in process: interleaved rounds, medians reported
    echo_updates: int = 3000        # in-process echo baseline: updates per round
    updates: int = 1200             # in-process switch closed loop: updates per round ...
    max_seconds: float = 25.0       # ... or this long, whichever comes first
    add_adds: int = 160             # in-process add+evict closed loop: adds per round
    one_cpu_rounds: int = 3         # 1+2 again on one CPU (a diagnostic in details)
    http_rounds: int = 5            # 3a+3b+3c over HTTP: rounds, after a warm-up round
    http_updates: int = 500         # over HTTP: updates per round ...
    http_max_seconds: float = 12.0  # ... or this long
    http_adds: int = 60             # over HTTP: adds per round (five actions each)
    concurrency_chats: int = 100    # bursts: chats tapping at once ...
    concurrency_rounds: int = 5     # ... this many times (plus one warm-up)
    isolation_taps: int = 100
    persistence_updates: int = 3000
    persistence_reps: int = 3       # on/off pairs, interleaved
    scale_sizes: tuple[int, ...] = (1_000, 100_000)
    scale_real_chats: int = 64      # chats added through the repository in every database
    scale_switch_ops: int = 500     # per database and block
    scale_add_ops: int = 120        # per database and block
    scale_reps: int = 15            # pairs of blocks (all sizes, one op each in turn)
    pg_scale_sizes: tuple[int, ...] = (1_000, 1_000_000)  # the same on PostgreSQL
    startup_runs: int = 3

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["scale_sizes"] = list(self.scale_sizes)
        data["pg_scale_sizes"] = list(self.pg_scale_sizes)
        return data


QUICK = Params(mode="quick")
FULL = Params(mode="full", rounds=7, one_cpu_rounds=5, echo_updates=10_000, updates=4000,
              add_adds=512, http_adds=150,
              max_seconds=60.0, http_rounds=7, http_updates=1500, http_max_seconds=40.0,
              concurrency_rounds=20, persistence_updates=6000, persistence_reps=5,
              scale_sizes=(1_000, 100_000, 1_000_000), scale_switch_ops=1000,
              scale_add_ops=250, scale_reps=25, startup_runs=5)


def from_environment() -> Params:
    """QUICK or FULL (``BENCH_FULL=1``); ``BENCH_PG_SCALE_CHATS=N`` makes N the largest
    PostgreSQL scale database instead of 1 M (the 1 M build takes about 100 s)."""
    params = FULL if os.environ.get("BENCH_FULL", "") not in ("", "0") else QUICK
    largest = os.environ.get("BENCH_PG_SCALE_CHATS", "").strip()
    if largest:
        params = replace(params, pg_scale_sizes=(1_000, max(1_000, int(largest))))
    return params
