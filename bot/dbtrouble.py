"""What a storage error means for the person waiting, on either store (SQLite or
PostgreSQL): "busy" (nothing was done; try again soon), "full" (out of disk; nothing was
done) or ``None`` (anything else, including a PostgreSQL connection lost in the middle of
a unit that may have committed: the plain error text, which promises no "nothing
changed")."""

from __future__ import annotations

import sqlite3
from typing import Literal

import psycopg
from psycopg import errors as pg_errors

from storage.pg import ConnectionLost, PgUnavailable

Trouble = Literal["busy", "full"]


def trouble(error: BaseException | None) -> Trouble | None:
    if isinstance(error, sqlite3.OperationalError):
        reason = str(error).lower()
        if "locked" in reason or "busy" in reason:
            return "busy"
        if "full" in reason:
            return "full"
        return None
    if isinstance(error, pg_errors.DiskFull):  # SQLSTATE 53100
        return "full"
    if isinstance(error, ConnectionLost):
        return None
    if isinstance(error, PgUnavailable):
        return "busy"
    # a serialization failure or deadlock past the re-runs, a lock or statement timeout,
    # the server shutting down or unreachable: the transaction did not commit
    if isinstance(error, psycopg.OperationalError):
        return "busy"
    return None
