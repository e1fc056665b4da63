"""SIGKILL at random points of add + evict, code consumption, erasing a chat and key
rotation, again and again (tests/crash_worker.py). After every kill: at most three
accounts per chat, every account whole, no code that works twice, every erase complete or
not started, and the key on disk opens every row."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from bot.config import Settings
from bot.services import open_services
from storage.otp_repo import VerifyOutcome

ROOT = Path(__file__).resolve().parent.parent


def run_until_killed(data_dir: Path, seed: int, rng: random.Random) -> list[str]:
    """Start the worker, let it work for a random moment, SIGKILL it; its journal."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "crash_worker.py"),
                             str(data_dir), str(seed)], stdout=subprocess.PIPE, env=env,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    journal: list[str] = []
    deadline = time.monotonic() + 20
    while "READY" not in journal and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            journal.append(proc.stdout.readline().strip())
    time.sleep(rng.uniform(0.0, 0.25))
    proc.send_signal(signal.SIGKILL)
    journal += [line.strip() for line in proc.stdout.read().splitlines()]
    proc.wait()
    assert "READY" in journal, "the worker never started"
    return journal


async def check_after_a_kill(data_dir: Path, journal: list[str]) -> None:
    settings = Settings(_env_file=None, kk_data_dir=data_dir,  # type: ignore[call-arg]
                        jkn_backend="sandbox", otp_sender="console")
    svc = await open_services(settings)  # the key on disk (an interrupted rotation finished)
    try:
        for chat in range(1, 6):
            accounts = await svc.accounts.list(chat)  # every field decrypts, or it raises
            assert len(accounts) <= 3
            assert sum(a.active for a in accounts) == (1 if accounts else 0)
            assert all(a.nik and a.name and a.label and a.status for a in accounts)
            challenge = await svc.otp.challenge(chat)  # its payload decrypts too
            assert challenge is None or challenge.payload["kind"] == "nik"
        last: dict[int, list[str]] = {}  # each chat's newest journal line
        for line in journal:
            kind, *rest = line.split()
            if rest and rest[0].isdigit():
                last[int(rest[0])] = [kind, *rest[1:]]
        for chat, (kind, *rest) in last.items():  # BEGIN: it may or may not have happened
            rows = await chat_rows(svc, chat)
            if kind == "ERASED":
                assert not any(rows.values()), f"chat {chat}: an erase left rows behind"
            elif kind == "FILLED":  # killed during (or before) the erase
                # the worker fills every table (user_data and reminder_log too), so a
                # whole set is every count above zero, and an erase that ran none
                assert all(rows.values()) or not any(rows.values()), \
                    f"chat {chat}: a half-done erase {rows}"
            elif kind == "ADDED":
                assert rest[0] in [a.nik for a in await svc.accounts.list(chat)], \
                    f"chat {chat}: the newest committed account was lost"
        # the codes last: a wrong try changes a chat's challenge, which the checks above read
        for line in journal:
            kind, *rest = line.split()
            if kind == "ISSUED":
                chat, code = int(rest[0]), rest[1]
                outcomes = [(await svc.otp.verify(chat, code)).outcome for _ in range(2)]
                assert outcomes.count(VerifyOutcome.OK) <= 1, "a code worked twice"
                if f"VERIFIED {chat} {code}" in journal:
                    assert VerifyOutcome.OK not in outcomes, "a used code worked again"
    finally:
        await svc.close()


async def chat_rows(svc: object, chat: int) -> dict[str, int]:
    from tests.conftest import chat_rows as rows_of

    counts = await rows_of(svc, chat)  # type: ignore[arg-type]
    counts.pop("user_data", None)  # the erase deletes it, but the worker never writes one
    return counts


async def survive(tmp_path: Path, kills: int) -> dict[str, int]:
    rng = random.Random(20261127)
    data_dir = tmp_path / "data"
    totals: dict[str, int] = defaultdict(int)
    for seed in range(1, kills + 1):
        journal = run_until_killed(data_dir, seed, rng)
        for line in journal:
            totals[line.split()[0]] += 1
        await check_after_a_kill(data_dir, journal)
    return totals


async def test_thirty_kills_anywhere_lose_nothing_and_break_nothing(tmp_path: Path) -> None:
    totals = await survive(tmp_path, 30)
    assert totals["ADDED"] > 30 and totals["VERIFIED"] > 10 and totals["ERASED"] > 3


@pytest.mark.slow
async def test_two_hundred_kills_anywhere_lose_nothing_and_break_nothing(tmp_path: Path
                                                                        ) -> None:
    totals = await survive(tmp_path, 200)
    assert totals["ROTATED"] > 5
