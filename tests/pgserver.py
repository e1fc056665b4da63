"""A PostgreSQL server for the tests.

Where it comes from, in this order:

1. ``KK_TEST_POSTGRES_URL`` (``postgresql://…``): a server someone else runs (CI service,
   a developer's own). The tests only create and drop their own databases on it.
2. A throwaway cluster from the installed binaries (Debian puts them in
   ``/usr/lib/postgresql/<version>/bin``; the newest is taken, or ``initdb``/``pg_ctl``
   on PATH): ``initdb`` in a temporary directory, ``pg_ctl start`` on a free loopback
   port with its socket in that directory, trust authentication for the user ``kk``,
   ``fsync=off``. PostgreSQL refuses to run as root, so when the tests run as root the
   cluster runs as the unprivileged ``postgres`` system user (``runuser``). At the end:
   ``pg_ctl stop -m immediate`` and the directory is removed.
3. Neither: :class:`PostgresUnavailable` with the reason; the fixture skips with it,
   unless ``KK_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_URL = "KK_TEST_POSTGRES_URL"
ENV_REQUIRE = "KK_REQUIRE_POSTGRES"
SYSTEM_USER = "postgres"
ROLE = "kk"


class PostgresUnavailable(Exception):
    """No PostgreSQL for the tests; ``str(exc)`` says why."""


def required() -> bool:
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in ("1", "true", "yes")


def find_binaries() -> Path | None:
    """The directory with ``initdb`` and ``pg_ctl``: the newest Debian version, else PATH."""
    versions = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for child in root.iterdir():
            if child.name.isdigit() and (child / "bin" / "pg_ctl").is_file():
                versions.append((int(child.name), child / "bin"))
    if versions:
        return max(versions)[1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def runuser() -> str | None:
    """runuser (util-linux), also when PATH lacks the sbin directories."""
    return shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster (or an outside server: then ``directory`` is None)."""

    url: str
    directory: Path | None = None
    bin_dir: Path | None = None
    run_as: str | None = None
    log: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as is None:
            return list(args)
        return [runuser() or "runuser", "-u", self.run_as, "--", *args]

    def stop(self) -> None:
        """Stop at once (no checkpoint: the data is thrown away) and remove the files."""
        if self._stopped or self.directory is None:
            return
        self._stopped = True
        assert self.bin_dir is not None
        subprocess.run(self._cmd(str(self.bin_dir / "pg_ctl"), "stop", "-m", "immediate",
                                 "-w", "-D", str(self.directory / "pgdata")),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def running(self) -> bool:
        if self.directory is None:
            return not self._stopped
        return (self.directory / "pgdata" / "postmaster.pid").exists()


def start_cluster() -> Cluster:
    """Start a throwaway cluster, or raise :class:`PostgresUnavailable`."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise PostgresUnavailable("no PostgreSQL binaries (initdb, pg_ctl) installed and "
                                  f"{ENV_URL} not set")
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PostgresUnavailable(f"running as root and there is no '{SYSTEM_USER}' "
                                      "user to run PostgreSQL as") from None
        if runuser() is None:
            raise PostgresUnavailable("running as root and runuser is not installed")
        run_as = SYSTEM_USER
    directory = Path(tempfile.mkdtemp(prefix="kk-pg-"))
    cluster = Cluster(url="", directory=directory, bin_dir=bin_dir, run_as=run_as,
                      log=directory / "server.log")
    try:
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        data = directory / "pgdata"
        init = subprocess.run(
            cluster._cmd(str(bin_dir / "initdb"), "-D", str(data), "-U", ROLE,
                         "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"),
            capture_output=True, text=True, timeout=120, check=False)
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
        for _attempt in range(3):  # another process may take the free port before us
            port = free_port()
            options = (f"-k {directory} -c listen_addresses=127.0.0.1 -p {port} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=200")
            start = subprocess.run(
                cluster._cmd(str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60",
                             "-D", str(data), "-l", str(cluster.log), "-o", options),
                capture_output=True, text=True, timeout=90, check=False)
            if start.returncode == 0:
                cluster.url = f"postgresql://{ROLE}@127.0.0.1:{port}/postgres"
                return cluster
        log = cluster.log
        tail = log.read_text(errors="replace")[-300:] if log is not None and log.exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()[-200:]} {tail}")
    except BaseException:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise


@contextlib.contextmanager
def postgres_server() -> Iterator[Cluster]:
    """The server the tests use (see the module text); stopped and removed at the end."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        if not re.match(r"postgres(ql)?://", url):
            raise PostgresUnavailable(f"{ENV_URL} is not a postgresql:// URL")
        yield Cluster(url=url)
        return
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name`` (query and credentials kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def wait_gone(cluster: Cluster, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.directory is not None and not cluster.directory.exists():
            return True
        time.sleep(0.05)
    return False
