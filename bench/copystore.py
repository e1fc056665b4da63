"""copy-store round trip (issue 24): N chats (default 100 000), each with consent and one
account whose every field is a real ciphertext, SQLite -> PostgreSQL -> SQLite. Prints the
build and copy times, the rows per table and the ciphertexts decrypted on each target.
Usage: python -m bench.copystore [CHATS] (PostgreSQL as the tests find it)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bot.config import Settings
from bot.services import open_services
from storage.accounts_repo import NewAccount
from storage.copystore import from_postgres, to_postgres
from tests import pgserver

PHONE = "+6281234567890"


async def build(data_dir: Path, chats: int) -> bytes:
    settings = Settings(_env_file=None, kk_data_dir=data_dir,  # type: ignore[call-arg]
                        jkn_backend="sandbox", otp_sender="console")
    svc = await open_services(settings)
    try:
        async def one(chat: int) -> None:
            nik = f"3174{chat:012d}"
            await svc.consent.record(chat)
            await svc.accounts.repo.add(chat, NewAccount(
                nik=nik, card="0001" + nik[-9:], name="SITI RAHMAWATI", phone=PHONE,
                label="KK", status={"status_text": "AKTIF"}), max_accounts=3, now=1.0)
        for start in range(1, chats + 1, 1000):
            await asyncio.gather(*(one(c) for c in range(start, min(start + 1000, chats + 1))))
        return (settings.kk_data_dir / "master.key").read_bytes()
    finally:
        await svc.close()


async def main(chats: int) -> None:
    from bot.config import decode_master_key

    with pgserver.postgres_server() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = pgserver.with_database(cluster.url, "postgres")
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        started = time.monotonic()
        key = decode_master_key((await build(data, chats)).decode().strip())
        print(f"built {chats} chats in {time.monotonic() - started:.1f} s")
        there = await to_postgres(data / "kk.sqlite3", url, key)
        print("SQLite -> PostgreSQL:", *there.lines(), sep="\n  ")
        back = await from_postgres(url, Path(tmp) / "back.sqlite3", key)
        print("PostgreSQL -> SQLite:", *back.lines(), sep="\n  ")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
