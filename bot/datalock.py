"""Who may use ``KK_DATA_DIR`` at the same time (``fcntl.flock`` on lock files in it).

- ``instance.lock``: one process serves the database. ``run`` and ``rotate-key`` hold it
  exclusively, so a second bot, or a rotation under a live bot (which would leave rows the
  bot writes under the old key unreadable), is refused.
- ``key.lock``: the master key must not change under a reader. ``rotate-key`` holds it
  exclusively; ``backup`` and ``remind`` hold it shared, so they run beside a live bot
  (SQLite's online backup API and WAL readers are safe with a concurrent writer) but never
  during a rotation.

The kernel releases a flock when its process dies, even by SIGKILL, so a crash never
leaves the directory locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

INSTANCE = "instance.lock"
KEY = "key.lock"


class DataDirBusy(Exception):
    """Another process holds a lock this command needs; ``str(exc)`` is the one line."""


def make_private(data_dir: Path) -> bool:
    """Tighten ``KK_DATA_DIR`` to 0700 if other users may read or enter it (a directory
    that existed before the bot, e.g. made 0755 by ``mkdir``); logged once, when it
    happens. Returns whether it had to."""
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if not mode & 0o077:
        return False
    try:
        os.chmod(data_dir, 0o700)
    except OSError as exc:  # not ours: refuse, as ssh does with an open key file
        raise DataDirBusy(f"{data_dir} is open to other users (mode {mode:04o}) and cannot "
                          f"be made private ({exc.strerror}); nothing was changed") from None
    _LOGGER.warning("KK_DATA_DIR was open to other users (mode %04o); tightened to 0700",
                    mode)
    return True


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def hold(data_dir: Path, *, exclusive: tuple[str, ...] = (), shared: tuple[str, ...] = ()
         ) -> Iterator[None]:
    """Take every lock without waiting, or raise :class:`DataDirBusy` having taken none."""
    held: list[int] = []
    try:
        for name, mode in [*((n, fcntl.LOCK_EX) for n in exclusive),
                           *((n, fcntl.LOCK_SH) for n in shared)]:
            fd = _open(data_dir / name)
            held.append(fd)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataDirBusy(
                    f"{data_dir} is in use by another Asisten KK process ({_who(name)}); "
                    "nothing was changed") from None
        yield
    finally:
        for fd in held:
            os.close(fd)  # closing the descriptor releases its lock


def _who(name: str) -> str:
    return ("a running bot or a key rotation" if name == INSTANCE
            else "a key rotation, a backup or a reminder round")
