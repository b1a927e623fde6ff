"""Tests for tongban_kit.crypto.fields (AES-256-GCM field encryption with a keyring)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from tongban_kit.crypto import DecryptionError, FieldCipher, KeyringError, generate_key_setting

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
CONTEXT = "persons.resident_id"
RESIDENT_ID = "11010519491231002X"


def cipher(current: str = "k1") -> FieldCipher:
    return FieldCipher({"k1": KEY_1, "k2": KEY_2}, current=current)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


# --------------------------------------------------------------------------- #
# Round trips and token layout
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "plaintext",
    [RESIDENT_ID, "张三", "广东省深圳市南山区粤海街道 1 号", "", "emoji 🙂 and NUL \x00 too"],
)
def test_round_trip(plaintext: str) -> None:
    token = cipher().encrypt(plaintext, context=CONTEXT)
    assert cipher().decrypt(token, context=CONTEXT) == plaintext


def test_token_is_version_kid_nonce_ciphertext_and_tag() -> None:
    plaintext = "张三"
    token = cipher("k2").encrypt(plaintext, context=CONTEXT)
    assert token[0] == 1
    assert token[1] == 2
    assert token[2:4] == b"k2"
    assert len(token) == 4 + 12 + len(plaintext.encode()) + 16
    assert plaintext.encode() not in token


def test_equal_plaintexts_give_different_tokens() -> None:
    c = cipher()
    assert c.encrypt(RESIDENT_ID, context=CONTEXT) != c.encrypt(RESIDENT_ID, context=CONTEXT)


def test_empty_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        cipher().encrypt(RESIDENT_ID, context="")


# --------------------------------------------------------------------------- #
# What must not decrypt
# --------------------------------------------------------------------------- #


def test_flipping_any_byte_is_detected() -> None:
    # Covers every region: version, kid length, kid, nonce, ciphertext and tag.
    c = cipher()
    token = c.encrypt(RESIDENT_ID, context=CONTEXT)
    for position in range(len(token)):
        for flip in (0x01, 0x80):
            tampered = bytearray(token)
            tampered[position] ^= flip
            with pytest.raises(DecryptionError):
                c.decrypt(bytes(tampered), context=CONTEXT)


def test_truncated_or_extended_tokens_are_refused() -> None:
    c = cipher()
    token = c.encrypt(RESIDENT_ID, context=CONTEXT)
    for bad in [b"", token[:1], token[:3], token[:-1], token[: 4 + 12 + 15], token + b"\x00"]:
        with pytest.raises(DecryptionError):
            c.decrypt(bad, context=CONTEXT)


def test_relabelling_a_token_with_another_known_key_id_is_refused() -> None:
    c = cipher("k2")
    token = c.encrypt(RESIDENT_ID, context=CONTEXT)
    relabelled = token[:2] + b"k1" + token[4:]
    with pytest.raises(DecryptionError, match="authentication"):
        c.decrypt(relabelled, context=CONTEXT)


def test_wrong_context_is_refused() -> None:
    token = cipher().encrypt(RESIDENT_ID, context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher().decrypt(token, context="persons.phone")


def test_wrong_key_under_the_same_id_is_refused() -> None:
    token = cipher().encrypt(RESIDENT_ID, context=CONTEXT)
    impostor = FieldCipher({"k1": KEY_2}, current="k1")
    with pytest.raises(DecryptionError):
        impostor.decrypt(token, context=CONTEXT)


def test_unknown_key_id_is_refused_and_named() -> None:
    token = cipher("k1").encrypt(RESIDENT_ID, context=CONTEXT)
    without_k1 = FieldCipher({"k2": KEY_2}, current="k2")
    with pytest.raises(DecryptionError, match="'k1'"):
        without_k1.decrypt(token, context=CONTEXT)


def test_decryption_errors_hold_no_plaintext_or_key() -> None:
    c = cipher()
    token = c.encrypt(RESIDENT_ID, context=CONTEXT)
    attempts: list[Callable[[], str]] = [
        lambda: c.decrypt(token, context="other"),
        lambda: c.decrypt(token[:-1] + bytes([token[-1] ^ 1]), context=CONTEXT),
        lambda: FieldCipher({"k9": KEY_1}, current="k9").decrypt(token, context=CONTEXT),
    ]
    for attempt in attempts:
        with pytest.raises(DecryptionError) as caught:
            attempt()
        message = str(caught.value)
        assert RESIDENT_ID not in message
        assert KEY_1.hex() not in message
        assert b64(KEY_1) not in message
        # No chained cryptography exception in the logged traceback either.
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None or caught.value.__suppress_context__


# --------------------------------------------------------------------------- #
# Rotation
# --------------------------------------------------------------------------- #


def test_old_tokens_decrypt_after_rotation_and_are_flagged_for_reencryption() -> None:
    before = FieldCipher({"k1": KEY_1}, current="k1")
    old_token = before.encrypt(RESIDENT_ID, context=CONTEXT)
    assert not before.needs_reencrypt(old_token)

    after = FieldCipher({"k1": KEY_1, "k2": KEY_2}, current="k2")
    assert after.current_key_id == "k2"
    assert after.decrypt(old_token, context=CONTEXT) == RESIDENT_ID
    assert after.needs_reencrypt(old_token)

    new_token = after.encrypt(after.decrypt(old_token, context=CONTEXT), context=CONTEXT)
    assert not after.needs_reencrypt(new_token)
    assert after.decrypt(new_token, context=CONTEXT) == RESIDENT_ID


def test_needs_reencrypt_refuses_a_malformed_token() -> None:
    with pytest.raises(DecryptionError):
        cipher().needs_reencrypt(b"\x01")


# --------------------------------------------------------------------------- #
# Keyring construction
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("keys", "current", "reason"),
    [
        ({}, "k1", "empty"),
        ({"k1": KEY_1[:16]}, "k1", "32 bytes"),
        ({"k1": KEY_1}, "k2", "current"),
        ({"bad:id": KEY_1}, "bad:id", "key id"),
        ({"": KEY_1}, "", "key id"),
    ],
)
def test_malformed_keyrings_are_refused(keys: dict[str, bytes], current: str, reason: str) -> None:
    with pytest.raises(KeyringError, match=reason):
        FieldCipher(keys, current=current)


def test_repr_shows_key_ids_only() -> None:
    text = repr(cipher())
    assert "k1" in text
    assert "k2" in text
    assert KEY_1.hex() not in text
    assert repr(KEY_1) not in text


def test_from_secret_makes_the_last_entry_current() -> None:
    c = FieldCipher.from_secret(f"k1:{b64(KEY_1)},k2:{b64(KEY_2)}")
    assert c.current_key_id == "k2"
    old_token = FieldCipher({"k1": KEY_1}, current="k1").encrypt("张三", context=CONTEXT)
    assert c.decrypt(old_token, context=CONTEXT) == "张三"
    assert c.needs_reencrypt(old_token)


def test_from_secret_tolerates_blanks_urlsafe_alphabet_and_missing_padding() -> None:
    key = bytes([0xFB, 0xFF] * 16)  # encodes with '+' and '/' in the standard alphabet
    urlsafe_unpadded = base64.urlsafe_b64encode(key).decode().rstrip("=")
    c = FieldCipher.from_secret(f" k1 : {b64(KEY_1)} ,\n2025-06.b:{urlsafe_unpadded}\n")
    assert c.current_key_id == "2025-06.b"
    token = FieldCipher({"2025-06.b": key}, current="2025-06.b").encrypt("x", context=CONTEXT)
    assert c.decrypt(token, context=CONTEXT) == "x"


SECRET_KEY_TEXT = b64(KEY_2)


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("", "empty"),
        (" , ", "empty"),
        (SECRET_KEY_TEXT, "entry 1 of 1 is not of the form"),
        (f"k1:{b64(KEY_1)},{SECRET_KEY_TEXT}", "entry 2 of 2 is not of the form"),
        (f"{SECRET_KEY_TEXT}:k1", "invalid key id"),  # pasted the wrong way round
        (f"k1:{SECRET_KEY_TEXT},k1:{b64(KEY_1)}", "entry 2 of 2 repeats the key id"),
        (f"k1:{SECRET_KEY_TEXT}!", "not valid base64"),
        (f"k1:{SECRET_KEY_TEXT[:-8]}", "must decode to 32 bytes"),
        (f"k1:{b64(KEY_2 + KEY_2)}", "must decode to 32 bytes, got 64"),
        (f"k1:{SECRET_KEY_TEXT},", "entry 2 of 2 is not of the form"),
    ],
)
def test_from_secret_errors_never_quote_the_setting(setting: str, reason: str) -> None:
    with pytest.raises(KeyringError, match=reason) as caught:
        FieldCipher.from_secret(setting)
    message = str(caught.value)
    assert SECRET_KEY_TEXT[:-8] not in message
    assert b64(KEY_1) not in message
    assert caught.value.__cause__ is None


def test_keyring_error_is_a_value_error() -> None:
    # Settings validation (pydantic validators) turns ValueError into a field error.
    assert issubclass(KeyringError, ValueError)


def test_generate_key_setting_round_trips_through_from_secret() -> None:
    entry = generate_key_setting("2025-06")
    kid, _, encoded = entry.partition(":")
    assert kid == "2025-06"
    assert len(base64.b64decode(encoded, validate=True)) == 32
    assert generate_key_setting("2025-06") != entry
    c = FieldCipher.from_secret(f"k1:{b64(KEY_1)},{entry}")
    assert c.current_key_id == "2025-06"
    assert c.decrypt(c.encrypt("张三", context=CONTEXT), context=CONTEXT) == "张三"


def test_generate_key_setting_refuses_an_unusable_key_id() -> None:
    with pytest.raises(KeyringError):
        generate_key_setting("a,b")
