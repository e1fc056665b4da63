"""What the reminder rounds need of the database: which chats opted in, and a record per
chat and day so that no reminder is ever sent twice.

A chat's reminder for a day is claimed (``sending``) before it is sent and marked ``sent``
afterwards, in the same transaction that stores the statuses it reported (so a change is
reported once). A claim that never became ``sent`` (a crash in between) is not sent again
that day: the statuses were not stored, so what it would have said comes the next day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

from storage.db import Database, immediate

#: reminder_log rows are only ever looked at for today; a week is plenty.
KEEP_DAYS = 7
#: Inside a unit of work: a status of (chat, slot) encrypted for its column, or None.
Seal = Callable[[sqlite3.Connection, int, str, dict[str, Any]], bytes | None]


class RemindersRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def opted_in(self, after: int | None = None, limit: int = 500
                       ) -> list[tuple[int, list[str]]]:
        """Chats with at least one account opted in, in chat order, a page at a time
        (chats after ``after``): ``(chat_id, slots)``. A page never splits a chat."""
        start = -(2 ** 63) if after is None else after

        def unit(conn: sqlite3.Connection) -> list[tuple[int, list[str]]]:
            rows = conn.execute(
                "SELECT chat_id, slot FROM accounts WHERE remind = 1 AND chat_id > ? "
                "ORDER BY chat_id, created_at LIMIT ?", (start, limit)).fetchall()
            chats: dict[int, list[str]] = {}
            for row in rows:
                chats.setdefault(int(row["chat_id"]), []).append(str(row["slot"]))
            page = list(chats.items())
            if len(rows) == limit and len(page) > 1:
                page.pop()  # its last chat may go on in the next page
            return page
        return await self.db.run(unit)

    async def claim(self, chat_id: int, day: date, now: float) -> bool:
        """Take the chat's reminder for ``day``; False if it was taken (or sent) already."""
        def unit(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute(
                    "INSERT INTO reminder_log (chat_id, day, state, at) VALUES (?, ?, "
                    "'sending', ?) ON CONFLICT (chat_id, day) DO NOTHING",
                    (chat_id, day.isoformat(), now)).rowcount == 1
        return await self.db.run(unit)

    async def claim_held(self, chat_id: int, day: date, now: float, slots: list[str], *,
                         fresh_since: float) -> list[str] | None:
        """Re-read the chat right before a send and claim its reminder for ``day``, in one
        transaction: of ``slots``, those the chat still holds, opted in and verified after
        ``fresh_since``. None if the day's reminder was taken (or sent) already; an empty
        list, and no claim, when none is left (an erased chat gets no row back)."""
        def unit(conn: sqlite3.Connection) -> list[str] | None:
            with immediate(conn):
                rows = conn.execute(
                    "SELECT slot FROM accounts WHERE chat_id = ? AND remind = 1 AND "
                    "verified_at > ?", (chat_id, fresh_since)).fetchall()
                held = [str(slot) for (slot,) in rows if str(slot) in slots]
                if not held:
                    return []
                claimed = conn.execute(
                    "INSERT INTO reminder_log (chat_id, day, state, at) VALUES (?, ?, "
                    "'sending', ?) ON CONFLICT (chat_id, day) DO NOTHING",
                    (chat_id, day.isoformat(), now)).rowcount == 1
                return held if claimed else None
        return await self.db.run(unit)

    async def release(self, chat_id: int, day: date) -> None:
        """Telegram refused the reminder outright: a later round may try again."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("DELETE FROM reminder_log WHERE chat_id = ? AND day = ? AND "
                             "state = 'sending'", (chat_id, day.isoformat()))
        await self.db.run(unit)

    async def sent(self, chat_id: int, day: date, now: float,
                   statuses: Iterable[tuple[str, dict[str, Any]]], seal: Seal) -> None:
        """The reminder reached the chat: record it, and store the statuses it was based on
        (encrypted by ``seal``, the accounts repository's, under the chat's key) as the
        ones the bot last saw."""
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("UPDATE reminder_log SET state = 'sent', at = ? WHERE chat_id = ? "
                             "AND day = ?", (now, chat_id, day.isoformat()))
                updates = [(blob, now, chat_id, slot) for slot, status in statuses
                           if (blob := seal(conn, chat_id, slot, status)) is not None]
                conn.executemany("UPDATE accounts SET status_ct = ?, status_at = ? "
                                 "WHERE chat_id = ? AND slot = ?", updates)
        await self.db.run(unit)

    async def prune(self, today: date) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute("DELETE FROM reminder_log WHERE day < ?",  # ISO dates sort
                             ((today - timedelta(days=KEEP_DAYS)).isoformat(),))
        await self.db.run(unit)

    async def round_done(self, day: date) -> bool:
        return await self.db.get_meta(f"reminder_round:{day.isoformat()}") is not None

    async def mark_round_done(self, day: date) -> None:
        await self.db.set_meta(f"reminder_round:{day.isoformat()}", b"done")
