"""Operations in process: the JSON log format, update ids in the log, the unknown-setting
warning, HEALTH_LISTEN, the backup taken before a migration, a newer schema refused, the
lock file in step with pyproject.toml, and the deployment files."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import sqlite3
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from bot.config import load_settings, unknown_settings
from bot.logs import JsonFormatter, RedactingFilter, Redactor
from bot.services import open_services
from storage.crypto import Vault, generate_master_key
from storage.db import MIGRATIONS, SCHEMA_VERSION, DatabaseError
from storage.keys import KEY_CHECK, write_key_file
from tests.conftest import NIK_A, make_settings

ROOT = Path(__file__).resolve().parent.parent


def test_json_log_lines_parse_with_time_offset_and_one_exception_field() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(Redactor()))
    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("update %d handled for %s", 1734512890, NIK_A)
        try:
            raise ValueError(f"bad {NIK_A}")
        except ValueError:
            logger.exception("it failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "test.jsonlog"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", first["time"])
    assert first["message"] == "update 1734512890 handled for [nik]", "update ids stay readable"
    assert second["message"] == "it failed"
    assert "Traceback" in second["exception"] and "ValueError: bad [nik]" in \
        second["exception"]
    assert NIK_A not in stream.getvalue()


@pytest.mark.parametrize(("text", "shown"), [
    ("update 1234567890 took 3 ms", "update 1234567890 took 3 ms"),
    ("update_id=987654321", "update_id=987654321"),
    ("chat 1234567890", "chat [number]"),
    ("update 081234567890", "update [phone]"),
    ("update 3174014506900011", "update [nik]"),
])
def test_update_ids_are_not_masked_but_identifiers_still_are(text: str, shown: str) -> None:
    assert Redactor()(text) == shown


def test_unknown_settings_that_look_like_ours_get_a_did_you_mean(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SMS_MAX_PER_HOR=5\nREMINDER_TIME=07:00\n")
    lines = unknown_settings(str(env_file), environ={
        "JKN_BAKCEND": "vclaim", "JKN_BACKEND": "sandbox", "PATH": "/bin",
        "TELEGRAM_ZZZ": "x", "HOME": "/root"})
    assert lines == [
        "JKN_BAKCEND is not a setting; did you mean JKN_BACKEND?",
        "SMS_MAX_PER_HOR is not a setting; did you mean SMS_MAX_PER_HOUR?",
        "TELEGRAM_ZZZ is not a setting (ignored)",
    ]


def test_health_listen_default_empty_and_off(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HEALTH_LISTEN",):
        monkeypatch.delenv(name, raising=False)
    assert load_settings(env_file=None).health_address == ("127.0.0.1", 9464)
    monkeypatch.setenv("HEALTH_LISTEN", "")
    assert load_settings(env_file=None).health_address is None
    monkeypatch.setenv("HEALTH_LISTEN", "off")
    assert load_settings(env_file=None).health_address is None
    monkeypatch.delenv("HEALTH_LISTEN")
    env_file = tmp_path / ".env"
    env_file.write_text("HEALTH_LISTEN=\n")
    assert load_settings(env_file=str(env_file)).health_address is None
    monkeypatch.setenv("HEALTH_LISTEN", "[::1]:9000")
    assert load_settings(env_file=None).health_address == ("::1", 9000)


def _old_database(data_dir: Path, schema: int) -> bytes:
    """A database of an older release (migrations up to ``schema``) with its key."""
    data_dir.mkdir(mode=0o700)
    raw = generate_master_key()
    write_key_file(data_dir / "master.key", raw)
    conn = sqlite3.connect(data_dir / "kk.sqlite3")
    for number in range(schema):
        conn.executescript(MIGRATIONS[number])
    conn.execute(f"PRAGMA user_version = {schema}")
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                 (KEY_CHECK, Vault(raw).check_value()))
    conn.execute("INSERT INTO consent (chat_id, consented_at) VALUES (42, 1.0)")
    conn.commit()
    conn.close()
    return raw


async def test_a_migration_is_preceded_by_a_backup_of_the_old_schema(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _old_database(data_dir, SCHEMA_VERSION - 1)
    services = await open_services(make_settings(data_dir))
    try:
        assert await services.db.user_version() == SCHEMA_VERSION
    finally:
        await services.close()
    copies = list((data_dir / "backups").glob("*.sqlite3"))
    assert len(copies) == 1
    assert copies[0].name.startswith(f"kk-schema{SCHEMA_VERSION - 1}-before-migration-")
    copy = sqlite3.connect(copies[0])
    try:
        assert copy.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1
        assert copy.execute("SELECT chat_id FROM consent").fetchall() == [(42,)]
    finally:
        copy.close()
    again = await open_services(make_settings(data_dir))  # current: no second copy
    await again.close()
    assert len(list((data_dir / "backups").glob("*.sqlite3"))) == 1


async def test_a_new_database_and_a_newer_schema_take_no_backup(tmp_path: Path) -> None:
    fresh = await open_services(make_settings(tmp_path / "fresh"))
    await fresh.close()
    assert not (tmp_path / "fresh" / "backups").exists()
    data_dir = tmp_path / "data"
    _old_database(data_dir, SCHEMA_VERSION)
    conn = sqlite3.connect(data_dir / "kk.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this program"):
        await open_services(make_settings(data_dir))
    assert not (data_dir / "backups").exists()


def _lock_pins() -> dict[str, tuple[str, list[str]]]:
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.\-]+)==([^\s\\]+)", block)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = (
                match.group(2), re.findall(r"--hash=sha256:[0-9a-f]{64}", block))
    return pins


def test_the_lock_file_pins_every_runtime_dependency_with_hashes_and_no_dev_tool() -> None:
    """`make lock` writes requirements.lock from pyproject.toml; this keeps them in step."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _lock_pins()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"requirements.lock pins {name}=={version}, outside {requirement.specifier}: " \
            "run `make lock`"
        assert hashes, name
    for tool in ("pytest", "mypy", "ruff", "hypothesis", "pip-tools"):
        assert tool not in pins, f"{tool} is a dev tool; it must not be in the lock"
    assert all(hashes for _, hashes in pins.values())


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = (ROOT / "deploy" / "asisten-kk.service").read_text()
    for needed in ("User=asisten-kk", "StateDirectory=asisten-kk",
                   "RestartPreventExitStatus=2", "WatchdogSec=", "Type=notify",
                   "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert needed in unit, needed
    # verify checks that ExecStart exists: stand the installed program in at its path
    program = re.search(r"^ExecStart=(\S+)", unit, re.MULTILINE)
    assert program is not None
    fake = tmp_path / "asisten-kk"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    def verify(text: str) -> tuple[int, list[str]]:
        copy = tmp_path / "asisten-kk.service"
        copy.write_text(text.replace(program.group(1), str(fake)))
        result = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True,
                                timeout=60, check=False)
        output = (result.stderr + result.stdout).splitlines()
        return result.returncode, [line for line in output if copy.name in line
                                   or "Unknown" in line or "Failed" in line]

    # the tool reports what is wrong (it exits 0 on an unknown key): prove it does here
    _, broken = verify(unit.replace("WatchdogSec=", "WatchdgSec="))
    if not broken:
        pytest.skip("systemd-analyze verify does not report problems on this machine")
    status, problems = verify(unit)
    assert status == 0 and problems == []


