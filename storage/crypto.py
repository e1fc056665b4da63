"""The vault: authenticated encryption of sensitive fields, blind indexes and keyed hashes.

Every ciphertext is ``version(1) | key_id(4) | nonce(12) | AES-256-GCM(ciphertext+tag)``.
The associated data names the table, chat, row and field, so a ciphertext copied into
another row or field fails to decrypt with :class:`VaultError` instead of yielding data.
All subkeys are derived from the one master key with HKDF-SHA256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
_HEADER = 1 + 4 + 12
_CHECK_MESSAGE = b"asisten-kk key check v1"


class VaultError(Exception):
    """A ciphertext is damaged, was moved to another place, or needs another key."""


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def generate_master_key() -> bytes:
    return secrets.token_bytes(32)


class Vault:
    """Holds the subkeys of one master key; never exposes the master key itself."""

    __slots__ = ("_aead", "_check", "_index_key", "_otp_key", "_rate_key", "key_id")

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"asisten-kk/v1/encryption"))
        self._index_key = _derive(master_key, b"asisten-kk/v1/blind-index")
        self._otp_key = _derive(master_key, b"asisten-kk/v1/otp-hash")
        self._check = _derive(master_key, b"asisten-kk/v1/key-check")
        self.key_id = hashlib.sha256(self._check).digest()[:4]
        #: Keys the rate records (chat, participant, phone). A database keeps its own, wrapped
        #: under the master key, and a rotation carries it over (see :meth:`adopt_rate_key`);
        #: until one is adopted it is the blind-index subkey, as it always was.
        self._rate_key = self._index_key

    @staticmethod
    def aad(table: str, chat_id: int, row: str, field: str) -> bytes:
        return f"{table}|{chat_id}|{row}|{field}".encode()

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return bytes([VERSION]) + self.key_id + nonce + sealed

    def decrypt(self, blob: bytes, aad: bytes) -> str:
        if len(blob) < _HEADER + 16 or blob[0] != VERSION:
            raise VaultError("unknown ciphertext format")
        if blob[1:5] != self.key_id:
            raise VaultError("ciphertext was written under another key")
        try:
            plain = self._aead.decrypt(blob[5:17], blob[17:], aad)
        except InvalidTag:
            raise VaultError("ciphertext does not belong here or was altered") from None
        return plain.decode("utf-8")

    def blind_index(self, chat_id: int, value: str, purpose: str = "nik") -> bytes:
        """Deterministic per-chat HMAC of an identifier, for equality look-ups."""
        message = f"{purpose}|{chat_id}|{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).digest()

    def global_index(self, value: str, purpose: str) -> bytes:
        """Deterministic HMAC of a value across chats (e.g. a phone for its rate cap), under
        the rate key, which does not change when the master key is rotated."""
        return hmac.new(self._rate_key, f"{purpose}|*|{value}".encode(), hashlib.sha256).digest()

    _RATE_AAD = b"meta|0|rate_key|key"

    def wrap_rate_key(self) -> bytes:
        """The rate key encrypted under this master key, as the database keeps it."""
        return self.encrypt(base64.b64encode(self._rate_key).decode("ascii"), self._RATE_AAD)

    def adopt_rate_key(self, wrapped: bytes) -> None:
        """Use the database's own rate key (kept by :meth:`wrap_rate_key`)."""
        self._rate_key = base64.b64decode(self.decrypt(wrapped, self._RATE_AAD))

    def carry_rate_key(self, successor: Vault) -> None:
        """A rotation: the new master key keys rate records exactly as this one did, so
        every record of the last 24 hours still counts against its chat, NIK and phone."""
        successor._rate_key = self._rate_key

    def chat_key(self, chat_id: int) -> bytes:
        """Keyed hash of a chat id: rate records carry this, never the id itself."""
        return self.global_index(str(chat_id), "chat")

    def participant_key(self, nik: str) -> bytes:
        """Keyed hash of a NIK across chats, for the caps that protect a participant."""
        return self.global_index(nik, "nik")

    def phone_key(self, phone_e164: str) -> bytes:
        """Keyed hash of a phone (E.164) across chats."""
        return self.global_index(phone_e164, "phone")

    @staticmethod
    def hash_matches(stored: bytes, candidate: bytes) -> bool:
        return hmac.compare_digest(stored, candidate)

    def otp_hash(self, chat_id: int, subject: bytes, code: str) -> bytes:
        """Keyed hash of a code bound to its chat and participant."""
        message = b"%d|" % chat_id + subject + b"|" + code.encode()
        return hmac.new(self._otp_key, message, hashlib.sha256).digest()

    def check_value(self) -> bytes:
        """A value stored in the database to recognise the right key at start."""
        return hmac.new(self._check, _CHECK_MESSAGE, hashlib.sha256).digest()

    def matches(self, stored_check: bytes) -> bool:
        return hmac.compare_digest(self.check_value(), stored_check)
