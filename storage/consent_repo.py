"""The chats that agreed to the privacy terms (``/start`` → ``Saya setuju``)."""

from __future__ import annotations

import sqlite3

from storage.db import Database, immediate


class ConsentRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, chat_id: int) -> float:
        """Record (or keep) the chat's consent; returns its timestamp."""
        now = self.db.clock()

        def unit(conn: sqlite3.Connection) -> float:
            with immediate(conn):
                conn.execute("INSERT INTO consent (chat_id, consented_at) VALUES (?, ?) "
                             "ON CONFLICT (chat_id) DO NOTHING", (chat_id, now))
                row = conn.execute("SELECT consented_at FROM consent WHERE chat_id = ?",
                                   (chat_id,)).fetchone()
            return float(row["consented_at"])
        return await self.db.run(unit)

    async def consented_at(self, chat_id: int) -> float | None:
        def unit(conn: sqlite3.Connection) -> float | None:
            row = conn.execute("SELECT consented_at FROM consent WHERE chat_id = ?",
                               (chat_id,)).fetchone()
            return float(row["consented_at"]) if row else None
        return await self.db.run(unit)
