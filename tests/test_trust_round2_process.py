"""Issue #18 (trust, round two) driven from outside: `python -m bot run` and its CLI over
HTTP on 127.0.0.1, the way a user (or an attacker) reaches the bot."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.process import RemoteChat, RunningBot, acli, wait_for

ARREARS = ("3174014506900001", "3174014506880001")  # the sandbox's participants in arrears
DAYS = 86400


def reminders(chat: RemoteChat) -> list[str]:
    return [m.text for m in chat.messages if m.text.startswith("🔔 Pengingat JKN —")]


def age_sessions(bot: RunningBot, chat_id: int, days: int) -> None:
    """As if the chat's last code was ``days`` ago (only the clock is not ours to move)."""
    conn = sqlite3.connect(bot.data_dir / "kk.sqlite3", timeout=10)
    try:
        with conn:
            conn.execute("UPDATE accounts SET verified_at = verified_at - ? WHERE chat_id = ?",
                         (days * DAYS, chat_id))
    finally:
        conn.close()


async def test_over_http_an_expired_session_gets_no_reminder_and_no_switch_on(
        tmp_path: Path) -> None:
    async with RunningBot(tmp_path) as bot:
        old, fresh = bot.chat(8100), bot.chat(8101)
        for chat, nik in ((old, ARREARS[0]), (fresh, ARREARS[1])):
            await chat.consent()
            await chat.add(nik, "Nunggak")
            await chat.send("/pengingat", expect="Ketuk akun")
            await chat.tap("Nunggak", expect="dinyalakan")
        age_sessions(bot, 8100, 200)
        result = await acli(tmp_path, "remind", "--date", "2026-12-07", **bot.env)
        assert result.returncode == 0 and "1 sent" in result.stderr, result.stderr
        await wait_for(lambda: bool(reminders(fresh)), "the fresh chat's reminder")
        assert "Iuran belum dibayar" in reminders(fresh)[0]
        assert reminders(old) == [], "200 days after its last code: not a word"
        assert bot.read_db("SELECT count(*) FROM reminder_log WHERE chat_id = 8100") == [(0,)]

        await old.send("/pengingat", expect="Ketuk akun")
        assert [t for t, _ in old.last.buttons] == ["🔔 Nunggak · 3174********0001 ⏳"]
        await old.tap("Nunggak", expect="dimatikan")  # off needs nothing
        await wait_for(lambda: any(t.startswith("🔕 Nunggak") for t, _ in old.last.buttons),
                       "the listing redrawn with the reminder off")
        sms = len(bot.sms)
        await old.tap("🔕 Nunggak", expect="Sesi akun «Nunggak» sudah lewat")
        await old.until("Kode OTP 6 angka sudah dikirim")
        assert len(bot.sms) == sms + 1
        assert bot.read_db("SELECT remind FROM accounts WHERE chat_id = 8100") == [(0,)]


async def test_over_http_a_stale_send_code_button_grants_nothing(tmp_path: Path) -> None:
    """Item 7: a sealed "Kirim kode" from a re-verification, tapped after /hapus_kk removed
    that account, sent an SMS with the owner's exemption from the caps (here the global
    budget, used up). Now /hapus_kk forgets the sealed step and every step re-checks."""
    async with RunningBot(tmp_path, SMS_MAX_PER_HOUR="2") as bot:
        owner, other = bot.chat(8200), bot.chat(8201)
        for chat, nik in ((owner, ARREARS[0]), (other, ARREARS[1])):
            await chat.consent()
            await chat.add(nik, "Ibu")
        assert len(bot.sms) == 2, "the hour's budget is used up"
        age_sessions(bot, 8200, 40)
        bot.api.sms_refuse = 1
        await owner.send("/akun", expect="Akun JKN Anda")
        await owner.tap("Ibu", expect="Sesi akun «Ibu» sudah lewat")
        await owner.until("SMS belum bisa dikirim")
        stale = owner.last
        assert "Kirim kode" in [t for t, _ in stale.buttons]

        def pending() -> bool:
            rows = bot.read_db("SELECT data FROM chat_data WHERE chat_id = 8200")
            return bool(rows) and '"pending"' in rows[0][0]

        assert pending(), "the step is sealed in chat data, on disk"
        await owner.send("/hapus_kk", expect="Pilih akun")
        await owner.tap("Ibu", expect="Hapus «Ibu»")
        await owner.tap("Ya, hapus", expect="sudah dihapus")
        await wait_for(lambda: not pending(), "the sealed step to leave the disk")
        sms = len(bot.sms)
        data = next(d for t, d in stale.buttons if t == "Kirim kode")
        query = bot.emulator.user_taps(8200, stale.message_id, data)
        await wait_for(lambda: bot.emulator.queries[query]["answered"], "the tap's answer")
        await owner.until("Verifikasi ini sudah berakhir")
        assert len(bot.sms) == sms, "no SMS for an account the chat no longer holds"
        assert bot.read_db("SELECT count(*) FROM challenges WHERE chat_id = 8200") == [(0,)]
        assert bot.read_db("SELECT count(*) FROM accounts WHERE chat_id = 8200") == [(0,)]


async def test_over_http_a_backlog_of_nik_messages_is_deleted_to_the_last(
        tmp_path: Path) -> None:
    """Item 6: 120 messages with a NIK queued in one chat. The backlog (50 a chat) drops
    most of them; each dropped one is still deleted. Before: 68 were left in the chat."""
    from tests.test_scrub import NIK_FORMS

    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(8300)
        await chat.consent()
        queued = [bot.emulator.user_sends(8300, NIK_FORMS[i % len(NIK_FORMS)])
                  for i in range(120)]  # all at once: one getUpdates takes 100 of them

        def left() -> int:
            return sum(not m.deleted for m in queued)

        try:
            await wait_for(lambda: left() == 0, "every NIK deleted", timeout=30)
        finally:
            assert left() == 0, f"{left()} of 120 NIKs left undeleted"
        await chat.send("/akun", expect="Belum ada akun")  # the chat is served again
        assert not any("3174" in m.text for m in chat.messages), "nothing echoed"
