"""The code store at its edges (issue 19, found by mutation testing of storage/otp_repo.py):
what a row of ``challenges`` and ``rate_events`` holds, which label its payload is sealed
under, and what each outcome of a check leaves behind."""

from __future__ import annotations

import json

from bot.otp import SendOutcome
from bot.services import Services
from storage.crypto import Vault
from tests.conftest import NIK_A, PHONE, Phone
from tests.dbsql import query_one

CHAT = 41
#: The label a challenge's payload is sealed under. A database written today must open
#: under every later version: a change to it is a migration, not a refactoring.
CHALLENGE_AAD = b"challenges|41|live|payload"


async def _issue(services: Services, chat: int = CHAT, *, owner: bool = False) -> None:
    result = await services.otp.issue(chat, purpose="add", nik=NIK_A, phone=PHONE,
                                      payload={"kind": "nik", "value": NIK_A}, owner=owner)
    assert result.outcome is SendOutcome.SENT


async def test_a_challenge_payload_is_sealed_under_its_fixed_label(services: Services) -> None:
    await _issue(services)
    row = await query_one(services.db, "SELECT payload_ct FROM challenges WHERE chat_id = ?",
                          CHAT)
    assert row is not None
    plain = json.loads(services.vault.decrypt(bytes(row["payload_ct"]), CHALLENGE_AAD))
    assert plain == {"kind": "nik", "value": NIK_A, "phone": PHONE}
    assert Vault.aad("challenges", CHAT, "live", "payload") == CHALLENGE_AAD


async def test_a_challenge_written_under_the_fixed_label_opens_and_its_code_works(
        services: Services, phone: Phone) -> None:
    await _issue(services)
    sealed = services.vault.encrypt(json.dumps({"kind": "nik", "value": "x", "phone": PHONE}),
                                    CHALLENGE_AAD)
    await services.db.run(lambda conn: conn.execute(
        "UPDATE challenges SET payload_ct = ? WHERE chat_id = ?", (sealed, CHAT)))
    challenge = await services.otp.challenge(CHAT)
    assert challenge is not None and challenge.payload["value"] == "x"
    result = await services.otp.verify(CHAT, phone.last_code())
    assert result.outcome.value == "ok" and result.payload is not None
    assert result.payload["value"] == "x"
