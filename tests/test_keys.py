"""Keys and the data directory: caps across a rotation, retired keys, a private directory
(issue 18, items 4, 5 and 9)."""

from __future__ import annotations

import stat
from pathlib import Path

from bot.services import Services
from storage.keys import rotate_key
from tests.conftest import (
    NIK_A,
    FakeClock,
    Phone,
    ServicesFactory,
    restart,
    start_bot,
)
from tests.process import cli
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
