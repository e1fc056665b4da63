"""`python -m bot copy-store` (issue 24): SQLite -> PostgreSQL -> SQLite gives the same
rows, every ciphertext decrypts, the source is untouched; a busy or non-empty side is
refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from bot.config import decode_master_key
from bot.leader import LOCK_KEY
from bot.services import Services
from storage.copystore import CopyRefused, _Side, from_postgres, to_postgres
from storage.keys import encode_key
from tests.conftest import ServicesFactory, fill_every_table
from tests.process import acli


async def _filled(services_factory: ServicesFactory, chats: int = 5) -> Services:
    svc: Services = await services_factory()
    for chat in range(1, chats + 1):
        await fill_every_table(svc, chat)
    return svc


def _digests(path: Path) -> dict[str, tuple[int, str]]:
    side = _Side(sqlite_path=path)
    side.open(readonly=True)
    try:
        return {t: side.digest(t, side.columns(t)) for t in side.tables()}
    finally:
        side.close()


async def test_a_round_trip_keeps_every_row_and_leaves_the_source_untouched(
        services_factory: ServicesFactory, data_dir: Path, pg_db_url: str,
        tmp_path: Path) -> None:
    svc = await _filled(services_factory)
    await svc.close()
    source = data_dir / "kk.sqlite3"
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    key = (data_dir / "master.key").read_text().strip()
    result = await acli(tmp_path, "copy-store", "--to", pg_db_url, KK_MASTER_KEY=key)
    assert result.returncode == 0, result.stderr
    assert "ciphertexts decrypted" in result.stderr
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before, "source unchanged"
    with psycopg.connect(pg_db_url) as conn:
        row = conn.execute("SELECT count(*) FROM accounts").fetchone()
    assert row is not None and row[0] == 10
    # back again, into a fresh data directory (the rollback)
    back = tmp_path / "back"
    back.mkdir()
    result = await acli(tmp_path, "copy-store", "--from", pg_db_url, KK_MASTER_KEY=key,
                        KK_DATA_DIR=str(back))
    assert result.returncode == 0, result.stderr
    assert _digests(back / "kk.sqlite3") == _digests(source)


async def test_a_non_empty_target_or_a_running_bot_is_refused(
        services_factory: ServicesFactory, data_dir: Path, pg_db_url: str) -> None:
    svc = await _filled(services_factory, 1)
    await svc.close()
    raw_key = (data_dir / "master.key").read_text().strip()
    raw = decode_master_key(raw_key)
    await to_postgres(data_dir / "kk.sqlite3", pg_db_url, raw)
    with pytest.raises(CopyRefused, match="not empty"):
        await to_postgres(data_dir / "kk.sqlite3", pg_db_url, raw)
    with pytest.raises(CopyRefused, match="exists"):
        await from_postgres(pg_db_url, data_dir / "kk.sqlite3", raw)
    with psycopg.connect(pg_db_url, autocommit=True) as leader:
        leader.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(CopyRefused, match="running"):
            await from_postgres(pg_db_url, data_dir / "other.sqlite3", raw)
    assert not (data_dir / "other.sqlite3").exists()
    assert encode_key(raw) == raw_key


async def test_a_ciphertext_that_does_not_decrypt_fails_the_copy(
        services_factory: ServicesFactory, data_dir: Path, pg_db_url: str) -> None:
    """Every ciphertext is decrypted on the target: two accounts' NIK ciphertexts swapped
    in the source (each still valid bytes, bound to the other row) fail the copy."""
    import sqlite3

    svc = await _filled(services_factory, 1)
    await svc.close()
    raw = decode_master_key((data_dir / "master.key").read_text().strip())
    conn = sqlite3.connect(data_dir / "kk.sqlite3")
    with conn:
        (a, ct_a), (b, ct_b) = conn.execute("SELECT slot, nik_ct FROM accounts").fetchall()
        conn.execute("UPDATE accounts SET nik_ct = ? WHERE slot = ?", (ct_b, a))
        conn.execute("UPDATE accounts SET nik_ct = ? WHERE slot = ?", (ct_a, b))
    conn.close()
    with pytest.raises(CopyRefused, match="does not decrypt"):
        await to_postgres(data_dir / "kk.sqlite3", pg_db_url, raw)
