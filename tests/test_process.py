"""The bot as a process: `python -m bot run` against an HTTP Bot API double, SIGTERM,
bad settings, the CLI commands and the demo through a pipe."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.devtools.emulator import BotApiEmulator
from tests.botapi_http import HttpBotApi
from tests.conftest import NIK_A, NIK_B
from tests.process import TOKEN, RunningBot, bot_env, cli, http_env, spawn_bot, wait_for


async def test_run_answers_a_whole_session_over_http_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    api = HttpBotApi(emulator)
    await api.start()
    proc = await spawn_bot(tmp_path, http_env(tmp_path, api, LOG_LEVEL="DEBUG"))
    chat_id = 4242
    emulator.open_chat(chat_id, title="Dewi")
    emulator.open_chat(-1009, chat_type="supergroup", title="Posyandu")

    def said(text: str) -> Callable[[], bool]:
        return lambda: any(text in m.text for m in emulator.bot_messages(chat_id))

    def newest() -> str:
        return emulator.bot_messages(chat_id)[-1].text

    try:
        await wait_for(lambda: emulator.calls.get("getUpdates", 0) > 0, "polling to start")
        assert emulator.commands[0]["command"] == "start"
        emulator.user_sends(chat_id, "/start")
        await wait_for(said("Saya membantu"), "the greeting")
        greeting = emulator.bot_messages(chat_id)[-1]
        assert [label for label, _ in greeting.buttons] == ["Saya setuju", "Tidak"]
        query = emulator.user_taps(chat_id, greeting.message_id, greeting.buttons[0][1])
        await wait_for(said("persetujuan Anda tercatat"), "the consent reply")
        assert emulator.queries[query]["answered"]
        emulator.user_sends(chat_id, "/bantuan")
        await wait_for(said("Perintah Asisten KK"), "the command list")
        emulator.user_sends(-1009, "/start", user_id=55)
        await wait_for(lambda: bool(emulator.bot_messages(-1009)), "the group answer")
        assert "hanya bekerja di chat pribadi" in emulator.bot_messages(-1009)[0].text

        emulator.user_sends(chat_id, "/tambah_kk")
        await wait_for(said("Kirim NIK"), "the NIK question")
        nik_message = emulator.user_sends(chat_id, NIK_A)
        await wait_for(lambda: bool(api.sms), "the SMS at the gateway")
        await wait_for(said("Kode OTP 6 angka sudah dikirim"), "the OTP notice")
        assert nik_message.deleted
        sms = api.sms[-1]
        assert sms["to"].startswith("+628") and sms["to"][-4:] in newest()
        code = re.search(r"\b([0-9]{6})\b", sms["message"])
        assert code is not None
        emulator.user_sends(chat_id, code.group(1))
        await wait_for(said("Kode benar"), "the label question")
        emulator.user_sends(chat_id, "KK Saya")
        await wait_for(said("Tersimpan"), "the saved account")
        emulator.user_sends(chat_id, "/status")
        await wait_for(lambda: "Faskes pertama" in newest(), "the status card")
        assert emulator.errors == [], emulator.errors
        assert emulator.unanswered_queries() == []
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr_bytes = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    stderr = stderr_bytes.decode()
    assert proc.returncode == 0, stderr[-2000:]
    assert "stopped cleanly" in stderr
    for secret in (TOKEN, TOKEN.split(":")[1], NIK_A, code.group(1), sms["to"], sms["to"][3:]):
        assert secret not in stderr, "a secret reached the log"


async def test_run_keeps_the_flow_and_the_account_across_kills(tmp_path: Path) -> None:
    """SIGKILL (no graceful stop writes anything) after the code notice and after saving:
    the flow resumes and the account is there."""
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(77)
        await chat.consent()
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(NIK_A, expect="Kode OTP 6 angka sudah dikirim")
        await bot.stop(signal.SIGKILL)
        await bot.start()
        # A NIK still in hand at the kill is handled again, with a new code (decision 44)
        await bot.caught_up()
        await chat.send(bot.last_code(), expect="Kode benar")
        await chat.send("KK Saya", expect="Tersimpan")
        await bot.stop(signal.SIGKILL)
        await bot.start()
        await chat.send("/akun", expect="Akun JKN Anda (1/3)")
        assert chat.last.buttons[0][0] == "📌 KK Saya · 3174********0011"


@pytest.mark.parametrize(("name", "value"), [
    ("OTP_TTL_SECONDS", "900"), ("JKN_BACKEND", "foo"), ("KK_MAX_ACCOUNTS", "0"),
    ("OTP_SENDER", "sms"), ("TELEGRAM_API_URL", "ftp://x"), ("LOG_LEVEL", "LOUD"),
    ("KK_MASTER_KEY", "c2hvcnQ="), ("TELEGRAM_BOT_TOKEN", "not-a-token"),
])
def test_a_bad_setting_gives_one_line_and_exit_2(tmp_path: Path, name: str, value: str
                                                 ) -> None:
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, name: value}
    result = cli(tmp_path, "run", **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in result.stderr
    assert TOKEN not in result.stderr


def test_missing_settings_for_run_vclaim_and_http(tmp_path: Path) -> None:
    missing_token = cli(tmp_path, "run")
    assert missing_token.returncode == 2 and "TELEGRAM_BOT_TOKEN" in missing_token.stderr
    vclaim = cli(tmp_path, "run", TELEGRAM_BOT_TOKEN=TOKEN, JKN_BACKEND="vclaim")
    assert vclaim.returncode == 2 and "VCLAIM_BASE_URL" in vclaim.stderr
    http = cli(tmp_path, "run", TELEGRAM_BOT_TOKEN=TOKEN, OTP_SENDER="http",
               SMS_GATEWAY_URL="http://127.0.0.1:1/sms")
    assert http.returncode == 2 and "SMS_GATEWAY_TOKEN" in http.stderr
    webhook = cli(tmp_path, "run", TELEGRAM_BOT_TOKEN=TOKEN, WEBHOOK_URL="https://x.id/hook")
    assert webhook.returncode == 2 and "WEBHOOK_" in webhook.stderr


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OTP_TTL_SECONDS=601\n")
    result = cli(tmp_path, "run", TELEGRAM_BOT_TOKEN=TOKEN)
    assert result.returncode == 2 and "OTP_TTL_SECONDS" in result.stderr


def test_keygen_backup_rotate_and_wrong_key(tmp_path: Path) -> None:
    key = cli(tmp_path, "keygen").stdout.strip()
    assert len(key) == 44
    nothing = cli(tmp_path, "backup", str(tmp_path / "first.sqlite3"))
    assert nothing.returncode == 2 and "no database" in nothing.stderr
    assert not (tmp_path / "first.sqlite3").exists()
    assert not (tmp_path / "data" / "master.key").exists(), "a backup creates no key"
    created = cli(tmp_path, "rotate-key")  # the first start of a new installation
    assert created.returncode == 0 and "re-wrapped 0 chat key" in created.stderr
    assert (tmp_path / "data" / "master.key").exists()
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    rotated = cli(tmp_path, "rotate-key")
    assert rotated.returncode == 0 and "re-wrapped 0 chat key" in rotated.stderr
    assert len(list((tmp_path / "data").glob("master.key.20*"))) == 2, "both old keys kept"
    again = cli(tmp_path, "backup", str(tmp_path / "second.sqlite3"))
    assert again.returncode == 0 and (tmp_path / "second.sqlite3").stat().st_size > 0
    refused = cli(tmp_path, "backup", str(tmp_path / "third.sqlite3"), KK_MASTER_KEY=key)
    assert refused.returncode == 2 and "does not match" in refused.stderr
    assert not (tmp_path / "third.sqlite3").exists()
    exists = cli(tmp_path, "backup", str(tmp_path / "second.sqlite3"))
    assert exists.returncode == 2


def test_demo_through_a_pipe_shows_greeting_buttons_help_and_exits_0(tmp_path: Path) -> None:
    result = cli(tmp_path, "demo", stdin="/start\n#1\n/bantuan\n/keluar\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Halo! Saya Asisten KK" in out
    assert "[1] Saya setuju  [2] Tidak" in out
    assert "persetujuan Anda tercatat" in out
    assert "/tambah_kk — tambah akun JKN" in out
    assert not (tmp_path / "data").exists(), "the demo uses a throwaway directory"


def test_demo_adds_an_account_with_the_code_from_the_console_sms(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "demo"], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=bot_env(tmp_path))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"/start\n#1\n/tambah_kk\n{NIK_A}\n")
    proc.stdin.flush()
    code = None
    deadline = time.monotonic() + 30
    while code is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"\[SMS ke 08\d\d\*\*\*\*\d{4}\] .*?([0-9]{6})", line)
        code = match.group(1) if match else None
    assert code is not None
    out, _ = proc.communicate(f"{code}\n#2\n/akun\n/keluar\n", timeout=30)
    assert proc.returncode == 0
    assert "Tersimpan. «KK Orang Tua»" in out
    assert "📌 KK Orang Tua · 3174********0011" in out
    assert NIK_A not in out


def test_demo_shares_the_demo_users_own_number_with_hash_kontak(tmp_path: Path) -> None:
    """In the demo the user's Telegram number is the sample NIK's phone: #kontak proves
    that participant and no other."""
    result = cli(tmp_path, "demo", stdin=f"/start\n#1\n/tambah_kk {NIK_B}\n#kontak\n/batal\n"
                 f"/tambah_kk {NIK_A}\n#kontak\n#1\n/keluar\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "⌨ 📱 Pakai nomor Telegram saya  (ketik #kontak)" in out
    assert "bukan nomor HP yang terdaftar" in out
    assert "Nomor Telegram Anda cocok" in out and "Tersimpan. «KK Saya»" in out


async def test_webhook_mode_checks_the_secret_and_answers(tmp_path: Path) -> None:
    import json
    import socket

    import httpx

    emulator = BotApiEmulator(token=TOKEN)
    api = HttpBotApi(emulator)
    await api.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = http_env(tmp_path, api, WEBHOOK_URL="https://kk.example.id/hook",
                   WEBHOOK_LISTEN="127.0.0.1", WEBHOOK_PORT=str(port),
                   WEBHOOK_SECRET="rahasia-webhook_123")
    proc = await spawn_bot(tmp_path, env)
    emulator.open_chat(31)
    try:
        await wait_for(lambda: emulator.webhook_url == "https://kk.example.id/hook/telegram",
                       "setWebhook")
        emulator.user_sends(31, "/bantuan")
        update = json.dumps(emulator.updates.pop())
        hook = f"http://127.0.0.1:{port}/telegram"
        async with httpx.AsyncClient() as client:
            for _ in range(100):  # the listener may come up just after setWebhook
                try:
                    wrong = await client.post(hook, content=update, headers={
                        "Content-Type": "application/json",
                        "X-Telegram-Bot-Api-Secret-Token": "salah"})
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert wrong.status_code == 403
            assert emulator.bot_messages(31) == []
            right = await client.post(hook, content=update, headers={
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": "rahasia-webhook_123"})
            assert right.status_code == 200
        await wait_for(lambda: bool(emulator.bot_messages(31)), "the reply")
        assert "Perintah Asisten KK" in emulator.bot_messages(31)[0].text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert "rahasia-webhook_123" not in stderr.decode()


async def test_sigterm_finishes_the_update_in_hand(tmp_path: Path) -> None:
    emulator = BotApiEmulator(token=TOKEN)
    api = HttpBotApi(emulator)
    await api.start()
    proc = await spawn_bot(tmp_path, http_env(tmp_path, api))
    emulator.open_chat(9)
    try:
        await wait_for(lambda: emulator.calls.get("getUpdates", 0) > 0, "polling")
        emulator.user_sends(9, "/start")
        await wait_for(lambda: bool(emulator.bot_messages(9)), "greeting")
        emulator.user_taps(9, emulator.bot_messages(9)[-1].message_id, "consent:yes")
        emulator.user_sends(9, "/tambah_kk")
        await wait_for(lambda: "Kirim NIK" in emulator.bot_messages(9)[-1].text, "question")
        emulator.user_sends(9, "3174014506900003")  # the sandbox answers after 3 seconds
        await wait_for(lambda: "Memproses" in emulator.bot_messages(9)[-1].text, "lookup")
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await api.stop()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert any("Kode OTP 6 angka sudah dikirim" in m.text for m in emulator.bot_messages(9))
    assert api.sms, "the SMS of the update in hand went out before the exit"
