"""The operator's chat through `python -m bot run` over HTTP (issue 23 item 9): a notice
to every consented chat, SIGKILLed halfway, resumed by the restarted bot with nobody
messaged twice; /stats shows counts only, and is an unknown command in any other chat."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from bot import texts
from tests.process import RunningBot, wait_for

OPERATOR = 9001
CHATS = [20_000 + i for i in range(200)]


def notices(bot: RunningBot, chat_id: int) -> int:
    return sum(1 for m in bot.emulator.bot_messages(chat_id)
               if m.text.startswith("📢 Pengumuman Asisten KK"))


async def test_a_notice_killed_halfway_resumes_and_nobody_gets_it_twice(tmp_path: Path
                                                                         ) -> None:
    async with RunningBot(tmp_path, OPERATOR_CHAT_IDS=str(OPERATOR)) as bot:
        await bot.stop()
        conn = sqlite3.connect(bot.data_dir / "kk.sqlite3")
        with conn:  # 200 chats that agreed earlier (typing /start 200 times adds nothing)
            conn.executemany("INSERT INTO consent (chat_id, consented_at) VALUES (?, ?)",
                             [(chat_id, time.time()) for chat_id in CHATS])
        conn.close()
        for chat_id in CHATS:
            bot.chat(chat_id)
        await bot.start()
        admin = bot.chat(OPERATOR)
        stranger = bot.chat(CHATS[0])
        await stranger.send("/xyz", expect=texts.UNKNOWN_COMMAND)
        unknown = stranger.reply
        await stranger.send("/stats", expect=texts.UNKNOWN_COMMAND)
        assert stranger.reply == unknown, "no existence oracle"
        await admin.send("/stats", expect="Statistik")
        assert "Chat yang sudah setuju: 200" in admin.reply
        assert all(str(chat_id) not in admin.reply for chat_id in CHATS)
        await admin.send("/pengumuman Bot dirawat malam ini pukul 22.00 WIB.",
                         expect="Kirim sekarang?")
        assert sum(notices(bot, c) for c in CHATS) == 0, "nothing before [Kirim]"
        await admin.tap("Kirim", expect="sedang dikirim")
        await wait_for(lambda: sum(notices(bot, c) for c in CHATS) >= 40, "40 notices")
        await bot.stop(signal.SIGKILL)
        before = {c: notices(bot, c) for c in CHATS}
        assert 40 <= sum(before.values()) < len(CHATS), "killed halfway"
        await bot.start()
        await wait_for(lambda: "Pengumuman selesai" in admin.reply, "the report",
                       timeout=60)
        counts = [notices(bot, c) for c in CHATS]
        assert max(counts) == 1, "nobody messaged twice"
        assert counts.count(1) >= len(CHATS) - 1, "at most the one in flight is left out"
        states = dict(bot.read_db("SELECT state, count(*) FROM notice_deliveries "
                                  "GROUP BY state"))
        assert sum(states.values()) == len(CHATS)
        assert states["sent"] <= counts.count(1) <= states["sent"] + states.get("sending", 0)
        assert bot.read_db("SELECT state FROM notices") == [("done",)]
        assert await bot.stop() == 0
        assert str(CHATS[0]) not in bot.stderr, "no chat id in the log"
