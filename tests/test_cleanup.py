"""Forgetting under a reader: an erase (and every other deletion) never holds another chat
up, the reply says when encrypted copies are still in the file, and they are gone once the
reader leaves (issue 18, item 2).

The reader is what ``python -m bot backup`` is to the bot: another connection holding a
read snapshot of ``kk.sqlite3``, which keeps the WAL from being checkpointed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot import texts
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from storage.crypto import Vault
from tests.conftest import NIK_A, NIK_B, NIK_C, NIK_D, Phone, add_account, consent
from tests.dbsql import query

#: How long the reader holds the database in the measured erase (the issue asks for 15 s).
READER_SECONDS = 15.0
PENDING = "salinan terenkripsinya masih ada"


class Written:
    """Every ciphertext the vault makes, with the associated data that places it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.blobs: list[tuple[str, bytes]] = []
        real = Vault.encrypt

        def recording(vault: Vault, plaintext: str, aad: bytes) -> bytes:
            blob = real(vault, plaintext, aad)
            self.blobs.append((aad.decode(), blob))
            return blob

        monkeypatch.setattr(Vault, "encrypt", recording)

    def of_chat(self, chat_id: int) -> list[bytes]:
        return [blob for aad, blob in self.blobs if aad.split("|")[1] == str(chat_id)]

    async def forgotten(self, services: Services) -> list[bytes]:
        """Ciphertexts of accounts and codes that no row holds any more."""
        slots = {str(row["slot"]) for row in await query(services.db, "SELECT slot FROM accounts")}
        live = {bytes(row["payload_ct"])
                for row in await query(services.db, "SELECT payload_ct FROM challenges")}
        gone = []
        for aad, blob in self.blobs:
            table, _, row, _ = aad.split("|")
            if (table == "accounts" and row not in slots) or (
                    table == "challenges" and blob not in live):
                gone.append(blob)
        return gone


def readable(blobs: list[bytes], data_dir: Path) -> list[bytes]:
    """The ciphertexts whose sealed part is still somewhere in the database or its WAL."""
    files = b"".join(p.read_bytes() for p in data_dir.glob("kk.sqlite3*") if p.is_file())
    return [blob for blob in blobs if blob[17:] in files]


