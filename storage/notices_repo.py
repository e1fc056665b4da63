"""What the operator's notices (/pengumuman) need of the database.

A notice is written as a ``draft`` (the preview the operator confirms), becomes
``sending`` once confirmed (exactly once: a second tap finds it taken) and ``done`` when
every consented chat has been gone through. Each chat's delivery is claimed (a
``notice_deliveries`` row in state ``sending``) in the same transaction that checks the
chat still has consent, before the message is sent, and marked ``sent`` (or ``refused``)
afterwards. A restart resumes a ``sending`` notice with the chats that have no row yet: a
claim whose outcome was never learned (a crash mid-send) stays, so nobody is messaged
twice (the reminder rounds' rule, docs/decisions.md 29).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from storage.db import Database, count, immediate

#: Finished notices (and their delivery rows, which hold chat ids) are kept this long.
KEEP_SECONDS = 30 * 86_400
#: An unconfirmed draft is forgotten after a day.
DRAFT_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class StoredNotice:
    id: int
    body: str
    state: str


@dataclass(frozen=True, slots=True)
class Tally:
    """How a notice's deliveries went (counts only)."""

    sent: int
    refused: int
    unknown: int


class NoticesRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def draft(self, body: str, now: float) -> int:
        """Store a notice awaiting confirmation; its id."""
        def unit(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                number = count(conn, "SELECT COALESCE(MAX(id), 0) FROM notices") + 1
                conn.execute("INSERT INTO notices (id, body, state, created_at) VALUES "
                             "(?, ?, 'draft', ?)", (number, body, now))
            return number
        return await self.db.run(unit)

    async def get(self, notice_id: int) -> StoredNotice | None:
        def unit(conn: sqlite3.Connection) -> StoredNotice | None:
            row = conn.execute("SELECT id, body, state FROM notices WHERE id = ?",
                               (notice_id,)).fetchone()
            return None if row is None else StoredNotice(int(row["id"]), str(row["body"]),
                                                         str(row["state"]))
        return await self.db.run(unit)

    async def _move(self, notice_id: int, before: str, after: str) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute("UPDATE notices SET state = ? WHERE id = ? AND state = ?",
                                    (after, notice_id, before)).rowcount == 1
        return await self.db.run(unit)

    async def confirm(self, notice_id: int) -> bool:
        """draft → sending; False when it was confirmed, cancelled or forgotten already."""
        return await self._move(notice_id, "draft", "sending")

    async def cancel(self, notice_id: int) -> bool:
        """draft → cancelled; False when it is no longer a draft."""
        return await self._move(notice_id, "draft", "cancelled")

    async def sending(self) -> list[int]:
        """Notices confirmed and not finished (to resume after a restart)."""
        def unit(conn: sqlite3.Connection) -> list[int]:
            return [int(row["id"]) for row in conn.execute(
                "SELECT id FROM notices WHERE state = 'sending' ORDER BY id").fetchall()]
        return await self.db.run(unit)

    async def waiting(self, notice_id: int, after: int | None, limit: int = 500) -> list[int]:
        """Consented chats after ``after`` (in chat order) with no delivery row yet."""
        start = -(2 ** 63) if after is None else after

        def unit(conn: sqlite3.Connection) -> list[int]:
            return [int(row["chat_id"]) for row in conn.execute(
                "SELECT c.chat_id FROM consent c WHERE c.chat_id > ? AND NOT EXISTS "
                "(SELECT 1 FROM notice_deliveries d WHERE d.notice_id = ? AND "
                "d.chat_id = c.chat_id) ORDER BY c.chat_id LIMIT ?",
                (start, notice_id, limit)).fetchall()]
        return await self.db.run(unit)

    async def claim(self, notice_id: int, chat_id: int, now: float) -> bool:
        """Take the chat's delivery right before the send: False when it was taken already,
        or the chat has no consent any more (an erased chat gets no row back)."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                if not count(conn, "SELECT count(*) FROM consent WHERE chat_id = ?", chat_id):
                    return False
                return conn.execute(
                    "INSERT INTO notice_deliveries (notice_id, chat_id, state, at) VALUES "
                    "(?, ?, 'sending', ?) ON CONFLICT (notice_id, chat_id) DO NOTHING",
                    (notice_id, chat_id, now)).rowcount == 1
        return await self.db.run(unit)

    async def release(self, notice_id: int, chat_id: int) -> None:
        """Claimed but certainly not sent (the bot stopped first): a resume may send it."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("DELETE FROM notice_deliveries WHERE notice_id = ? AND "
                             "chat_id = ? AND state = 'sending'", (notice_id, chat_id))
        await self.db.run(unit)

    async def settle(self, notice_id: int, chat_id: int, state: str, now: float) -> None:
        """The send's outcome: ``sent`` or ``refused`` (Telegram refused it for good)."""
        assert state in ("sent", "refused")

        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("UPDATE notice_deliveries SET state = ?, at = ? WHERE "
                             "notice_id = ? AND chat_id = ?", (state, now, notice_id, chat_id))
        await self.db.run(unit)

    async def finish(self, notice_id: int, now: float) -> bool:
        """sending → done; True for the one caller that finished it."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute("UPDATE notices SET state = 'done', finished_at = ? "
                                    "WHERE id = ? AND state = 'sending'",
                                    (now, notice_id)).rowcount == 1
        return await self.db.run(unit)

    async def tally(self, notice_id: int) -> Tally:
        def unit(conn: sqlite3.Connection) -> Tally:
            found = {str(row["state"]): int(row["n"]) for row in conn.execute(
                "SELECT state, count(*) AS n FROM notice_deliveries WHERE notice_id = ? "
                "GROUP BY state", (notice_id,)).fetchall()}
            return Tally(found.get("sent", 0), found.get("refused", 0),
                         found.get("sending", 0))
        return await self.db.run(unit)

    async def prune(self, now: float) -> None:
        """Forget finished notices after a month and unconfirmed drafts after a day."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("DELETE FROM notice_deliveries WHERE notice_id IN (SELECT id "
                             "FROM notices WHERE state = 'done' AND finished_at < ?)",
                             (now - KEEP_SECONDS,))
                conn.execute("DELETE FROM notices WHERE (state = 'done' AND finished_at < ?) "
                             "OR (state IN ('draft', 'cancelled') AND created_at < ?)",
                             (now - KEEP_SECONDS, now - DRAFT_SECONDS))
        await self.db.run(unit)