def test_the_dockerfile_runs_unprivileged_with_a_volume_and_a_healthcheck() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE)
    assert "VOLUME" in dockerfile and "HEALTHCHECK" in dockerfile
    assert "requirements.lock" in dockerfile and "--require-hashes" in dockerfile
    for example in ("Caddyfile", "nginx.conf"):
        text = (ROOT / "deploy" / example).read_text()
        assert "/telegram" in text and "X-Telegram-Bot-Api-Secret-Token" in text, example


def test_the_key_from_a_credential_file_and_its_source_in_the_startup_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.runner import key_custody_warning, startup_line
    from storage.keys import encode_key

    monkeypatch.delenv("KK_MASTER_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    plain = load_settings(env_file=None, kk_data_dir=tmp_path / "data")
    assert "key from key file" in startup_line(plain) and "master.key" in startup_line(plain)
    assert key_custody_warning(plain) is not None
    credentials = tmp_path / "creds"
    credentials.mkdir()
    raw = generate_master_key()
    (credentials / "master.key").write_text(encode_key(raw) + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(env_file=None, kk_data_dir=tmp_path / "data")
    assert settings.env_master_key == encode_key(raw)
    assert f"key from credential {credentials / 'master.key'}" in startup_line(settings)
    assert key_custody_warning(settings) is None
    assert encode_key(raw) not in startup_line(settings)
    assert encode_key(raw) in settings.secret_values(), "the redactor masks it"
    (credentials / "master.key").write_text("c2hvcnQ=\n")
    with pytest.raises(Exception, match="KK_MASTER_KEY"):
        load_settings(env_file=None, kk_data_dir=tmp_path / "data")