@contextmanager
def reader_holding(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A second connection in the middle of a read, as a backup copying the file is."""
    conn = sqlite3.connect(data_dir / "kk.sqlite3", isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM accounts").fetchone()
        yield conn
    finally:
        conn.close()


async def reply_delay(bot: BotHarness, chat: EmulatedChat, text: str) -> float:
    """Seconds from sending ``text`` until the bot's reply arrives in the chat."""
    before = len(chat.bot_messages)
    started = time.perf_counter()
    bot.emulator.user_sends(chat.chat_id, text)
    while len(chat.bot_messages) == before:
        await asyncio.sleep(0.0005)
    return time.perf_counter() - started


async def test_an_erase_under_a_15_s_reader_holds_no_other_chat_up_and_its_bytes_go_after(
        bot: BotHarness, phone: Phone, services: Services, data_dir: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    written = Written(monkeypatch)
    erasing, other = bot.chat(1001, title="Ani"), bot.chat(2002, title="Budi")
    for chat, niks in ((erasing, (NIK_A, NIK_B)), (other, (NIK_C,))):
        await consent(chat)
        for nik in niks:
            await add_account(chat, phone, nik, nik[-4:])
    ciphertexts = written.of_chat(1001)
    assert len(ciphertexts) >= 10
    # The same loop without an erase: on a loaded machine p99 is noise, not the erase.
    baseline, until = [], time.monotonic() + 2.0
    while time.monotonic() < until:
        baseline.append(await reply_delay(bot, other, "/akun"))
        await asyncio.sleep(0.01)
    base_p99 = statistics.quantiles(baseline, n=100)[98]
    await erasing.send("/hapus_data")
    prompt = erasing.last_message

    with reader_holding(data_dir) as reader:
        loop = asyncio.get_running_loop()
        leaves = loop.call_later(READER_SECONDS, reader.close)  # as a backup finishing
        started = time.monotonic()
        tap = next(data for label, data in prompt.buttons if label == texts.ERASE_YES_BUTTON)
        bot.emulator.user_taps(1001, prompt.message_id, tap)
        delays = []
        while time.monotonic() - started < READER_SECONDS - 1.0:
            delays.append(await reply_delay(bot, other, "/akun"))
            await asyncio.sleep(0.01)
        await bot.settle()
        answered = erasing.last_message.text
        left_while_read = len(readable(ciphertexts, data_dir))
        pending = services.db.cleanup_pending
        leaves.cancel()
    p99 = statistics.quantiles(delays, n=100)[98] if len(delays) >= 2 else delays[0]
    with capsys.disabled():
        print(f"\n[figures] /akun of another chat during an erase with a {READER_SECONDS:.0f} s "
              f"reader: {len(delays)} answers, median {statistics.median(delays) * 1000:.1f}"
              f" ms, p99 {p99 * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms; ciphertexts "
              f"left while the reader held: {left_while_read} of {len(ciphertexts)}; p99 "
              f"without an erase {base_p99 * 1000:.1f} ms")
    # The bound is 100 ms; on a machine busy with other work the bound grows with
    # the same run's p99 without an erase (a held-up erase costs 15 s, far above either).
    bound = max(0.100, 4 * base_p99)
    assert p99 < bound, f"p99 {p99 * 1000:.0f} ms of another chat's /akun during the erase"
    assert "Semua data Anda sudah dihapus" in answered
    assert pending and left_while_read > 0, "the reader kept the old pages (the test's premise)"
    assert PENDING in answered, "the reply says that copies are still in the file"
    assert [a for a in await services.accounts.list(1001)] == [], "the rows are gone at once"

    await asyncio.wait_for(services.db.wait_clean(), 15)
    left = readable(ciphertexts, data_dir)
    with capsys.disabled():
        print(f"[figures] ciphertexts left once the reader left: {len(left)} of "
              f"{len(ciphertexts)}")
    assert left == [], f"{len(left)} of {len(ciphertexts)} ciphertexts still readable"
    assert (data_dir / "kk.sqlite3-wal").stat().st_size == 0
    assert [a.label for a in await services.accounts.list(2002)] == ["0033"]


async def test_every_other_deletion_under_a_reader_answers_at_once_and_cleans_up_after(
        bot: BotHarness, phone: Phone, services: Services, data_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """/hapus_kk, an eviction (with the used code), a dropped code: each answers at once
    with the truth while a reader holds the file, and leaves no byte once it is gone."""
    written = Written(monkeypatch)
    remover, evicter, dropper = bot.chat(1001), bot.chat(2002), bot.chat(3003)
    for chat in (remover, evicter, dropper):
        await consent(chat)
    await add_account(remover, phone, NIK_A, "Satu")
    await add_account(remover, phone, NIK_B, "Dua")
    for nik in (NIK_A, NIK_B, NIK_C):
        await add_account(evicter, phone, nik, nik[-4:])
    with reader_holding(data_dir):
        started = time.monotonic()
        await remover.send("/hapus_kk")
        await remover.tap("Satu")
        await remover.tap(texts.REMOVE_YES_BUTTON)
        assert "sudah dihapus dari daftar" in remover.last_text
        assert PENDING in remover.last_text, "/hapus_kk tells the truth"
        await add_account(evicter, phone, NIK_D, "Baru")  # evicts the oldest, uses a code
        assert "dikeluarkan dari daftar" in evicter.reply and PENDING in evicter.reply
        await dropper.send("/tambah_kk")
        await dropper.send(NIK_C)
        await dropper.send("/batal")
        assert await services.otp.challenge(3003) is None
        assert time.monotonic() - started < 5, "nothing waited for the reader"
        forgotten = await written.forgotten(services)
        assert len(forgotten) >= 14  # five fields of two accounts, three codes
        assert readable(forgotten, data_dir), "the reader kept old pages (the premise)"
        assert services.db.cleanup_pending
    await asyncio.wait_for(services.db.wait_clean(), 15)
    left = readable(forgotten, data_dir)
    assert left == [], f"{len(left)} of {len(forgotten)} forgotten ciphertexts still readable"
    assert not services.db.cleanup_pending
    await remover.send("/hapus_kk")
    await remover.tap("Dua")
    await remover.tap(texts.REMOVE_YES_BUTTON)
    assert PENDING not in remover.last_text, "without a reader it is clean at once"


async def test_a_used_code_leaves_no_copy_of_its_payload(
        chat: EmulatedChat, phone: Phone, services: Services, data_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepting a code and saving the account deletes the challenge: its payload (the
    identifier typed, the phone) leaves the WAL at once, not at the next erase."""
    written = Written(monkeypatch)
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Satu")
    payloads = [blob for aad, blob in written.blobs if aad.startswith("challenges|")]
    assert payloads and await services.otp.challenge(chat.chat_id) is None
    assert readable(payloads, data_dir) == [], "the used code's payload is still in a file"
