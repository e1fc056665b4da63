"""Deterministic crash points (issue 19, class 9).

The random kills of tests/test_crash.py land where they land; here a child process dies
(``os._exit``: no rollback, no close, no flush, as under SIGKILL) at one exact point that
matters, and the test then opens the data directory the way the bot starts and checks
that nothing saved is lost, nothing is half done, and nothing works twice:

- enrolment with an eviction: right after its commit, before the WAL is truncated;
- a code's consumption: right after its commit, before the flow reads the payload;
- an erase: right after its commit, before the WAL is truncated;
- a migration: right before a step's commit, and right after it;
- a key rotation: right after its commit, before anything else (the points between its
  key-file steps are tests/test_storage.py's).

    python tests/test_crash_points.py SCENARIO DATA_DIR   # the child (run by the tests)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.services import Services, open_services  # noqa: E402
from storage.db import SCHEMA_VERSION  # noqa: E402
from storage.otp_repo import VerifyOutcome  # noqa: E402
from tests.conftest import NIK_A, NIK_B, NIK_C, NIK_D, PHONE, CodeBook, Phone, new  # noqa: E402

CHAT = 4242
CRASHED = 9


def _settings(data_dir: Path) -> Settings:
    return Settings(_env_file=None, kk_data_dir=data_dir,  # type: ignore[call-arg]
                    jkn_backend="sandbox", otp_sender="console")


async def _open(data_dir: Path) -> Services:
    codes = CodeBook()
    codes.queue = ["123456"] * 10
    return await open_services(_settings(data_dir), sms=Phone(), code_factory=codes)


def _die(*_: Any, **__: Any) -> None:
    os._exit(CRASHED)


def _note(data_dir: Path, **facts: Any) -> None:
    (data_dir / "facts.json").write_text(json.dumps(facts))


# -- the child --------------------------------------------------------------------------

async def _child(scenario: str, data_dir: Path) -> None:
    if scenario.startswith("migration"):
        await _migration_child(scenario, data_dir)
        return
    svc = await _open(data_dir)
    repo = svc.accounts.repo
    for i, nik in enumerate((NIK_A, NIK_B, NIK_C)):
        await repo.add(CHAT, new(nik, f"L{i}"), max_accounts=3, now=1.0 + i)
    oldest = (await repo.list(CHAT))[0]
    with sqlite3.connect(svc.settings.database_path) as raw:
        blob = raw.execute("SELECT nik_ct FROM accounts WHERE slot = ?",
                           (oldest.slot,)).fetchone()[0]
    _note(data_dir, evicted=oldest.slot, evicted_ct=base64.b64encode(blob).decode())
    if scenario == "enrol-after-commit":
        await svc.otp.issue(CHAT, purpose="add", nik=NIK_D, phone=PHONE,
                            payload={"kind": "nik", "value": NIK_D})
        assert (await svc.otp.verify(CHAT, "123456")).outcome is VerifyOutcome.OK
        import storage.db as db_module

        db_module.checkpoint_truncate = _die  # type: ignore[assignment]
        await repo.add(CHAT, new(NIK_D, "Baru"), max_accounts=3, evict_slot=oldest.slot,
                       now=10.0, consume_challenge=True)
    elif scenario == "code-after-commit":
        await svc.otp.issue(CHAT, purpose="add", nik=NIK_D, phone=PHONE,
                            payload={"kind": "nik", "value": NIK_D})
        import storage.otp_repo as otp_module

        class Dying:
            @staticmethod
            def loads(text: Any) -> Any:
                os._exit(CRASHED)

            dumps = staticmethod(json.dumps)

        otp_module.json = Dying  # type: ignore[assignment]
        await svc.otp.verify(CHAT, "123456")
    elif scenario == "erase-after-commit":
        import storage.db as db_module

        db_module.checkpoint_truncate = _die  # type: ignore[assignment]
        await svc.db.erase_chat(CHAT)
    elif scenario == "rotation-after-commit":
        from storage.keys import rotate_key

        inner = svc.db.run

        async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
            await inner(fn, *args, **kwargs)  # the rotation's one transaction commits
            os._exit(CRASHED)

        svc.db.run = run  # type: ignore[method-assign]
        await rotate_key(svc.db, svc.vault, svc.settings.master_key_path)
    raise SystemExit("the crash point was not reached")


async def _migration_child(scenario: str, data_dir: Path) -> None:
    """Die at the commit of migration step 3 (before it, or after it)."""
    import contextlib
    import sqlite3 as sqlite
    from collections.abc import Iterator

    import storage.db as db_module

    commits = 0
    inner = db_module.immediate

    @contextlib.contextmanager
    def immediate(conn: sqlite.Connection) -> Iterator[sqlite.Connection]:
        nonlocal commits
        with inner(conn):
            yield conn
            if commits == 2 and scenario == "migration-before-commit":
                os._exit(CRASHED)  # step 3's statements ran, its COMMIT did not
        commits += 1
        if commits == 3 and scenario == "migration-after-commit":
            os._exit(CRASHED)  # right after step 3's COMMIT

    db_module.immediate = immediate  # type: ignore[assignment]
    await _open(data_dir)
    raise SystemExit("the crash point was not reached")


# -- the tests --------------------------------------------------------------------------

def _crash(scenario: str, data_dir: Path) -> dict[str, Any]:
    data_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KK_", "TELEGRAM_"))}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, __file__, scenario, str(data_dir)],
                            capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == CRASHED, result.stderr[-2000:]
    facts = data_dir / "facts.json"
    return json.loads(facts.read_text()) if facts.exists() else {}


def _files(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("kk.sqlite3*")))


async def test_a_crash_right_after_an_enrolment_commit_keeps_it_whole(tmp_path: Path) -> None:
    facts = _crash("enrol-after-commit", tmp_path / "data")
    svc = await _open(tmp_path / "data")
    try:
        accounts = await svc.accounts.list(CHAT)
        assert sorted(a.nik for a in accounts) == sorted([NIK_B, NIK_C, NIK_D])
        assert facts["evicted"] not in [a.slot for a in accounts]
        assert [a.label for a in accounts if a.active] == ["Baru"]
        assert await svc.otp.challenge(CHAT) is None, "the accepted code went with it"
        assert base64.b64decode(facts["evicted_ct"]) not in _files(tmp_path / "data"), \
            "no copy of the evicted account is left in the files after the start"
    finally:
        await svc.close()


async def test_a_crash_right_after_a_code_is_accepted_leaves_it_used(tmp_path: Path) -> None:
    _crash("code-after-commit", tmp_path / "data")
    svc = await _open(tmp_path / "data")
    try:
        outcome = (await svc.otp.verify(CHAT, "123456")).outcome
        assert outcome in (VerifyOutcome.USED, VerifyOutcome.NONE), outcome
        assert outcome is not VerifyOutcome.OK, "a code never works twice"
        assert len(await svc.accounts.list(CHAT)) == 3
    finally:
        await svc.close()


async def test_a_crash_right_after_an_erase_commit_leaves_nothing(tmp_path: Path) -> None:
    facts = _crash("erase-after-commit", tmp_path / "data")
    svc = await _open(tmp_path / "data")
    try:
        assert await svc.accounts.list(CHAT) == []
        assert base64.b64decode(facts["evicted_ct"]) not in _files(tmp_path / "data"), \
            "no byte of the erased chat is left in the files after the start"
    finally:
        await svc.close()


async def test_a_crash_right_after_a_rotation_commit_keeps_every_row_readable(
        tmp_path: Path) -> None:
    _crash("rotation-after-commit", tmp_path / "data")
    assert (tmp_path / "data" / "master.key.new").exists(), "the new key waited on disk"
    svc = await _open(tmp_path / "data")
    try:
        accounts = await svc.accounts.list(CHAT)
        assert sorted(a.nik for a in accounts) == sorted([NIK_A, NIK_B, NIK_C])
        assert {a.label for a in accounts} == {"L0", "L1", "L2"}
    finally:
        await svc.close()


@pytest.mark.parametrize("scenario", ["migration-before-commit", "migration-after-commit"])
async def test_a_crash_at_a_migration_commit_is_finished_at_the_next_start(
        tmp_path: Path, scenario: str) -> None:
    data_dir = tmp_path / "data"
    _crash(scenario, data_dir)
    db_path = data_dir / "kk.sqlite3"
    with sqlite3.connect(db_path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
    assert version == (2 if scenario == "migration-before-commit" else 3)
    svc = await _open(data_dir)
    try:
        assert await svc.db.user_version() == SCHEMA_VERSION
        await svc.accounts.repo.add(CHAT, new(NIK_A), max_accounts=3, now=1.0)
        assert [a.nik for a in await svc.accounts.list(CHAT)] == [NIK_A]
    finally:
        await svc.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], Path(sys.argv[2])))
