"""Per-chat data keys (issue 24 item 5, docs/decisions.md 52).

Each chat that stores something gets a random 256-bit data key, kept in ``chat_keys``
wrapped (AES-GCM) under the master key with the associated data ``chat_keys|<chat>|key|key``.
Everything of the chat that can identify a person (account fields, the NIK blind index,
challenge payloads, the sealed pending step) is encrypted under :class:`Vault` of that data
key. An erase deletes the ``chat_keys`` row in the transaction that deletes the chat's rows:
whatever copies of those rows linger (dead tuples, WAL segments, replicas, backups) can then
be read only by whoever also holds a copy of the wrapped key *and* the master key of its
time.

A key is created on first need inside the unit of work that writes (``INSERT … ON CONFLICT
DO NOTHING``, then read: two writers agree on one key), and read inside the unit that reads,
so a unit always uses the key the database holds at that moment. Unwrapped keys are cached
per chat (bounded), keyed by the wrapped bytes they came from; an erase drops the entry.

Ciphertexts written before per-chat keys carry the master key's id in their header
(storage/crypto.py): :meth:`ChatKeys.open` decides per ciphertext, and the start-up
conversion (:func:`convert_legacy`) moves them to the chat keys once.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from storage.crypto import Vault, VaultError
from storage.db import Database, immediate

#: How many unwrapped chat keys one process keeps (least recently used go first).
CACHE_LIMIT = 4096
#: Chats converted per transaction by :func:`convert_legacy`.
CONVERT_BATCH = 200
#: The ``meta`` row written when a conversion pass found nothing left under the master key:
#: nothing is ever written under it again, so later starts skip the scan (it read every
#: row: 1.5 s and 150 MB at the start of a 100 000-chat database, decision 52).
CONVERTED = "chat_keys_converted"
SENSITIVE_FIELDS = ("nik", "card", "name", "phone", "label")
#: The key of the sealed pending step in a chat's data (bot/enrolment.py PENDING_KEY).
PENDING_KEY = "pending"


def key_aad(chat_id: int) -> bytes:
    return Vault.aad("chat_keys", chat_id, "key", "key")


def wrap(master: Vault, chat_id: int, raw: bytes) -> bytes:
    """A chat's data key as ``chat_keys.wrapped`` holds it, under ``master``."""
    return master.encrypt(base64.b64encode(raw).decode("ascii"), key_aad(chat_id))


def unwrap(master: Vault, chat_id: int, wrapped: bytes) -> bytes:
    return base64.b64decode(master.decrypt(bytes(wrapped), key_aad(chat_id)))


def open_blob(master: Vault, chat: Vault | None, blob: bytes, aad: bytes) -> str:
    """Decrypt a chat's ciphertext with the key its header names: the chat's data key, or
    (written before per-chat keys, not converted yet) the master key. Raises
    :class:`VaultError` if neither fits (e.g. the chat's key was erased)."""
    blob = bytes(blob)
    error: VaultError | None = None
    for vault in (chat, master):
        if vault is not None and blob[1:5] == vault.key_id:
            try:
                return vault.decrypt(blob, aad)
            except VaultError as exc:
                error = exc
    raise error or VaultError("ciphertext was written under a key this database no longer has")


def is_master(master: Vault, blob: bytes | None) -> bool:
    """The ciphertext was written under the master key (before per-chat keys)."""
    return blob is not None and bytes(blob)[1:5] == master.key_id


