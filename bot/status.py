"""Fetching a cached account's current status, falling back to the last known one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.accounts import Account, AccountService
from bot.identity import Identifier, IdKind
from bot.jkn.base import JknBackend, JknError, JknTimeout, Participant

_LOGGER = logging.getLogger(__name__)
LOOKUP_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class StatusView:
    account: Account
    participant: Participant | None
    at: float | None
    fresh: bool


async def lookup(backend: JknBackend, identifier: Identifier) -> Participant:
    """One backend call with the bot's timeout; a timeout becomes a JknError."""
    try:
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            return await backend.lookup(identifier)
    except TimeoutError:
        raise JknTimeout("lookup timed out") from None


class StatusService:
    def __init__(self, backend: JknBackend, accounts: AccountService) -> None:
        self.backend = backend
        self.accounts = accounts

    async def fetch(self, account: Account) -> StatusView:
        kind = IdKind.CARD if account.lookup_kind == "card" else IdKind.NIK
        value = account.card if kind is IdKind.CARD else account.nik
        try:
            participant = await lookup(self.backend, Identifier(kind, value))
        except JknError as exc:
            _LOGGER.warning("status refresh failed: %s", type(exc).__name__)
            cached = Participant.from_dict(account.status) if account.status else None
            return StatusView(account, cached, account.status_at, fresh=False)
        await self.accounts.save_status(account.chat_id, account.slot, participant.to_dict())
        return StatusView(account, participant, self.accounts.clock(), fresh=True)

    async def fetch_many(self, accounts: list[Account]) -> list[StatusView]:
        return list(await asyncio.gather(*(self.fetch(a) for a in accounts)))
