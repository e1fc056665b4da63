"""The vault's known answers (issue 19, found by mutation testing).

Databases written today must open under every later version: a change to a derivation
label, a hash's message layout or the ciphertext format would leave every stored row
unreadable (or every rate record and code hash unmatched) after an upgrade. These values
were computed once with a fixed key; a change that moves them is a migration, not a
refactoring.
"""

from __future__ import annotations

import pytest

from storage.crypto import Vault, VaultError
from tests.conftest import NIK_A, PHONE

KEY = bytes(range(32))
AAD = Vault.aad("accounts", 1, "s", "nik")
#: NIK_A encrypted under KEY with a zero nonce (the format: version, key id, nonce, GCM).
BLOB = bytes.fromhex("0164575369000000000000000000000000f77ae612dd91030641a821a84a1d5eb4a16f1e"
                     "5f147365c2022318266a8d27ee")


def test_a_ciphertext_written_by_an_earlier_version_still_opens() -> None:
    vault = Vault(KEY)
    assert vault.key_id.hex() == "64575369"
    assert vault.decrypt(BLOB, AAD) == NIK_A


def test_hashes_and_the_key_check_are_stable_across_versions() -> None:
    vault = Vault(KEY)
    assert vault.blind_index(1, NIK_A).hex() == (
        "7a70736f926cba23162142523de76e4905ca3b666f10c5419bd97399d5e86992")
    assert vault.blind_index(1, PHONE, "phone").hex() == (
        "d8c25f4d1565dffec26acace8d7feefd6d442fb32327d897dc3a531f435699c2")
    assert vault.chat_key(1).hex() == (
        "e002bd37be76fbfeed1013cd8ad2446ccd7f2b16224f573609c19bc70446dd86")
    assert vault.participant_key(NIK_A).hex() == (
        "317c381c16cf6ddc83c4a6c5eb355f3d6a6cafbdf51c0cc9b04491feff36d84e")
    assert vault.phone_key(PHONE).hex() == (
        "1b7f94cc001e1eabd6ca0a216cb31c18b3ab3be5281232ac553b415dd11ef294")
    assert vault.otp_hash(1, vault.participant_key(NIK_A), "123456").hex() == (
        "34f3ccd84bb9a8149ba8ba6f5f19703ea9e4867e410a2885e1cdaa23e7b5a107")
    assert vault.check_value().hex() == (
        "6f3cf10d487193bf1ea1a08ed80791c0298b0342b8b131f515ef423d68c2b1b3")


def test_an_empty_value_round_trips_and_a_short_blob_is_not_a_ciphertext() -> None:
    vault = Vault(KEY)
    empty = vault.encrypt("", AAD)
    assert len(empty) == 1 + 4 + 12 + 16 and vault.decrypt(empty, AAD) == ""
    for cut in (1, 17, len(empty) - 1):
        with pytest.raises(VaultError, match=r"^unknown ciphertext format$"):
            vault.decrypt(empty[:cut], AAD)
    with pytest.raises(VaultError, match=r"^ciphertext was written under another key$"):
        Vault(bytes(32)).decrypt(BLOB, AAD)
    with pytest.raises(VaultError, match=r"^ciphertext does not belong here or was altered$"):
        vault.decrypt(BLOB, Vault.aad("accounts", 2, "s", "nik"))
    with pytest.raises(ValueError, match=r"^master key must be 32 bytes$"):
        Vault(bytes(31))
