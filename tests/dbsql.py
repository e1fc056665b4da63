"""Test-only SQL against a :class:`storage.db.Database`: each call is one unit of work."""

from __future__ import annotations

import sqlite3

from storage.db import Database, immediate


async def query(db: Database, sql: str, *params: object) -> list[sqlite3.Row]:
    return await db.run(lambda conn: conn.execute(sql, params).fetchall())


async def query_one(db: Database, sql: str, *params: object) -> sqlite3.Row | None:
    rows = await query(db, sql, *params)
    return rows[0] if rows else None


async def execute(db: Database, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """Statements (SQL, or SQL with its parameters) in one ``BEGIN IMMEDIATE`` … ``COMMIT``."""
    def unit(conn: sqlite3.Connection) -> None:
        with immediate(conn):
            for statement in statements:
                sql, params = (statement, ()) if isinstance(statement, str) else statement
                conn.execute(sql, params)
    await db.run(unit)


async def total_changes(db: Database) -> int:
    return await db.run(lambda conn: conn.total_changes)


async def schema_columns(db: Database) -> dict[str, set[str]]:
    """Every table of the store and its columns, read from the engine's own catalogue."""
    if db.engine == "postgres":
        found: dict[str, set[str]] = {}
        for row in await query(db, "SELECT table_name, column_name FROM "
                                   "information_schema.columns WHERE table_schema = "
                                   "current_schema()"):
            found.setdefault(str(row["table_name"]), set()).add(str(row["column_name"]))
        return found
    tables = [str(r["name"]) for r in await query(
        db, "SELECT name FROM sqlite_schema WHERE type = 'table'")]
    return {table: {str(r["name"]) for r in await query(db, f"PRAGMA table_info({table})")}
            for table in tables}
