"""Operations through `python -m bot run` and the CLI, as an operator sees them: /healthz
going red and green with Telegram, systemd's notifications, /metrics after a whole
conversation (no identifier in it), JSON logs, the unknown-setting warning, 409 Conflict,
and backup → verify → restore → start."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
from pathlib import Path

import httpx

from bot.identity import parse_identifier
from bot.jkn.sandbox import SandboxBackend
from storage.db import SCHEMA_VERSION
from tests.conftest import NIK_A
from tests.process import RunningBot, cli, http_env, spawn_bot


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(url: str) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=20) as client:
        for _ in range(200):  # the listener comes up just after start
            try:
                answer = await client.get(url)
                return answer.status_code, answer.text
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def until_status(url: str, status: int, timeout: float = 40) -> str:
    seen: list[tuple[int, str]] = []

    async def poll() -> str:
        while True:
            got = await get(url)
            seen.append(got)
            if got[0] == status:
                return got[1]
            await asyncio.sleep(0.2)
    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{url} never answered {status}; last {seen[-1:]}") from None


async def test_health_goes_red_when_telegram_stops_answering_and_green_again(
        tmp_path: Path) -> None:
    port = free_port()
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    health = f"http://127.0.0.1:{port}/healthz"
    received: list[str] = []

    async def drain() -> None:  # as systemd does: read each notification as it comes
        while True:
            try:
                received.append(notify.recv(4096).decode())
            except BlockingIOError:
                await asyncio.sleep(0.05)
    reader = asyncio.create_task(drain())
    try:
        async with RunningBot(tmp_path, HEALTH_LISTEN=f"127.0.0.1:{port}",
                              HEALTH_WINDOW_SECONDS="2", NOTIFY_SOCKET=str(notify_path),
                              WATCHDOG_USEC="400000") as bot:
            assert (await until_status(health, 200)).strip() == "ok"
            api_port = int(bot.api.url.rsplit(":", 1)[1])
            await bot.api.stop()  # Telegram stops answering
            reason = await until_status(health, 503)
            assert reason.count("\n") == 1 and "Telegram not reached for" in reason
            await bot.api.start(api_port)
            assert (await until_status(health, 200)).strip() == "ok"
            assert any("READY=1" in m for m in received), received
            assert any("WATCHDOG=1" in m for m in received), received
            assert bot.proc is not None
            assert await bot.stop() == 0
            await asyncio.sleep(0.2)
            assert any("STOPPING=1" in m for m in received), received
    finally:
        reader.cancel()
        notify.close()


async def test_health_is_red_while_the_database_is_not_writable(tmp_path: Path) -> None:
    port = free_port()
    health = f"http://127.0.0.1:{port}/healthz"
    async with RunningBot(tmp_path, HEALTH_LISTEN=f"127.0.0.1:{port}") as bot:
        await until_status(health, 200)
        holder = __import__("sqlite3").connect(bot.data_dir / "kk.sqlite3", timeout=0.1)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # another process locks the database
            await asyncio.sleep(5.5)  # past the cached result of the last check
            reason = await until_status(health, 503, timeout=30)
            assert "database" in reason
        finally:
            holder.rollback()
            holder.close()
        await until_status(health, 200)


async def test_metrics_after_a_whole_conversation_hold_counts_and_no_identifier(
        tmp_path: Path) -> None:
    port = free_port()
    chat_id = 918273645
    label = "Keluarga Pak Wiryo"
    async with RunningBot(tmp_path, HEALTH_LISTEN=f"127.0.0.1:{port}") as bot:
        chat = bot.chat(chat_id)
        await chat.consent()
        await chat.add(NIK_A, label)
        phone = bot.sms[-1]["to"]
        code = bot.last_code()
        await chat.send("/status", expect="Faskes pertama")
        await chat.send("/akun", expect="Akun JKN Anda")
        scrape = (await get(f"http://127.0.0.1:{port}/metrics"))[1]
        await chat.send("/hapus_data", expect="Lanjutkan?")
        await chat.tap("Ya, hapus semua", expect="sudah dihapus")
        after = (await get(f"http://127.0.0.1:{port}/metrics"))[1]
    found = await SandboxBackend().lookup(parse_identifier(NIK_A))  # type: ignore[arg-type]
    for text in (scrape, after):
        for secret in (NIK_A, phone, phone[3:], phone[-10:], found.name, found.card,
                       str(chat_id), label, code):
            assert secret not in text, secret
        assert "Pak Wiryo" not in text and found.name.split()[0] not in text

    def value(text: str, name: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        return float(line.rsplit(" ", 1)[1])

    assert value(scrape, 'kk_updates_total{kind="command"}') >= 4
    assert value(scrape, 'kk_updates_total{kind="callback_query"}') >= 1
    assert value(scrape, "kk_sms_sent_total") == 1
    assert value(scrape, "kk_accounts_cached") == 1
    assert value(scrape, 'kk_backend_calls_total{backend="sandbox",call="lookup",'
                         'outcome="ok"}') >= 1
    assert value(scrape, "kk_update_duration_seconds_count{kind=\"command\"}") >= 4
    assert value(after, 'kk_erases_total{what="chat"}') == 1
    assert value(after, "kk_accounts_cached") == 0


async def test_json_logs_startup_line_and_unknown_setting_warning(tmp_path: Path) -> None:
    async with RunningBot(tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG",
                          JKN_BAKCEND="vclaim", KK_SESION_DAYS="5") as bot:
        chat = bot.chat(5550001)
        await chat.send("/bantuan", expect="Perintah Asisten KK")
        await bot.stop()
    records = [json.loads(line) for line in bot.stderr.splitlines() if line.strip()]
    assert records and all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert all(r["time"][-6] in "+-" and r["time"][10] == "T" for r in records), \
        "ISO 8601 with an offset"
    messages = [r["message"] for r in records]
    assert "JKN_BAKCEND is not a setting; did you mean JKN_BACKEND?" in messages
    assert "KK_SESION_DAYS is not a setting; did you mean KK_SESSION_DAYS?" in messages
    start = next(m for m in messages if m.startswith("Asisten KK "))
    for part in ("0.1.0", "backend sandbox", "OTP sender http", "long polling",
                 str((tmp_path / "data").resolve()), "key from key file"):
        assert part in start, part
    assert any("master.key" in m and "apart from the backups" in m for m in messages)
    update_lines = [m for m in messages if m.startswith("update handled: kind=command")]
    assert update_lines and "state=idle" in update_lines[0] and " ms" in update_lines[0]
    assert not any("5550001" in m for m in messages)


async def test_a_second_instance_on_the_same_token_gets_409_and_exits_3(
        tmp_path: Path) -> None:
    port = free_port()
    health = f"http://127.0.0.1:{port}/healthz"
    (tmp_path / "a").mkdir()
    async with RunningBot(tmp_path / "a", HEALTH_LISTEN=f"127.0.0.1:{port}",
                          TELEGRAM_CONFLICT_EXIT_SECONDS="3") as bot:
        await until_status(health, 200)
        other_dir = tmp_path / "b"
        other_dir.mkdir()
        other = await spawn_bot(other_dir, http_env(other_dir, bot.api,
                                                    TELEGRAM_CONFLICT_EXIT_SECONDS="3"))
        try:
            reason = await until_status(health, 503, timeout=30)
            assert "409 Conflict" in reason and "another instance" in reason
            assert bot.proc is not None
            await asyncio.wait_for(bot.proc.wait(), 30)
        finally:
            if other.returncode is None:
                other.send_signal(signal.SIGTERM)
            await asyncio.wait_for(other.communicate(), 30)
        assert await bot.stop() == 3
    errors = [line for line in bot.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "another instance polls the same bot token" in errors[0]


async def test_backup_verify_restore_and_start_keeps_the_cards(tmp_path: Path) -> None:
    first = tmp_path / "old-host"
    first.mkdir()
    async with RunningBot(first) as bot:
        chat = bot.chat(7007)
        await chat.consent()
        await chat.add(NIK_A, "KK Ibu")
        env = {k: v for k, v in bot.env.items() if k != "TELEGRAM_BOT_TOKEN"}
        target = tmp_path / "off-host" / "2026" / "kk-20261202.sqlite3"
        made = cli(first, "backup", str(target), **env)  # beside the running bot
        assert made.returncode == 0, made.stderr
    key_file = tmp_path / "key-kept-apart"
    shutil.copy(first / "data" / "master.key", key_file)
    unwritable = cli(first, "backup", "/proc/no/such/dir/x.sqlite3", timeout=15)
    assert unwritable.returncode == 2 and len(unwritable.stderr.strip().splitlines()) == 1

    second = tmp_path / "new-host"
    second.mkdir()
    no_key = cli(second, "verify-backup", str(target))
    assert no_key.returncode == 2 and "no master key" in no_key.stderr
    report = cli(second, "verify-backup", str(target), "--key-file", str(key_file))
    assert report.returncode == 0, report.stderr
    schema = f"schema {SCHEMA_VERSION} (this program: {SCHEMA_VERSION})"
    for line in (schema, "integrity ok", "key matches", "usable"):
        assert line in report.stdout.splitlines(), report.stdout
    assert "accounts 1," in report.stdout and "consent 1," in report.stdout
    wrong = cli(second, "restore", str(target), KK_MASTER_KEY=cli(second, "keygen").stdout.strip())
    assert wrong.returncode == 2 and "does not open" in wrong.stderr
    assert not (second / "data" / "kk.sqlite3").exists()
    restored = cli(second, "restore", str(target), "--key-file", str(key_file))
    assert restored.returncode == 0, restored.stderr
    assert "1 account(s)" in restored.stderr and "master.key installed" in restored.stderr
    again = cli(second, "restore", str(target))
    assert again.returncode == 2 and "--force" in again.stderr
    forced = cli(second, "restore", str(target), "--force")
    assert forced.returncode == 0 and "kept as" in forced.stderr
    assert list((second / "data").glob("kk.sqlite3.before-restore-*"))

    async with RunningBot(second) as bot:
        chat = bot.chat(7007)
        await chat.send("/akun", expect="Akun JKN Anda (1/3)")
        assert chat.last.buttons[0][0] == "📌 KK Ibu · 3174********0011"
        await chat.send("/status", expect="Faskes pertama")
        busy = cli(second, "restore", str(target), "--force")
        assert busy.returncode == 2 and "in use" in busy.stderr


def test_version_flag() -> None:
    result = cli(Path("/tmp"), "--version")
    assert result.returncode == 0 and result.stdout.strip().startswith("asisten-kk 0.")


async def test_webhook_mode_serves_health_and_metrics_beside_the_webhook(
        tmp_path: Path) -> None:
    from bot.devtools.emulator import BotApiEmulator
    from tests.botapi_http import HttpBotApi
    from tests.process import TOKEN

    emulator = BotApiEmulator(token=TOKEN)
    api = HttpBotApi(emulator)
    await api.start()
    port = free_port()
    env = http_env(tmp_path, api, WEBHOOK_URL="https://kk.example.id/hook",
                   WEBHOOK_LISTEN="127.0.0.1", WEBHOOK_PORT=str(port),
                   WEBHOOK_SECRET="rahasia-webhook_123", HEALTH_WINDOW_SECONDS="2")
    proc = await spawn_bot(tmp_path, env)
    try:
        assert (await until_status(f"http://127.0.0.1:{port}/healthz", 200)).strip() == "ok"
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "kk_telegram_reachable 1.0" in text
        await api.stop()  # no deliveries, no answer to getWebhookInfo: red
        assert "Telegram not reached" in await until_status(
            f"http://127.0.0.1:{port}/healthz", 503)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    assert proc.returncode == 0, stderr.decode()[-2000:]
