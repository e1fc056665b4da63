"""Leader election on PostgreSQL (bot/leader.py): one serves, the others stand by and
take over when it stops, is killed, or loses its connection."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import psycopg
import pytest

from bot.leader import LOCK_KEY, Leadership

ROOT = Path(__file__).resolve().parent.parent


async def holders(url: str) -> int:
    """Sessions holding the leader lock, as the server sees them."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s", (LOCK_KEY,))
        row = await cur.fetchone()
    return int(row[0]) if row else -1


async def until(condition: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_one_leads_the_other_stands_by_then_takes_over(
        pg_db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.leader")
    first, second = Leadership(pg_db_url), Leadership(pg_db_url, retry=0.1)
    stop = asyncio.Event()
    assert await first.acquire(stop)
    waiting = asyncio.create_task(second.acquire(stop))
    await until(lambda: second.status == "standby")
    await asyncio.sleep(0.5)  # several tries: still standby, and said so once
    assert (first.status, second.status) == ("leader", "standby")
    assert not waiting.done()
    assert await holders(pg_db_url) == 1
    standby_lines = [r for r in caplog.records if "standby" in r.getMessage()]
    assert len(standby_lines) == 1
    await first.release()
    assert await asyncio.wait_for(waiting, 5)
    assert second.status == "leader" and first.status == "stopped"
    assert await holders(pg_db_url) == 1
    await second.release()
    assert await holders(pg_db_url) == 0


async def test_a_stop_signal_ends_the_wait(pg_db_url: str) -> None:
    first, second = Leadership(pg_db_url), Leadership(pg_db_url, retry=0.1)
    stop = asyncio.Event()
    assert await first.acquire(stop)
    waiting = asyncio.create_task(second.acquire(stop))
    await until(lambda: second.status == "standby")
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is False
    assert second.status == "standby"
    await second.release()
    await first.release()


async def test_leader_that_loses_its_connection_stops_serving_at_once(
        pg_db_url: str) -> None:
    """Fencing: the server ends the leader's session (as after a network failure); the
    leader's on_lost runs within a few seconds, and the standby takes over."""
    lost = asyncio.Event()
    first = Leadership(pg_db_url, check=0.2, on_lost=lost.set)
    second = Leadership(pg_db_url, retry=0.1)
    stop = asyncio.Event()
    assert await first.acquire(stop)
    waiting = asyncio.create_task(second.acquire(stop))
    await until(lambda: second.status == "standby")
    async with await psycopg.AsyncConnection.connect(pg_db_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = 'asisten-kk leader' AND pid IN "
                            "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                            "AND granted)")
    await asyncio.wait_for(lost.wait(), 5)
    assert first.status == "lost"
    assert await asyncio.wait_for(waiting, 5)
    assert second.status == "leader"
    await first.release()
    await second.release()


class Contender:
    """tests/leader_worker.py in a child process: its status lines, as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.leader_at = 0.0
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, url: str) -> Contender:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests" / "leader_worker.py"), url,
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line == "leader":
                self.leader_at = time.monotonic()
            self.lines.append(line)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._reader


async def test_sigkill_of_the_leader_process_a_standby_takes_over_within_10_s(
        pg_db_url: str) -> None:
    """Three kills in a row: each time the killed leader's lock is freed by the server and
    the standby leads within 10 s (the figure: seconds from SIGKILL to leadership)."""
    current = await Contender.start(pg_db_url)
    await until(lambda: "leader" in current.lines)
    takeovers: list[float] = []
    try:
        for _ in range(3):
            standby = await Contender.start(pg_db_url)
            await until(lambda s=standby: "standby" in s.lines)  # type: ignore[misc]
            assert await holders(pg_db_url) == 1
            killed_at = time.monotonic()
            await current.kill()
            await until(lambda s=standby: "leader" in s.lines, timeout=10)  # type: ignore[misc]
            takeovers.append(standby.leader_at - killed_at)
            assert await holders(pg_db_url) == 1
            current = standby
    finally:
        await current.kill()
    assert max(takeovers) < 10, takeovers
    print(f"takeover after SIGKILL: median {statistics.median(takeovers):.2f} s, "
          f"max {max(takeovers):.2f} s")
