"""Faults from outside: `python -m bot run` against a Telegram that is down at start,
answers 502 now and then, gets a burst of taps, or a database file that is damaged."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sqlite3
from collections import Counter
from pathlib import Path

from bot.devtools.emulator import BotApiEmulator, Fault
from tests.botapi_http import HttpBotApi
from tests.conftest import NIK_A, NIK_B
from tests.process import TOKEN, RunningBot, acli, http_env, spawn_bot, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_telegram_unreachable_at_start_then_back(tmp_path: Path) -> None:
    port = free_port()
    emulator = BotApiEmulator(token=TOKEN)
    api = HttpBotApi(emulator)
    api.url = f"http://127.0.0.1:{port}"  # nothing listens there yet
    proc = await spawn_bot(tmp_path, http_env(tmp_path, api))
    assert proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
        while b"not reachable" not in line:
            assert line, "the bot exited instead of waiting for Telegram"
            line = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert b"ConnectError" in line or b"NetworkError" in line
        await asyncio.sleep(1.5)
        assert proc.returncode is None, "it waits, it does not exit"
        emulator.faults = (lambda method: Fault.GATEWAY if method == "getMe"
                           and emulator.calls[method] <= 5 else None)
        await api.start(port)  # Telegram is back, answering getMe with 502 five more times
        emulator.open_chat(61)
        await wait_for(lambda: emulator.calls.get("getUpdates", 0) > 0, "polling", 40)
        emulator.user_sends(61, "/bantuan")
        await wait_for(lambda: bool(emulator.bot_messages(61)), "the reply")
        assert "Perintah Asisten KK" in emulator.bot_messages(61)[0].text
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, rest = await asyncio.wait_for(proc.communicate(), 30)
        await api.stop()
    stderr = rest.decode()
    assert proc.returncode == 0
    assert "Traceback" not in stderr and TOKEN not in stderr


async def test_a_rejected_token_stops_with_one_line(tmp_path: Path) -> None:
    emulator = BotApiEmulator(token="1111:" + "x" * 35)  # knows another token: 401 for ours
    api = HttpBotApi(emulator)
    await api.start()
    try:
        proc = await spawn_bot(tmp_path, http_env(tmp_path, api))
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await api.stop()
    lines = [line for line in err.decode().splitlines() if "error:" in line]
    assert proc.returncode == 2
    assert len(lines) == 1 and "TELEGRAM_BOT_TOKEN" in lines[0]
    assert "Traceback" not in err.decode() and TOKEN not in err.decode()


async def test_over_http_every_fourth_call_502_and_a_card_is_added(tmp_path: Path) -> None:
    async with RunningBot(tmp_path) as bot:
        seen: Counter[str] = Counter()

        def fourth(method: str) -> Fault | None:
            if method == "getUpdates":
                return None
            seen["calls"] += 1
            return Fault.GATEWAY if seen["calls"] % 4 == 0 else None

        bot.emulator.faults = fourth
        chat = bot.chat(71)
        await chat.consent()
        await chat.add(NIK_A, "Ibu")
        await chat.send("/status", expect="Faskes pertama")
        assert len(bot.emulator.injected) >= 3
        texts = [m.text for m in chat.messages]
        assert len(texts) == len(set(texts)), "nothing was shown twice"
        assert "Maaf" not in "\n".join(texts)


async def test_over_http_a_burst_of_150_taps_is_answered_tap_by_tap(tmp_path: Path) -> None:
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(72)
        await chat.consent()
        await chat.add(NIK_A, "Ibu")
        await chat.add(NIK_B, "Ayah")
        await chat.send("/akun", expect="Akun JKN Anda (2/3)")
        listing = chat.last
        queries = [bot.emulator.user_taps(72, listing.message_id, listing.buttons[i % 2][1])
                   for i in range(150)]
        await wait_for(lambda: all(bot.emulator.queries[q]["answered"] for q in queries),
                       "every tap answered", 60)
        answers = [bot.emulator.answer_of(q) or {} for q in queries]
        assert sum(a.get("text", "").startswith("Terlalu cepat") for a in answers) > 0
    assert bot.stderr.count("burst in one chat") == 1


def test_a_damaged_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    from tests.process import cli

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    db = data / "kk.sqlite3"
    (data / "master.key").write_text(cli(tmp_path, "keygen").stdout)
    for damage in ("not a database", "malformed schema"):
        if damage == "not a database":
            db.write_bytes(b"this is not an sqlite file at all" * 100)
        else:
            db.unlink()
            conn = sqlite3.connect(db)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("CREATE TABLE t (x)")
            conn.commit()
            conn.close()
            raw = bytearray(db.read_bytes())
            raw[100:200] = b"\xff" * 100  # the schema page's header
            db.write_bytes(bytes(raw))
        before = hashlib.sha256(db.read_bytes()).hexdigest()
        result = cli(tmp_path, "run", TELEGRAM_BOT_TOKEN=TOKEN)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, damage
        assert len(lines) == 1 and "kk.sqlite3" in lines[0], (damage, lines)
        assert "Traceback" not in result.stderr
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before, "never overwritten"


async def test_backup_beside_a_bot_under_load_is_consistent(tmp_path: Path) -> None:
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(73)
        await chat.consent()
        await chat.add(NIK_A, "Ibu")
        copy = await acli(tmp_path, "backup", str(tmp_path / "b.sqlite3"))
        assert copy.returncode == 0, copy.stderr
    conn = sqlite3.connect(tmp_path / "b.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
