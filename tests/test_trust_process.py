"""The trust controls of docs/security.md, checked the way an attacker reaches the bot:
`python -m bot run` as a process, Telegram and the SMS gateway as HTTP servers on
127.0.0.1, the database files read from outside."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
from pathlib import Path

from bot.identity import Identifier, IdKind, mask_nik
from bot.jkn.sandbox import SandboxBackend
from storage.chat_keys import unwrap
from storage.crypto import Vault
from tests.conftest import CARD_A, NIK_A, NIK_B, NIK_C
from tests.process import (
    TOKEN,
    RemoteChat,
    RunningBot,
    acli,
    cli,
    http_env,
    spawn_bot,
    wait_for,
)

MASKED_NIK = re.compile(r"\d{4}\*{8}\d{4}")


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def guess_until_refused(bot: RunningBot, chat: RemoteChat) -> int:
    """Ask for a code for NIK_A and guess wrong until the bot stops checking."""
    checked = 0
    await chat.send("/tambah_kk", expect="Kirim")
    await chat.send(NIK_A)
    await chat.until_any("Kode OTP 6 angka sudah dikirim", "Kode OTP tidak bisa dikirim")
    # "Sisa percobaan" alone would also match a refused look-up (it counts tries too)
    while ("Kode OTP 6 angka sudah dikirim" in chat.reply
           or "Kode salah. Sisa percobaan" in chat.reply):
        await chat.send(wrong(bot.last_code()), expect="ode salah")
        checked += 1
    return checked


async def test_over_http_strangers_get_ten_guesses_see_four_digits_and_no_nik(
        tmp_path: Path) -> None:
    async with RunningBot(tmp_path, LOG_LEVEL="DEBUG") as bot:
        attackers = [bot.chat(9000 + i, title=f"Penyerang {i}") for i in range(4)]
        for chat in attackers:
            await chat.consent()
        person = SandboxBackend().participant(Identifier(IdKind.NIK, NIK_A))
        assert person.phone is not None
        checked = [await guess_until_refused(bot, chat) for chat in attackers[:3]]
        assert sum(checked) == 10, checked
        assert "Kode OTP tidak bisa dikirim" in attackers[2].last.text
        late = attackers[3]
        await late.send("/tambah_kk", expect="Kirim")
        await late.send(NIK_A, expect="Kode OTP tidak bisa dikirim")
        assert len(bot.sms) == 2, "two codes were sent, then the participant was locked"

        seen = "\n".join(m.text for c in attackers for m in c.messages)
        assert f"berakhiran {person.phone[-4:]}" in seen
        assert person.phone[3:7] not in seen.replace(person.phone[-4:], "")
        assert person.name not in seen

        probe = bot.chat(9100, title="Pencari")
        await probe.consent()
        replies = []
        for nik in ("3174014506900000", "3174014506900002"):
            # a fresh flow each: the refusal counts the tries left in this flow
            await probe.send("/tambah_kk", expect="Kirim")
            await probe.send(nik, expect="tidak bisa dikirim")
            replies.append(probe.last.text.replace(mask_nik(nik), "<NIK>"))
        assert replies[0] == replies[1], "not found and no phone read the same"
        by_card = SandboxBackend().participant(Identifier(IdKind.CARD, CARD_A))
        shown = len(probe.messages)
        await probe.send(CARD_A, expect="Kode OTP 6 angka sudah dikirim")
        before_code = "\n".join(m.text for m in probe.messages[shown:])
        assert not MASKED_NIK.search(before_code), "a card look-up shows no NIK"
        assert by_card.name not in before_code

        owner = bot.chat(9200, title="Pemilik")
        await owner.consent()
        typed = await owner.send(f"/tambah_kk {NIK_B}", expect="Kode OTP 6 angka sudah dikirim")
        await wait_for(lambda: typed.deleted, "the /tambah_kk <NIK> message deleted")
        spaced = await owner.send("3174 0145 0690 0011", expect="")
        await wait_for(lambda: spaced.deleted, "a spaced NIK deleted")
        await owner.send(bot.last_code(), expect="Kode")
        await owner.send("Bapak", expect="Tersimpan")
        status = await owner.send(f"/status {NIK_A}", expect="Faskes pertama")
        await wait_for(lambda: status.deleted, "the /status <NIK> message deleted")
        card = owner.last
        assert card.protected, "a status card cannot be forwarded"
        owner_person = SandboxBackend().participant(Identifier(IdKind.NIK, NIK_B))
        assert owner_person.name in card.text
    stderr = bot.stderr
    assert "stopped cleanly" in stderr
    secrets = [TOKEN, NIK_A, NIK_B, "3174 0145 0690 0011", CARD_A, person.name,
               owner_person.name, person.phone, person.phone[3:], *(s["to"] for s in bot.sms),
               *(re.findall(r"\b\d{6}\b", " ".join(s["message"] for s in bot.sms)))]
    secrets += [m.name for m in owner_person.family]
    leaked = [s for s in secrets if s and s in stderr]
    assert leaked == [], "reached the DEBUG log"


async def test_over_http_an_erase_leaves_no_byte_no_chat_id_and_no_old_challenge(
        tmp_path: Path) -> None:
    chat_id = 734_512_908
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(chat_id, title="Dewi")
        await chat.consent()
        await chat.add(NIK_A, "Ibu")
        await chat.add(NIK_B, "Ayah")
        await chat.send("/status semua", expect="Status semua akun (2)")
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(NIK_C, expect="Kode OTP 6 angka sudah dikirim")
        master = Vault(base64.b64decode((bot.data_dir / "master.key").read_text()))
        (wrapped,) = bot.read_db("SELECT wrapped FROM chat_keys WHERE chat_id = ?", chat_id)[0]
        key = Vault(unwrap(master, chat_id, bytes(wrapped)))  # the chat's own data key
        (ct,) = bot.read_db("SELECT payload_ct FROM challenges WHERE chat_id = ?", chat_id)[0]
        payload = json.loads(key.decrypt(bytes(ct), Vault.aad("challenges", chat_id, "live",
                                                               "payload")))
        assert set(payload) == {"v", "purpose", "kind", "value", "evict", "phone"}, \
            "before the code, the challenge holds only what the code needs"
        blobs = [bytes(v) for row in bot.read_db(
            "SELECT nik_index, nik_ct, card_ct, name_ct, phone_ct, label_ct, status_ct "
            "FROM accounts WHERE chat_id = ?", chat_id) for v in row if v is not None]
        blobs += [bytes(ct), bytes(wrapped)]
        assert len(blobs) == 16 and all(b[-24:] in bot.files() for b in blobs)

        await chat.send("/hapus_data", expect="Lanjutkan?")
        await chat.tap("Ya, hapus semua", expect="sudah dihapus")
        files = bot.files()
        left = [b for b in blobs if b[-24:] in files]
        assert left == [], f"{len(left)} of {len(blobs)} ciphertexts still in the files"
        for table, in bot.read_db("SELECT name FROM sqlite_schema WHERE type = 'table'"):
            for row in bot.read_db(f"SELECT * FROM {table}"):
                assert chat_id not in row and str(chat_id) not in repr(row), table
        assert bot.read_db("SELECT count(*) FROM rate_events")[0][0] > 0, \
            "the caps survive the erase, keyed by an HMAC of the chat"


async def test_over_http_refreshes_are_served_from_the_cache_and_capped(
        tmp_path: Path) -> None:
    async with RunningBot(tmp_path, STATUS_REFRESH_SECONDS="0") as bot:
        chat = bot.chat(4100)
        await chat.consent()
        await chat.add(NIK_A, "Ibu")
        await chat.send("/status", expect="Diperbarui")
        for _ in range(29):
            await chat.tap("Perbarui")
        assert "Batas pembaruan" not in chat.last.text
        await chat.tap("Perbarui", expect="Batas pembaruan chat ini (30 per jam)")
        assert "Faskes pertama" in chat.last.text
    async with RunningBot(tmp_path) as bot:  # the default: a young status is not refetched
        chat = bot.chat(4200)
        await chat.consent()
        await chat.add(NIK_B, "Ayah")
        await chat.send("/status", expect="Data per")
        for _ in range(100):
            await chat.tap("Perbarui")
        assert "Diperbarui" not in chat.last.text and "Batas" not in chat.last.text


async def test_expired_challenges_are_deleted_at_start(tmp_path: Path) -> None:
    async with RunningBot(tmp_path, OTP_TTL_SECONDS="1") as bot:
        chat = bot.chat(4300)
        await chat.consent()
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(NIK_A, expect="Kode OTP 6 angka sudah dikirim")
        assert len(bot.read_db("SELECT * FROM challenges")) == 1
        await bot.stop()
        import sqlite3

        conn = sqlite3.connect(bot.data_dir / "kk.sqlite3")
        conn.execute("UPDATE challenges SET expires_at = expires_at - 3600")
        conn.commit()
        conn.close()
        await bot.start()
        await wait_for(lambda: not bot.read_db("SELECT * FROM challenges"),
                       "the expired challenge deleted at start")


async def test_only_one_process_serves_a_data_dir_and_backup_runs_beside_it(
        tmp_path: Path) -> None:
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(4400)
        await chat.consent()
        await chat.add(NIK_A, "Ibu")
        before = (bot.data_dir / "master.key").read_text()
        rotated = await acli(tmp_path, "rotate-key", TELEGRAM_BOT_TOKEN=TOKEN)
        assert rotated.returncode == 2, rotated.stderr
        assert len(rotated.stderr.strip().splitlines()) == 1
        assert "in use by another Asisten KK process" in rotated.stderr
        assert (bot.data_dir / "master.key").read_text() == before, "nothing changed"
        second = await spawn_bot(tmp_path, http_env(tmp_path, bot.api))
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 2 and "in use" in err.decode()
        copy = await acli(tmp_path, "backup", str(tmp_path / "copy.sqlite3"))
        assert copy.returncode == 0, copy.stderr
        await chat.send("/akun", expect="Akun JKN Anda (1/3)")  # the bot is unaffected
    import sqlite3

    conn = sqlite3.connect(tmp_path / "copy.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (label_ct, slot) = conn.execute("SELECT label_ct, slot FROM accounts").fetchone()
        (wrapped,) = conn.execute("SELECT wrapped FROM chat_keys WHERE chat_id = 4400").fetchone()
    finally:
        conn.close()
    vault = Vault(unwrap(Vault(base64.b64decode(before)), 4400, bytes(wrapped)))  # its chat key
    assert vault.decrypt(bytes(label_ct), Vault.aad("accounts", 4400, slot, "label")) == "Ibu"
    assert (await acli(tmp_path, "rotate-key")).returncode == 0, "free once the bot stopped"


def test_unsafe_settings_refuse_to_start(tmp_path: Path) -> None:
    vclaim = {"JKN_BACKEND": "vclaim", "VCLAIM_BASE_URL": "https://bpjs.example/vclaim",
              "VCLAIM_CONS_ID": "1", "VCLAIM_SECRET_KEY": "s", "VCLAIM_USER_KEY": "u"}
    console = cli(tmp_path, "backup", str(tmp_path / "x"), **vclaim)
    assert console.returncode == 2 and "OTP_SENDER" in console.stderr
    assert len(console.stderr.strip().splitlines()) == 1
    sandbox = cli(tmp_path, "backup", str(tmp_path / "x"), OTP_SENDER="console")
    assert "no database" in sandbox.stderr, "console is fine with the sandbox"
    for url, ok in (("http://sms.example.id/send", False), ("http://10.0.0.5/send", False),
                    ("http://127.0.0.1:9/send", True), ("http://localhost:9/send", True),
                    ("http://[::1]:9/send", True), ("https://sms.example.id/send", True)):
        # `backup` reads every setting and stops at "no database" once they are accepted
        result = cli(tmp_path, "backup", str(tmp_path / "x"), OTP_SENDER="http",
                     SMS_GATEWAY_URL=url, SMS_GATEWAY_TOKEN="rahasia", **vclaim)
        assert result.returncode == 2
        named = result.stderr.strip().splitlines()
        assert len(named) == 1, named
        assert ("SMS_GATEWAY_URL" in named[0]) is not ok, (url, named)
        assert ("no database" in named[0]) is ok, (url, named)
        assert "rahasia" not in result.stderr


async def test_a_kill_right_after_the_code_notice_keeps_the_flow(tmp_path: Path) -> None:
    """SIGKILL, not a graceful stop: the per-update persistence write is what keeps it."""
    async with RunningBot(tmp_path) as bot:
        chat = bot.chat(4500)
        await chat.consent()
        await chat.send("/tambah_kk", expect="Kirim")
        await chat.send(NIK_A, expect="Kode OTP 6 angka sudah dikirim")
        await chat.send(bot.last_code(), expect="Kode benar")
        # written by the processor right after the handler's last message (a few ms)
        await wait_for(lambda: bot.read_db("SELECT state FROM conversations WHERE chat_id "
                                           "= 4500") == [("3",)],
                       "ASK_LABEL on disk before any stop", timeout=10)
        assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
        await bot.start()
        await chat.send("Ibu", expect="Tersimpan")
