"""Driving `python -m bot run` from outside, as Telegram and a user do: the bot is a child
process, Telegram is the Bot API stand-in behind HTTP on 127.0.0.1 (tests/botapi_http.py),
and a :class:`RemoteChat` is a person typing and tapping in one chat."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.devtools.emulator import BotApiEmulator, StoredMessage
from tests.botapi_http import HttpBotApi

TOKEN = "7012345678:AAHk3vZ_secretSECRETsecret-0123456789ab"
ROOT = Path(__file__).resolve().parent.parent
_SETTING_PREFIXES = ("TELEGRAM_", "KK_", "JKN_", "OTP_", "SMS_", "WEBHOOK_", "VCLAIM_",
                     "PCARE_", "LOG_", "STATUS_", "REMINDER_", "HEALTH_", "OPERATOR_",
                     "RETENTION_")


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    # HEALTH_LISTEN off unless a test asks: its default port is one for the whole machine
    env.update({"KK_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT),
                "HEALTH_LISTEN": ""})
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, stdin: str = "", timeout: float = 60,
        **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, input=stdin,
                          capture_output=True, text=True, timeout=timeout,
                          env=bot_env(tmp_path, **extra), check=False)


async def acli(tmp_path: Path, *args: str, timeout: float = 60, **extra: str
               ) -> subprocess.CompletedProcess[str]:
    """:func:`cli` for async tests: the HTTP doubles in this event loop keep serving."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=tmp_path, env=bot_env(tmp_path, **extra),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


def http_env(tmp_path: Path, api: HttpBotApi, **extra: str) -> dict[str, str]:
    """Environment for a bot that talks to ``api`` for both Telegram and SMS."""
    return bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.url,
                   OTP_SENDER="http", SMS_GATEWAY_URL=f"{api.url}/sms",
                   SMS_GATEWAY_TOKEN=api.sms_token, **extra)


