"""Tests for tongban_kit.crypto.blind_index (keyed HMAC-SHA256 look-up digests)."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from tongban_kit.crypto import BlindIndex

KEY = bytes(range(32))
RESIDENT_ID = "11010519491231002X"
CONTEXT = "persons.resident_id"


def test_digest_is_deterministic_lower_case_hex() -> None:
    digest = BlindIndex(KEY).digest(RESIDENT_ID, context=CONTEXT)
    assert digest == BlindIndex(KEY).digest(RESIDENT_ID, context=CONTEXT)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_digest_is_hmac_sha256_of_context_nul_value() -> None:
    # An independent implementation (OpenSSL via cryptography) as the oracle.
    mac = crypto_hmac.HMAC(KEY, hashes.SHA256())
    mac.update(f"{CONTEXT}\x00张三".encode())
    assert BlindIndex(KEY).digest("张三", context=CONTEXT) == mac.finalize().hex()


def test_contexts_are_separated() -> None:
    index = BlindIndex(KEY)
    assert index.digest("13800138000", context="persons.resident_id") != index.digest(
        "13800138000", context="persons.phone"
    )


def test_values_and_keys_are_separated() -> None:
    index = BlindIndex(KEY)
    assert index.digest("11010519491231002X", context=CONTEXT) != index.digest(
        "110105194912310021", context=CONTEXT
    )
    other_key = BlindIndex(bytes(range(1, 33)))
    assert index.digest(RESIDENT_ID, context=CONTEXT) != other_key.digest(
        RESIDENT_ID, context=CONTEXT
    )


def test_context_with_nul_is_refused() -> None:
    # Otherwise ("a", "b\0c") and ("a\0b", "c") would hash the same message.
    with pytest.raises(ValueError, match="NUL"):
        BlindIndex(KEY).digest("c", context="a\x00b")
    with pytest.raises(ValueError, match="context"):
        BlindIndex(KEY).digest("c", context="")


def test_short_key_is_refused_and_repr_hides_the_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        BlindIndex(KEY[:16])
    assert KEY.hex() not in repr(BlindIndex(KEY))
    assert repr(KEY) not in repr(BlindIndex(KEY))
