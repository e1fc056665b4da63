"""Subprocess for the crash test: adds accounts with eviction in a loop until killed.

Prints each committed NIK (after its transaction returned) so the parent knows the newest
state that must survive."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

from storage.accounts_repo import AccountsRepo, NewAccount
from storage.crypto import Vault
from storage.db import Database


async def main(db_path: str, key_b64: str, start: int) -> None:
    db = await Database.open(Path(db_path))
    repo = AccountsRepo(db, Vault(base64.b64decode(key_b64)))
    i = start
    while True:
        i += 1
        nik = f"3174014506{i:06d}"
        accounts = await repo.list(1)
        victim = min(accounts, key=lambda a: a.last_used_at).slot if len(accounts) >= 3 else None
        await repo.add(1, NewAccount(nik=nik, card="0001" + nik[-9:], name=f"NAMA {i}",
                                     phone="+6281234567890", label=f"L{i}"),
                       max_accounts=3, evict_slot=victim, now=float(i))
        sys.stdout.write(nik + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
