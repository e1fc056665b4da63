"""Failover on PostgreSQL (issue 24): SIGKILL the serving `python -m bot run` N times,
with a standby always waiting; seconds from the kill to the first poll of the standby,
and to its first answer. Usage: python -m bench.failover [N] (needs PostgreSQL binaries
or KK_TEST_POSTGRES_URL, as the tests)."""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from storage.crypto import generate_master_key
from storage.keys import encode_key
from tests import pgserver
from tests.process import RunningBot, http_env, spawn_bot


async def main(kills: int) -> None:
    with pgserver.postgres_server() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = pgserver.with_database(cluster.url, "postgres")
        settings = {"KK_DATABASE_URL": url, "KK_MASTER_KEY": encode_key(generate_master_key())}
        root = Path(tmp)
        for name in "ab":
            (root / name).mkdir()
        figures: list[float] = []
        async with RunningBot(root / "a", **settings) as bot:
            chat = bot.chat(77)
            await chat.consent()
            spare = await spawn_bot(root / "b", http_env(root / "b", bot.api, **settings))
            for n in range(kills):
                await chat.send("/bantuan", expect="/tambah_kk")
                killed = time.monotonic()
                await bot.stop(signal.SIGKILL)
                bot.proc, spare = spare, None  # type: ignore[assignment]
                await chat.send("/bantuan", expect="/tambah_kk")
                figures.append(time.monotonic() - killed)
                side = root / ("ab"[n % 2])
                spare = await spawn_bot(side, http_env(side, bot.api, **settings))
                await asyncio.sleep(1.5)  # the new standby connects and waits
            if spare is not None:
                spare.send_signal(signal.SIGTERM)
                await spare.communicate()
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")
        print(f"failover over {kills} kills: median {statistics.median(figures):.2f} s, "
              f"max {max(figures):.2f} s (kill to first answer by the standby)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