class ChatKeys:
    """The chat keys of one database under one master key, with the in-process cache.

    Every method taking ``conn`` runs inside a unit of work (on the database thread)."""

    def __init__(self, master: Vault, limit: int = CACHE_LIMIT) -> None:
        self.master = master
        self.limit = limit
        self._cache: OrderedDict[int, tuple[bytes, Vault]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, db: Database, master: Vault) -> ChatKeys:
        """The one instance per database and master key (its cache is shared by the
        repositories, and :meth:`Database.erased` drops an erased chat's entry)."""
        found = db.key_caches.get(master.key_id)
        if not isinstance(found, ChatKeys):
            found = db.key_caches[master.key_id] = cls(master)
        return found

    # -- the cache ------------------------------------------------------------------------

    def forget(self, chat_id: int) -> None:
        with self._lock:
            self._cache.pop(chat_id, None)

    def cached(self, chat_id: int) -> bool:
        """Whether this process holds the chat's unwrapped key (tests)."""
        with self._lock:
            return chat_id in self._cache

    def _vault(self, chat_id: int, wrapped: bytes) -> Vault:
        with self._lock:
            hit = self._cache.get(chat_id)
            if hit is not None and hit[0] == wrapped:
                self._cache.move_to_end(chat_id)
                return hit[1]
        vault = Vault(unwrap(self.master, chat_id, wrapped))
        with self._lock:
            self._cache[chat_id] = (wrapped, vault)
            self._cache.move_to_end(chat_id)
            while len(self._cache) > self.limit:
                self._cache.popitem(last=False)
        return vault

    # -- inside a unit of work ------------------------------------------------------------

    def load(self, conn: sqlite3.Connection, chat_id: int) -> Vault | None:
        """The chat's key as the database holds it now, or None (it stored nothing yet,
        or was erased)."""
        row = conn.execute("SELECT wrapped FROM chat_keys WHERE chat_id = ?",
                           (chat_id,)).fetchone()
        if row is None:
            self.forget(chat_id)
            return None
        return self._vault(chat_id, bytes(row["wrapped"]))

    def ensure(self, conn: sqlite3.Connection, chat_id: int) -> Vault:
        """The chat's key, created if it has none: ``INSERT … ON CONFLICT DO NOTHING`` then
        read, so two writers (two instances on PostgreSQL) agree on one. Inside the
        writer's transaction, the key is created with the writes (a rollback takes both)."""
        found = self.load(conn, chat_id)
        if found is not None:
            return found
        raw = secrets.token_bytes(32)
        while Vault(raw).key_id == self.master.key_id:  # one in 2**32: ids must differ
            raw = secrets.token_bytes(32)
        conn.execute("INSERT INTO chat_keys (chat_id, wrapped, created_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (chat_id) DO NOTHING",
                     (chat_id, wrap(self.master, chat_id, raw), time.time()))
        found = self.load(conn, chat_id)
        if found is None:
            raise VaultError("the chat's key could not be stored")
        return found

    def open(self, chat: Vault | None, blob: bytes, aad: bytes) -> str:
        return open_blob(self.master, chat, blob, aad)

    # -- async, one hop -------------------------------------------------------------------

    async def get(self, db: Database, chat_id: int) -> Vault | None:
        """The chat's key as the database holds it now (one hop), or None."""
        return await db.run(self.load, chat_id)

    async def seal(self, db: Database, chat_id: int, plaintext: str, aad: bytes) -> bytes:
        """Encrypt under the chat's key (created if needed), in one unit of work."""
        def unit(conn: sqlite3.Connection) -> bytes:
            with immediate(conn):
                return self.ensure(conn, chat_id).encrypt(plaintext, aad)
        return await db.run(unit)

    async def unseal(self, db: Database, chat_id: int, blob: bytes, aad: bytes) -> str:
        """Decrypt a ciphertext of the chat (raises :class:`VaultError`)."""
        def unit(conn: sqlite3.Connection) -> Vault | None:
            return self.load(conn, chat_id)
        chat = await db.run(unit)
        return self.open(chat, blob, aad)


def rewrap_all(conn: sqlite3.Connection, old: Vault, new: Vault, batch: int = 1000) -> int:
    """Inside the rotation's transaction: every chat key re-wrapped under ``new``."""
    done = 0
    last = -(2 ** 63)
    while True:
        rows = conn.execute("SELECT chat_id, wrapped FROM chat_keys WHERE chat_id > ? "
                            "ORDER BY chat_id LIMIT ?", (last, batch)).fetchall()
        if not rows:
            return done
        conn.executemany(
            "UPDATE chat_keys SET wrapped = ? WHERE chat_id = ?",
            [(wrap(new, int(r["chat_id"]), unwrap(old, int(r["chat_id"]), r["wrapped"])),
              int(r["chat_id"])) for r in rows])
        done += len(rows)
        last = int(rows[-1]["chat_id"])


# -- the one conversion of rows written before per-chat keys -------------------------------

Reseal = Callable[[str, bytes], bytes]


def _legacy_chats(conn: sqlite3.Connection, master: Vault, after: int, limit: int
                  ) -> list[int]:
    """Chats (after ``after``, in order) holding at least one ciphertext of the master key.
    The key id is bytes 2-5 of every ciphertext; compared in Python so both engines agree."""
    found: set[int] = set()
    for sql in ("SELECT chat_id, nik_ct AS ct FROM accounts WHERE chat_id > ?",
                "SELECT chat_id, payload_ct AS ct FROM challenges WHERE chat_id > ?",
                "SELECT chat_id, data AS ct FROM chat_data WHERE chat_id > ?"):
        in_table: set[int] = set()
        for row in conn.execute(sql + " ORDER BY chat_id", (after,)):  # streamed on SQLite
            chat_id, ct = int(row["chat_id"]), row["ct"]
            if isinstance(ct, str):
                if _legacy_pending(master, ct) is not None:
                    in_table.add(chat_id)
            elif is_master(master, ct):
                in_table.add(chat_id)
            if len(in_table) >= limit:  # in chat order: the rest come after these
                break
        found |= in_table
    return sorted(found)[:limit]


def is_converted(conn: sqlite3.Connection) -> bool:
    """A conversion pass found no master-key ciphertext left (:data:`CONVERTED`)."""
    return conn.execute("SELECT 1 FROM meta WHERE key = ?", (CONVERTED,)).fetchone() is not None


