"""Subprocess for the crash tests: the bot's own services doing the operations that must
survive a SIGKILL anywhere — add (with eviction), code issue and consumption, erasing a
chat, rotating the key — in a random loop until it is killed.

It journals to stdout ``BEGIN chat op`` before each step (it may commit without its line
below, if the kill falls right after the commit), and after each step has returned:
``ISSUED chat code`` before a code is checked, ``VERIFIED chat code`` after it was
accepted, ``ADDED chat nik``, ``FILLED chat`` once a chat holds a row in every table,
``ERASED chat`` after its erase, ``ROTATED`` after a key rotation.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import date
from pathlib import Path

from bot.config import Settings
from bot.services import Services, open_services
from storage.accounts_repo import NewAccount
from storage.keys import rotate_key
from storage.otp_repo import Caps
from storage.persistence import SqlitePersistence
from tests.dbsql import execute

CHATS = range(1, 6)
PHONE = "+6281234567890"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Codes:
    """Every code is new: ``NNNNNN`` from a counter that starts where the last run ended."""

    def __init__(self, start: int) -> None:
        self.next = start

    def __call__(self) -> str:
        self.next += 1
        return f"{self.next % 1_000_000:06d}"


async def open_worker(data_dir: Path, codes: Codes) -> Services:
    settings = Settings(_env_file=None, kk_data_dir=data_dir,  # type: ignore[call-arg]
                        jkn_backend="sandbox", otp_sender="console")

    class Quiet:
        async def send(self, phone: str, message: str) -> None:
            """The code is known to the worker already."""

        async def aclose(self) -> None:
            """Nothing to close."""

    svc = await open_services(settings, sms=Quiet(), code_factory=codes)
    unbounded = 10**9  # the caps have their own tests; here they would only stall the loop
    svc.otp.repo.caps = Caps(unbounded, unbounded, unbounded, unbounded, unbounded,
                             unbounded, unbounded)
    return svc


async def main(data_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    codes = Codes(seed * 1000)
    svc = await open_worker(data_dir, codes)
    say("READY")
    step = 0
    while True:
        step += 1
        chat = rng.choice(list(CHATS))
        op = rng.choice(("add", "add", "otp", "otp", "erase", "rotate"))
        say(f"BEGIN {chat} {op}" if op != "rotate" else "BEGIN rotate")
        if op == "add":
            nik = f"3174014506{rng.randrange(10**6):06d}"
            if await svc.accounts.find_by_nik(chat, nik) is not None:
                continue
            victim = await svc.accounts.eviction_candidate(chat)
            await svc.accounts.repo.add(
                chat, NewAccount(nik=nik, card="0001" + nik[-9:], name=f"NAMA {step}",
                                 phone=PHONE, label=f"L{step}", status={"s": step}),
                max_accounts=3, evict_slot=victim.slot if victim else None,
                now=float(seed * 10**6 + step))
            say(f"ADDED {chat} {nik}")
        elif op == "otp":
            nik = f"3273012304{rng.randrange(10**6):06d}"
            sent = await svc.otp.issue(chat, purpose="add", nik=nik, phone=PHONE,
                                       payload={"kind": "nik", "value": nik})
            assert sent.outcome.value == "sent"
            code = f"{codes.next % 1_000_000:06d}"
            say(f"ISSUED {chat} {code}")
            if (await svc.otp.verify(chat, code)).outcome.value == "ok":
                say(f"VERIFIED {chat} {code}")
        elif op == "erase":
            if not await svc.accounts.list(chat):
                continue
            await svc.consent.record(chat)
            await svc.otp.issue(chat, purpose="add", nik="3578016712010033", phone=PHONE,
                                payload={"kind": "nik", "value": "3578016712010033"})
            persistence = SqlitePersistence(svc.db)
            await persistence.update_conversation("tambah_kk", (chat,), 2)
            await persistence.update_chat_data(chat, {"bad_inputs": step})
            await svc.reminders.repo.claim(chat, date(2026, 1, 1 + step % 28), float(step))
            await execute(svc.db, ("INSERT OR IGNORE INTO user_data (user_id, data) "  # so that
                                   "VALUES (?, '{}')", (chat,)))  # every table holds a row
            notice = await svc.operator.repo.draft("Perawatan", float(step))
            await svc.operator.repo.confirm(notice)
            await svc.operator.repo.claim(notice, chat, float(step))  # notice_deliveries
            await svc.retention.repo.adopt("2026-01-05")  # chat_activity
            say(f"FILLED {chat}")
            await svc.db.erase_chat(chat)
            say(f"ERASED {chat}")
        elif rng.random() < 0.3:  # rotations are rarer
            await rotate_key(svc.db, svc.vault, data_dir / "master.key")
            await svc.close()
            say("ROTATED")
            svc = await open_worker(data_dir, codes)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
