"""The time window of every cap (issue 19, class 1).

Each cap is filled at ``T``, then asked again just past the shorter window a tired
developer could have written (a day read as an hour, an hour as a minute) and just inside
the real one: still refused; and just past the real window: allowed again. A window
written too long fails the last step, one written too short the first two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.crypto import Vault, generate_master_key
from storage.db import Database
from storage.otp_repo import DAY, HOUR, Caps, Keys, OtpRepo, SendBlock, VerifyOutcome
from tests.conftest import NIK_A, NIK_B, PHONE
from tests.dbsql import query_one

T = 1_000_000.0
MINUTE = 60.0


class Otp:
    def __init__(self, db: Database, repo: OtpRepo, vault: Vault) -> None:
        self.db, self.repo, self.vault = db, repo, vault

    def keys(self, chat: int, nik: str = NIK_A, phone: str = PHONE) -> Keys:
        v = self.vault
        return Keys(v.chat_key(chat), v.participant_key(nik), v.phone_key(phone))

    async def send(self, keys: Keys, at: float) -> int | SendBlock:
        return await self.repo.reserve_send(keys, at)


async def _open(tmp_path: Path, caps: Caps | None = None) -> Otp:
    db = await Database.open(tmp_path / "kk.sqlite3")
    vault = Vault(generate_master_key())
    return Otp(db, OtpRepo(db, vault, caps), vault)


@pytest.fixture
async def otp(tmp_path: Path) -> AsyncIterator[Otp]:
    opened = await _open(tmp_path)
    yield opened
    await opened.db.close()


def test_the_windows_are_an_hour_and_a_day() -> None:
    assert (HOUR, DAY) == (3600.0, 86400.0)


async def test_the_phone_hour_holds_for_the_whole_hour_and_not_longer(otp: Otp) -> None:
    for i in range(5):  # five chats, one phone
        assert isinstance(await otp.send(otp.keys(i), T), int)
    for later in (2 * MINUTE, HOUR - MINUTE):
        assert await otp.send(otp.keys(5), T + later) is SendBlock.PHONE_HOURLY, later
    assert isinstance(await otp.send(otp.keys(5), T + HOUR + 1), int)


async def test_the_phone_day_holds_for_the_whole_day_and_not_longer(otp: Otp) -> None:
    for i in range(5):
        assert isinstance(await otp.send(otp.keys(i), T), int)
    for i in range(5):  # an hour later, five more: ten in the day
        assert isinstance(await otp.send(otp.keys(10 + i), T + HOUR + 1), int)
    for later in (2 * HOUR + 2 * MINUTE, DAY - MINUTE):  # past both hours, inside the day
        assert await otp.send(otp.keys(20), T + later) is SendBlock.PHONE_DAILY, later
    assert isinstance(await otp.send(otp.keys(20), T + DAY + 1), int), \
        "the first five left the day"


async def test_the_chat_day_holds_for_the_whole_day_and_not_longer(otp: Otp) -> None:
    chat_key = otp.vault.chat_key(42)
    for i in range(10):  # one chat, ten phones
        assert isinstance(await otp.send(otp.keys(42, phone=f"+62812345678{i:02d}"), T), int)
    other = otp.keys(42, phone="+6281299999999")
    for later in (HOUR + 2 * MINUTE, DAY - MINUTE):
        assert await otp.send(other, T + later) is SendBlock.CHAT_DAILY, later
        assert await otp.repo.blocked_for_chat(chat_key, T + later) is SendBlock.CHAT_DAILY
    assert await otp.repo.blocked_for_chat(chat_key, T + DAY + 1) is None
    assert isinstance(await otp.send(other, T + DAY + 1), int)


async def test_a_locked_participant_stays_locked_for_the_whole_day(otp: Otp) -> None:
    repo = otp.repo

    async def challenge(chat: int, at: float) -> None:
        await repo.put(chat, purpose="add", keys=otp.keys(chat), code="111111",
                       payload={"kind": "nik"}, now=at, ttl=10 * DAY)

    outcomes = []
    for chat in range(5):  # two wrong codes in each of five chats: ten for the participant
        await challenge(chat, T)
        for _ in range(2):
            outcomes.append((await repo.verify(chat, "222222", now=T, max_attempts=3)).outcome)
    assert outcomes[-1] is VerifyOutcome.LOCKED and outcomes[:-1].count(VerifyOutcome.WRONG) == 9
    for later in (HOUR + 2 * MINUTE, DAY - MINUTE):
        assert await otp.send(otp.keys(50), T + later) is SendBlock.PARTICIPANT_LOCKED, later
        await challenge(60, T + later)  # a challenge made before the lock, say
        result = await repo.verify(60, "111111", now=T + later, max_attempts=3)
        assert result.outcome is VerifyOutcome.LOCKED, later
    assert isinstance(await otp.send(otp.keys(50), T + DAY + 1), int)
    await challenge(60, T + DAY + 1)
    assert (await repo.verify(60, "111111", now=T + DAY + 2, max_attempts=3)).outcome \
        is VerifyOutcome.OK
    other = otp.keys(51, nik=NIK_B, phone="+6281200000051")
    assert isinstance(await otp.send(other, T + HOUR), int), "only that participant was locked"


async def test_the_global_budget_holds_for_the_whole_hour_and_not_longer(tmp_path: Path
                                                                         ) -> None:
    otp = await _open(tmp_path, Caps(global_hourly=3))
    try:
        for i in range(3):
            assert isinstance(await otp.send(otp.keys(i, phone=f"+62812000000{i:02d}"), T), int)
        stranger = otp.keys(7, nik=NIK_B, phone="+6281200000099")
        for later in (2 * MINUTE, HOUR - MINUTE):
            assert await otp.send(stranger, T + later) is SendBlock.GLOBAL_BUDGET, later
            assert await otp.repo.blocked_for_chat(stranger.chat, T + later) \
                is SendBlock.GLOBAL_BUDGET
        assert await otp.repo.blocked_for_chat(stranger.chat, T + HOUR + 1) is None
        assert isinstance(await otp.send(stranger, T + HOUR + 1), int)
    finally:
        await otp.db.close()


async def test_the_lookup_day_holds_for_the_whole_day_and_not_longer(otp: Otp) -> None:
    chat_key = otp.vault.chat_key(9)
    assert [await otp.repo.reserve_lookup(chat_key, T) for _ in range(21)] == [True] * 20 + [
        False]
    for later in (HOUR + 2 * MINUTE, DAY - MINUTE):
        assert await otp.repo.reserve_lookup(chat_key, T + later) is False, later
    assert await otp.repo.reserve_lookup(chat_key, T + DAY + 1) is True
    assert await otp.repo.reserve_lookup(otp.vault.chat_key(10), T) is True, "per chat"


async def test_the_backend_hour_holds_for_the_whole_hour_and_not_longer(otp: Otp) -> None:
    chat_key = otp.vault.chat_key(9)
    assert [await otp.repo.reserve_backend_call(chat_key, T) for _ in range(31)] == \
        [True] * 30 + [False]
    for later in (2 * MINUTE, HOUR - MINUTE):
        assert await otp.repo.reserve_backend_call(chat_key, T + later) is False, later
    assert await otp.repo.reserve_backend_call(chat_key, T + HOUR + 1) is True
    assert await otp.repo.reserve_backend_call(otp.vault.chat_key(10), T) is True, "per chat"


async def test_rate_records_are_kept_a_day_and_pruned_after(otp: Otp) -> None:
    for i in range(3):
        assert isinstance(await otp.send(otp.keys(i, phone=f"+62812000000{i:02d}"), T), int)

    async def records() -> int:
        row = await query_one(otp.db, "SELECT count(*) AS n FROM rate_events")
        return int(row["n"]) if row else -1

    assert await otp.repo.prune(T + DAY - MINUTE) == 0
    assert await records() == 3
    assert await otp.repo.prune(T + DAY + 1) == 3
    assert await records() == 0
