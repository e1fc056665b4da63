"""Keys and the data directory: caps across a rotation, retired keys, a private directory
(issue 18, items 4, 5 and 9)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.services import Services
from storage.keys import backup_key_check, opens, retired_keys, rotate_key
from tests.conftest import (
    NIK_A,
    NIK_B,
    PHONE,
    FakeClock,
    Phone,
    ServicesFactory,
    restart,
    start_bot,
)
from tests.conftest import new as new_account
from tests.dbsql import query_one
from tests.process import bot_env, cli
from tests.test_trust import guess_as_much_as_allowed, strangers


async def test_a_key_rotation_gives_nobody_a_fresh_allowance(
        services_factory: ServicesFactory, phone: Phone, clock: FakeClock, data_dir: Path
        ) -> None:
    """Ten wrong codes at one NIK, `rotate-key`, and the eleventh is refused: rate records
    are keyed by a rate key the rotation carries over (before: all deleted, 20 guesses)."""
    svc: Services = await services_factory()
    harness = await start_bot(svc)
    before = 0
    try:
        _, before = await guess_as_much_as_allowed(await strangers(harness, 3), NIK_A, phone,
                                                   clock, hours=1)
        assert before == 10

        async def rotate(down: Services) -> None:
            await rotate_key(down.db, down.vault, data_dir / "master.key")

        old_key = svc.vault.key_id
        harness, svc = await restart(harness, svc, services_factory, rotate)
        assert svc.vault.key_id != old_key, "the bot runs under the new key"
        again = [harness.chat(5000 + i) for i in range(3)]  # the same three, and two more
        again += await strangers(harness, 2, first=7000)
        _, after = await guess_as_much_as_allowed(again, NIK_A, phone, clock, hours=1)
    finally:
        await harness.stop()
    assert before + after == 10, f"{before} + {after} guesses at one NIK across a rotation"
    assert "Kode OTP tidak bisa dikirim" in again[-1].last_text


def test_an_existing_open_data_dir_is_tightened_to_0700_and_logged_once(tmp_path: Path
                                                                         ) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # whatever the umask made of it
    first = cli(tmp_path, "backup", str(tmp_path / "copy.sqlite3"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    said = [line for line in first.stderr.splitlines() if "tightened to 0700" in line]
    assert len(said) == 1 and "0755" in said[0], first.stderr
    again = cli(tmp_path, "backup", str(tmp_path / "copy.sqlite3"))
    assert "tightened" not in again.stderr, "logged once: when it was open, not every start"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def key_of(path: Path) -> str:
    return path.read_text(encoding="ascii")


async def test_every_retired_key_is_kept_named_and_forgotten_only_when_asked(
        services_factory: ServicesFactory, data_dir: Path, tmp_path: Path) -> None:
    """Two rotations keep both old keys (a second one used to overwrite `master.key.old`),
    `rotate-key` says which key opens which backups, and `forget-keys` removes a retired
    key only once no backup the operator keeps needs it."""
    svc: Services = await services_factory()
    await svc.accounts.repo.add(1, new_account(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    await svc.close()
    keys_used, backups, said = [], [], []
    for n in (1, 2):
        keys_used.append(key_of(data_dir / "master.key"))
        backups.append(tmp_path / f"backup{n}.sqlite3")
        assert cli(tmp_path, "backup", str(backups[-1])).returncode == 0
        rotated = cli(tmp_path, "rotate-key")
        assert rotated.returncode == 0, rotated.stderr
        said.append(rotated.stderr)
    retired = retired_keys(data_dir / "master.key")
    assert [key_of(p) for p in retired] == keys_used, "each old key kept, none overwritten"
    assert not list(data_dir.glob("master.key.old")) and not list(data_dir.glob("*.new"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in retired)
    for key_file, backup in zip(retired, backups, strict=True):
        check = backup_key_check(backup)
        assert check is not None and opens(key_file, check), "the key opens its backup"
        assert f"{key_file} opens backups made from" in said[-1]
    assert f"{data_dir / 'master.key'} opens the database" in said[-1]
    assert "forget-keys" in said[-1]

    refused = cli(tmp_path, "forget-keys")
    assert refused.returncode == 2 and "--all" in refused.stderr
    assert cli(tmp_path, "forget-keys", str(tmp_path / "nope.sqlite3")).returncode == 2
    assert retired_keys(data_dir / "master.key") == retired, "a refusal removes nothing"
    kept = cli(tmp_path, "forget-keys", str(backups[1]))
    assert kept.returncode == 0, kept.stderr
    assert retired_keys(data_dir / "master.key") == [retired[1]], "backup 2 still needs its key"
    assert f"removed {retired[0]}" in kept.stderr and f"kept {retired[1]}" in kept.stderr
    everything = cli(tmp_path, "forget-keys", "--all")
    assert everything.returncode == 0 and retired_keys(data_dir / "master.key") == []
    assert cli(tmp_path, "backup", str(tmp_path / "after.sqlite3")).returncode == 0, \
        "the current key is never touched"


@pytest.mark.parametrize("point", ["before-commit", "after-commit", "after-retire", "none"])
async def test_a_rotation_killed_at_any_point_leaves_a_key_that_opens_everything(
        point: str, services_factory: ServicesFactory, data_dir: Path, tmp_path: Path
        ) -> None:
    svc: Services = await services_factory()
    await svc.accounts.repo.add(1, new_account(NIK_A, "Ibu"), max_accounts=3, now=1.0)
    await svc.otp.issue(2, purpose="add", nik=NIK_B, phone=PHONE, payload={})
    await svc.otp.verify(2, "000000" if svc.sms.last_code() != "000000" else "111111")
    subject = svc.otp.keys(2, NIK_B, PHONE).subject
    await svc.close()
    old = key_of(data_dir / "master.key")
    died = subprocess.run([sys.executable, "-m", "tests.rotation_crash", point],
                          cwd=tmp_path, env=bot_env(tmp_path), capture_output=True,
                          text=True, timeout=60, check=False)
    assert died.returncode == (0 if point == "none" else 9), died.stderr
    reopened: Services = await services_factory()
    assert [a.label for a in await reopened.accounts.list(1)] == ["Ibu"]
    assert not (data_dir / "master.key.new").exists(), "no unused key left lying next to data"
    retired = [key_of(p) for p in retired_keys(data_dir / "master.key")]
    if point == "before-commit":
        assert key_of(data_dir / "master.key") == old and retired == []
    else:
        assert key_of(data_dir / "master.key") != old and retired == [old], retired
    row = await query_one(
        reopened.db, "SELECT count(*) AS n FROM rate_events WHERE kind = 'wrong' AND "
        "subject_key = ?", reopened.otp.keys(2, NIK_B, PHONE).subject)
    assert row is not None and row["n"] == 1, "the wrong code still counts against them"
    assert reopened.otp.keys(2, NIK_B, PHONE).subject == subject


async def test_a_master_key_old_of_an_earlier_version_becomes_a_named_retired_key(
        services_factory: ServicesFactory, data_dir: Path) -> None:
    svc: Services = await services_factory()
    await svc.close()
    legacy = data_dir / "master.key.old"
    legacy.write_text("b2xkIGtleSBvZiBhbiBlYXJsaWVyIHJvdGF0aW9uISE=\n")
    legacy.chmod(0o600)
    await services_factory()
    assert not legacy.exists()
    assert [key_of(p) for p in retired_keys(data_dir / "master.key")] == [
        "b2xkIGtleSBvZiBhbiBlYXJsaWVyIHJvdGF0aW9uISE=\n"], "forget-keys will see it"
