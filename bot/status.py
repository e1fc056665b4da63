"""A cached account's status: from the cache while it is young, else from the backend.

A status younger than ``refresh_seconds`` (``STATUS_REFRESH_SECONDS``) is served from the
cache, so a hundred taps on 🔄 Perbarui cost no backend call; a chat makes at most
``Caps.backend_hourly`` backend calls an hour (the operator's VClaim quota is shared by
everyone). When the backend fails or the chat is over its budget, the last known status is
shown with its time; nothing cached is ever lost.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.accounts import Account, AccountService
from bot.identity import Identifier, IdKind
from bot.jkn.base import JknBackend, JknError, JknTimeout, Participant

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
LOOKUP_TIMEOUT = 20.0


class Source(enum.StrEnum):
    LIVE = "live"  # just fetched from the backend
    CACHED = "cached"  # younger than STATUS_REFRESH_SECONDS, no call made
    STALE = "stale"  # the backend failed: the last known status
    CAPPED = "capped"  # the chat is over its hourly budget of backend calls


@dataclass(frozen=True, slots=True)
class StatusView:
    account: Account
    participant: Participant | None
    at: float | None  # when the shown data came from the backend
    source: Source
    now: float  # when this view was made

    @property
    def age(self) -> float | None:
        return None if self.at is None else max(0.0, self.now - self.at)


def identifier_of(account: Account) -> Identifier:
    """The identifier an account was added with (and is refreshed by)."""
    if account.lookup_kind == "card":
        return Identifier(IdKind.CARD, account.card)
    return Identifier(IdKind.NIK, account.nik)


async def bounded(call: Awaitable[T]) -> T:
    """Await one backend call with the bot's timeout; a timeout becomes a JknTimeout."""
    try:
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            return await call
    except TimeoutError:
        raise JknTimeout("backend call timed out") from None


async def lookup(backend: JknBackend, identifier: Identifier) -> Participant:
    """One participant look-up with the bot's timeout."""
    return await bounded(backend.lookup(identifier))


class StatusService:
    def __init__(self, backend: JknBackend, accounts: AccountService, *,
                 allow_call: Callable[[int], Awaitable[bool]], refresh_seconds: int) -> None:
        self.backend = backend
        self.accounts = accounts
        self.allow_call = allow_call
        self.refresh_seconds = refresh_seconds

    def _cached(self, account: Account, source: Source) -> StatusView:
        cached = Participant.from_dict(account.status) if account.status else None
        return StatusView(account, cached, account.status_at, source, self.accounts.clock())

    async def fetch(self, account: Account) -> StatusView:
        now = self.accounts.clock()
        if (account.status is not None and account.status_at is not None
                and now - account.status_at < self.refresh_seconds):
            return self._cached(account, Source.CACHED)
        if not await self.allow_call(account.chat_id):
            return self._cached(account, Source.CAPPED)
        try:
            participant = await lookup(self.backend, identifier_of(account))
        except JknError as exc:
            _LOGGER.warning("status refresh failed: %s", type(exc).__name__)
            return self._cached(account, Source.STALE)
        await self.accounts.save_status(account.chat_id, account.slot, participant.to_dict())
        now = self.accounts.clock()
        return StatusView(account, participant, now, Source.LIVE, now)

    async def fetch_many(self, accounts: list[Account]) -> list[StatusView]:
        return list(await asyncio.gather(*(self.fetch(a) for a in accounts)))