async def spawn_bot(tmp_path: Path, env: dict[str, str], *args: str
                    ) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *(args or ("run",)), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class RunningBot:
    """`python -m bot run` against an HTTP Bot API double (and its SMS gateway)."""

    def __init__(self, tmp_path: Path, **settings: str) -> None:
        self.tmp_path = tmp_path
        self.emulator = BotApiEmulator(token=TOKEN)
        self.api = HttpBotApi(self.emulator)
        self.settings = settings
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = ""

    @property
    def data_dir(self) -> Path:
        return self.tmp_path / "data"

    @property
    def env(self) -> dict[str, str]:
        """The settings this bot runs with (for a CLI command beside it)."""
        return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": self.api.url,
                "OTP_SENDER": "http", "SMS_GATEWAY_URL": f"{self.api.url}/sms",
                "SMS_GATEWAY_TOKEN": self.api.sms_token, **self.settings}

    async def __aenter__(self) -> RunningBot:
        await self.api.start()
        try:
            await self.start()
        except BaseException:
            await self.api.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop()
        finally:
            await self.api.stop()

    async def start(self) -> None:
        polls = self.emulator.calls.get("getUpdates", 0)
        self.proc = await spawn_bot(self.tmp_path, http_env(self.tmp_path, self.api,
                                                            **self.settings))
        await wait_for(lambda: self.emulator.calls.get("getUpdates", 0) > polls or (
            self.proc is not None and self.proc.returncode is not None), "polling to start")
        assert self.proc.returncode is None, "the bot exited at start"

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the bot (SIGTERM: gracefully; SIGKILL: as a crash) and return its status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.returncode is None:
            proc.send_signal(sig)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        self.stderr += err.decode()
        assert proc.returncode is not None
        return proc.returncode

    async def caught_up(self, timeout: float = 30) -> None:
        """Wait until Telegram holds no unconfirmed update: after a restart, the updates
        resent because they were in hand at a kill are handled (bot/polling.py)."""
        await wait_for(lambda: not self.emulator.updates, "the resent updates handled",
                       timeout)

    def chat(self, chat_id: int, **kwargs: Any) -> RemoteChat:
        self.emulator.open_chat(chat_id, **kwargs)
        return RemoteChat(self, chat_id)

    @property
    def sms(self) -> list[dict[str, Any]]:
        return self.api.sms

    def last_code(self) -> str:
        match = re.search(r"\b([0-9]{6})\b", self.sms[-1]["message"])
        assert match is not None
        return match.group(1)

    def read_db(self, sql: str, *params: object) -> list[Any]:
        """Read the bot's database from outside, as another process would."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'kk.sqlite3'}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def files(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.data_dir.glob("kk.sqlite3*"))


class RemoteChat:
    """One person in one chat with the running bot."""

    def __init__(self, bot: RunningBot, chat_id: int) -> None:
        self.bot = bot
        self.emulator = bot.emulator
        self.chat_id = chat_id
        self._mark = 0

    def _events(self) -> list[Any]:
        return [e for e in self.emulator.events[self._mark:] if e.chat_id == self.chat_id]

    @property
    def reply(self) -> str:
        """Everything the bot said or showed in this chat since the last action."""
        return "\n".join(e.text for e in self._events() if e.kind in ("message", "edit",
                                                                      "answer"))

    @property
    def messages(self) -> list[StoredMessage]:
        return self.emulator.bot_messages(self.chat_id)

    @property
    def last(self) -> StoredMessage:
        return self.messages[-1]

    async def until(self, expected: str, timeout: float = 20) -> str:
        await wait_for(lambda: expected in self.reply, f"{expected!r} in chat "
                       f"{self.chat_id} (saw {self.reply[-300:]!r})", timeout)
        return self.reply

    async def until_any(self, *expected: str, timeout: float = 20) -> str:
        await wait_for(lambda: any(e in self.reply for e in expected),
                       f"one of {expected!r} in chat {self.chat_id}", timeout)
        return self.reply

    async def send(self, text: str, expect: str | None = None) -> StoredMessage:
        self._mark = len(self.emulator.events)
        message = self.emulator.user_sends(self.chat_id, text)
        if expect is not None:
            await self.until(expect)
        return message

    async def tap(self, label: str, expect: str | None = None) -> str:
        """Tap the newest button whose label contains ``label`` (or, with a colon in it,
        send that callback data as is); returns the query id once it is answered."""
        if ":" in label:
            target, data = self.last, label
        else:
            target, data = next((m, d) for m in reversed(self.messages)
                                for text, d in m.buttons if label in text)
        self._mark = len(self.emulator.events)
        query = self.emulator.user_taps(self.chat_id, target.message_id, data)
        await wait_for(lambda: self.emulator.queries[query]["answered"], f"an answer to {label}")
        if expect is not None:
            await self.until(expect)
        return query

    async def share_contact(self, phone_number: str, *, own: bool = True,
                            contact_user_id: int | None = None,
                            expect: str | None = None) -> StoredMessage:
        """Tap 📱 (``own``: the contact carries this user's id) or send any contact card."""
        self._mark = len(self.emulator.events)
        message = self.emulator.user_shares_contact(
            self.chat_id, phone_number, contact_user_id=self.chat_id if own else contact_user_id)
        if expect is not None:
            await self.until(expect)
        return message

    @property
    def reply_keyboard(self) -> list[dict[str, Any]]:
        """The reply keyboard the user's keyboard area shows now ([] when none)."""
        shown = self.emulator.chats[self.chat_id].reply_keyboard
        return [b for row in (shown or {}).get("keyboard", []) for b in row]

    async def consent(self) -> None:
        await self.send("/start", expect="Apakah Anda setuju")
        await self.tap("Saya setuju", expect="persetujuan Anda tercatat")

    async def add(self, identifier: str, label: str) -> None:
        """The whole /tambah_kk flow, with the code read from the SMS gateway."""
        await self.send("/tambah_kk", expect="Kirim")
        await self.send(identifier, expect="Kode OTP 6 angka sudah dikirim")
        await self.send(self.bot.last_code(), expect="Kode benar")
        await self.send(label, expect="Tersimpan")
