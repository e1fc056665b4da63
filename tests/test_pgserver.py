"""The throwaway PostgreSQL the tests use (tests/pgserver.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests import pgserver

ROOT = Path(__file__).resolve().parent.parent


def test_fresh_database_takes_a_table(pg_db_url: str) -> None:
    with psycopg.connect(pg_db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, body bytea NOT NULL)")
        conn.execute("INSERT INTO t VALUES (%s, %s)", (1, b"\x00\xff"))
        rows = conn.execute("SELECT id, body FROM t").fetchall()
        name = conn.execute("SELECT current_database()").fetchone()
    assert rows == [(1, b"\x00\xff")]
    assert name is not None and name[0].startswith("kk_test_")


def test_each_test_has_its_own_database(pg_db_url: str, pg_url: str) -> None:
    with psycopg.connect(pg_db_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                              ).fetchone()
    assert tables == (0,)  # the table of the test above is not here
    assert pg_db_url != pg_url


def test_cluster_is_gone_after() -> None:
    """A cluster of its own, from the installed binaries: it serves, then stop() leaves
    no server and no files behind."""
    if os.environ.get(pgserver.ENV_URL) or pgserver.find_binaries() is None:
        pytest.skip("no local PostgreSQL binaries to start a cluster from")
    cluster = pgserver.start_cluster()
    try:
        assert cluster.directory is not None and cluster.running
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE probe (x int)")
            user = conn.execute("SELECT current_user").fetchone()
        assert user == ("kk",)
    finally:
        cluster.stop()
    assert not cluster.directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url, connect_timeout=2).close()


def test_required_turns_the_skip_into_a_failure(tmp_path: Path) -> None:
    """With no PostgreSQL to be had, the fixture skips with the reason, and fails under
    KK_REQUIRE_POSTGRES=1 (what .ci/run sets)."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import pg_server, pg_url\n")
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        from tests import pgserver
        pgserver.find_binaries = lambda: None
        def test_needs(pg_url):
            assert pg_url
    """))
    env = {k: v for k, v in os.environ.items()
           if k not in (pgserver.ENV_URL, pgserver.ENV_REQUIRE)}
    env["PYTHONPATH"] = str(ROOT)
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q",
            "--rootdir", str(tmp_path), str(tmp_path / "test_x.py")]
    skipped = subprocess.run(base, capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=120, check=False)
    assert skipped.returncode == 0, skipped.stdout
    assert "1 skipped" in skipped.stdout
    assert "PostgreSQL unavailable: no PostgreSQL binaries" in skipped.stdout
    env[pgserver.ENV_REQUIRE] = "1"
    failed = subprocess.run(base, capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120, check=False)
    assert failed.returncode == 1, failed.stdout
    assert "PostgreSQL required" in failed.stdout