def _legacy_pending(master: Vault, data: str) -> bytes | None:
    """The sealed step in a chat's data, if it was sealed under the master key."""
    try:
        stored = json.loads(data)
        sealed = stored.get(PENDING_KEY) if isinstance(stored, dict) else None
        blob = base64.b64decode(sealed) if isinstance(sealed, str) else None
    except ValueError:
        return None
    return blob if is_master(master, blob) else None


def _convert_chat(conn: sqlite3.Connection, keys: ChatKeys, chat_id: int) -> None:
    """Inside a transaction: every master-key ciphertext of one chat under its own key,
    the NIK blind index recomputed under that key."""
    master = keys.master
    chat = keys.ensure(conn, chat_id)
    rows = conn.execute("SELECT slot, nik_index, nik_ct, card_ct, name_ct, phone_ct, "
                        "label_ct, status_ct FROM accounts WHERE chat_id = ?",
                        (chat_id,)).fetchall()
    for row in rows:
        slot = str(row["slot"])
        fields = [*SENSITIVE_FIELDS, "status"]
        values: dict[str, bytes | None] = {}
        plain: dict[str, str] = {}
        for name in fields:
            blob = row[f"{name}_ct"]
            if blob is None:
                values[name] = None
                continue
            aad = Vault.aad("accounts", chat_id, slot, name)
            plain[name] = open_blob(master, chat, bytes(blob), aad)
            values[name] = (chat.encrypt(plain[name], aad) if is_master(master, blob)
                            else bytes(blob))
        index = chat.blind_index(chat_id, plain["nik"] or plain["card"])
        conn.execute(
            "UPDATE accounts SET nik_index = ?, nik_ct = ?, card_ct = ?, name_ct = ?, "
            "phone_ct = ?, label_ct = ?, status_ct = ? WHERE chat_id = ? AND slot = ?",
            (index, *(values[f] for f in fields), chat_id, slot))
    row = conn.execute("SELECT payload_ct FROM challenges WHERE chat_id = ?",
                       (chat_id,)).fetchone()
    if row is not None and is_master(master, row["payload_ct"]):
        aad = Vault.aad("challenges", chat_id, "live", "payload")
        conn.execute("UPDATE challenges SET payload_ct = ? WHERE chat_id = ?",
                     (chat.encrypt(master.decrypt(bytes(row["payload_ct"]), aad), aad),
                      chat_id))
    row = conn.execute("SELECT data FROM chat_data WHERE chat_id = ?", (chat_id,)).fetchone()
    blob = _legacy_pending(master, str(row["data"])) if row is not None else None
    if row is not None and blob is not None:
        aad = Vault.aad("chat_data", chat_id, "pending", "payload")
        data = json.loads(str(row["data"]))
        try:
            sealed = chat.encrypt(master.decrypt(blob, aad), aad)
            data[PENDING_KEY] = base64.b64encode(sealed).decode("ascii")
        except VaultError:  # not a step of this chat: it would never open; drop it
            data.pop(PENDING_KEY, None)
        conn.execute("UPDATE chat_data SET data = ? WHERE chat_id = ?",
                     (json.dumps(data), chat_id))


def convert_batch(conn: sqlite3.Connection, keys: ChatKeys, after: int, batch: int
                  ) -> list[int]:
    """Inside a transaction: up to ``batch`` chats after ``after`` that still hold
    master-key ciphertexts, converted; returns them (none left: empty)."""
    if is_converted(conn):
        return []
    chats = _legacy_chats(conn, keys.master, after, batch)
    for chat_id in chats:
        _convert_chat(conn, keys, chat_id)
    if not chats:  # the pass reached the end: every chat before ``after`` was converted
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                     (CONVERTED, b"1"))
    return chats


def convert_all(conn: sqlite3.Connection, keys: ChatKeys) -> int:
    """Inside the caller's transaction (a rotation): every chat converted."""
    done, after = 0, -(2 ** 63)
    while chats := convert_batch(conn, keys, after, CONVERT_BATCH):
        done, after = done + len(chats), chats[-1]
    return done


async def convert_legacy(db: Database, master: Vault, batch: int = CONVERT_BATCH) -> int:
    """Move every chat still holding master-key ciphertexts to its own key, ``batch`` chats
    per transaction (a crash between two leaves a database that opens: each ciphertext is
    read by the key its header names). Idempotent; returns the chats converted."""
    keys = ChatKeys.of(db, master)
    done = 0
    after = -(2 ** 63)
    while True:
        def unit(conn: sqlite3.Connection, after: int) -> list[int]:
            with immediate(conn):
                return convert_batch(conn, keys, after, batch)
        chats = await db.run(unit, after)
        if not chats:
            return done
        done += len(chats)
        after = chats[-1]
