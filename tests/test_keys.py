"""Keys and the data directory: caps across a rotation, retired keys, a private directory
(issue 18, items 4, 5 and 9)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.process import cli


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
