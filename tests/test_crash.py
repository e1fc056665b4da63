"""SIGKILL in the middle of add+evict, again and again: never four accounts, every row
decrypts, and the newest committed account is there."""

from __future__ import annotations

import base64
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from storage.accounts_repo import AccountsRepo
from storage.crypto import Vault, generate_master_key
from storage.db import Database

KILLS = 50
ROOT = Path(__file__).resolve().parent.parent


def _run_until_killed(db_path: Path, key: bytes, start: int, rng: random.Random) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "crash_worker.py"), str(db_path),
         base64.b64encode(key).decode(), str(start)],
        stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
    assert proc.stdout is not None
    committed: list[str] = []
    deadline = time.monotonic() + 10
    while not committed and time.monotonic() < deadline:  # wait until it really writes
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            committed.append(proc.stdout.readline().strip())
    time.sleep(rng.uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    committed.extend(line for line in rest.split() if line)
    return committed


async def test_sigkill_during_add_and_evict_never_breaks_the_cache(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    db_path = tmp_path / "kk.sqlite3"
    key = generate_master_key()
    await (await Database.open(db_path)).close()  # create the schema once
    start = 0
    for _ in range(KILLS):
        committed = _run_until_killed(db_path, key, start, rng)
        assert committed, "the worker committed nothing before being killed"
        start += 10_000
        db = await Database.open(db_path)
        try:
            accounts = await AccountsRepo(db, Vault(key)).list(1)  # decrypts every field
            assert 1 <= len(accounts) <= 3
            assert committed[-1] in [a.nik for a in accounts], "newest commit lost"
            assert sum(a.active for a in accounts) == 1
            async with db.read() as conn, conn.execute(
                    "SELECT count(*) FROM accounts WHERE chat_id = 1") as cur:
                row = await cur.fetchone()
            assert row is not None and row[0] == len(accounts)
        finally:
            await db.close()
