"""What storage limitation (RETENTION_DAYS) needs of the database: the last day each chat
that holds data was active, the day it was warned, and the erase of a chat that stayed
away past both.

``chat_activity`` holds one row per chat that holds data: the chat id (already in every
other table of the chat), the last day (Asia/Jakarta, ``YYYY-MM-DD``) it sent anything and
the day it was warned. No time of day, no count, nothing of what was sent. A chat that has
data but no row (data from before this table, or consent given today) gets today: the
clock starts, it is never erased early. The row goes with the chat (``CHAT_TABLES``).
"""

from __future__ import annotations

import sqlite3

from storage.db import CHAT_TABLES, Database, immediate

#: Tables whose rows make a chat one that holds data (the rest follow from these).
HOLDING = ("consent", "accounts", "chat_data", "conversations", "challenges")


class RetentionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def touch(self, chat_id: int, day: str) -> None:
        """The chat was active on ``day``: it moves forward, and a warning is withdrawn.
        A chat with no row (no data) gets none: nothing is stored about strangers."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("UPDATE chat_activity SET day = ?, warned_on = NULL "
                             "WHERE chat_id = ? AND day < ?", (day, chat_id, day))
        await self.db.run(unit)

    async def adopt(self, day: str) -> int:
        """Give ``day`` to every chat that holds data and has no row yet; how many."""
        held = " UNION ".join(f"SELECT chat_id FROM {table}" for table in HOLDING)  # noqa: S608

        def unit(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return conn.execute(
                    f"INSERT INTO chat_activity (chat_id, day) SELECT held.chat_id, ? "  # noqa: S608
                    f"FROM ({held}) held WHERE held.chat_id IS NOT NULL "
                    f"ON CONFLICT (chat_id) DO NOTHING", (day,)).rowcount
        return await self.db.run(unit)

    async def to_warn(self, last_day: str, limit: int = 500) -> list[int]:
        """Chats not active since ``last_day`` (inclusive) and not warned yet."""
        def unit(conn: sqlite3.Connection) -> list[int]:
            return [int(row["chat_id"]) for row in conn.execute(
                "SELECT chat_id FROM chat_activity WHERE day <= ? AND warned_on IS NULL "
                "ORDER BY chat_id LIMIT ?", (last_day, limit)).fetchall()]
        return await self.db.run(unit)

    async def claim_warning(self, chat_id: int, today: str, last_day: str) -> bool:
        """Mark the chat warned today, right before the warning is sent; False when it was
        warned already or has been active since (then nothing is sent)."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute(
                    "UPDATE chat_activity SET warned_on = ? WHERE chat_id = ? AND "
                    "warned_on IS NULL AND day <= ?", (today, chat_id, last_day)).rowcount == 1
        return await self.db.run(unit)

    async def unclaim_warning(self, chat_id: int, today: str) -> None:
        """The warning was certainly not sent (the bot stopped first): warn again later."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("UPDATE chat_activity SET warned_on = NULL WHERE chat_id = ? "
                             "AND warned_on = ?", (chat_id, today))
        await self.db.run(unit)

    async def due(self, last_day: str, warned_by: str, limit: int = 500) -> list[int]:
        """Chats not active since ``last_day`` and warned on or before ``warned_by``."""
        def unit(conn: sqlite3.Connection) -> list[int]:
            return [int(row["chat_id"]) for row in conn.execute(
                "SELECT chat_id FROM chat_activity WHERE day <= ? AND warned_on IS NOT NULL "
                "AND warned_on <= ? ORDER BY chat_id LIMIT ?",
                (last_day, warned_by, limit)).fetchall()]
        return await self.db.run(unit)

    async def erase_if_due(self, chat_id: int, last_day: str, warned_by: str) -> bool | None:
        """Erase every row of the chat, as /hapus_data does, if it is still due (checked in
        the erase's own transaction: activity a moment ago keeps the chat). None when it
        is not due any more; else whether the files are clean now (``Database.scrub``)."""
        def unit(conn: sqlite3.Connection) -> bool | None:
            with immediate(conn):
                still = conn.execute(
                    "SELECT 1 FROM chat_activity WHERE chat_id = ? AND day <= ? AND "
                    "warned_on IS NOT NULL AND warned_on <= ?",
                    (chat_id, last_day, warned_by)).fetchone()
                if still is None:
                    return None
                for table in CHAT_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE chat_id = ?",  # noqa: S608
                                 (chat_id,))
                conn.execute("DELETE FROM user_data WHERE user_id = ?", (chat_id,))
            self.db.erased(chat_id)
            return self.db.scrub(conn)
        return await self.db.run(unit)
