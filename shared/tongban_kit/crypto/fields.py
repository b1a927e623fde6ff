"""AES-256-GCM encryption of single database fields, with a keyring for rotation.

A token is self-describing, so a row needs no extra column to say how it was sealed::

    +---------+---------+------------------+----------+------------------------+
    | version | kid len | kid (ASCII)      | nonce    | ciphertext + GCM tag   |
    | 1 byte  | 1 byte  | 1-64 bytes       | 12 bytes | len(plaintext) + 16    |
    +---------+---------+------------------+----------+------------------------+

The associated data is the header (version, kid length, kid) followed by the
caller's ``context`` (e.g. ``"persons.resident_id"``). Binding the context means a
ciphertext copied into another column, or another table, no longer decrypts;
binding the header means the key id cannot be edited without detection either.

Rotation: add a new key to the keyring and make it current. Tokens sealed under an
older key still decrypt, :meth:`FieldCipher.needs_reencrypt` says which ones to
rewrite, and once none are left the old key can be dropped from the setting.

Exceptions:

* :class:`DecryptionError` - a token did not decrypt (wrong key, tampered, unknown
  key id, wrong context, malformed). Its message names neither the plaintext nor
  any key material, because exceptions end up in logs.
* :class:`KeyringError` (a ``ValueError``) - the keyring or its setting string is
  malformed. Its message points at the entry by position and never quotes it.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DecryptionError",
    "FieldCipher",
    "KeyringError",
    "generate_key_setting",
]

_VERSION = 1
_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe up to ~2^32 messages per key
_TAG_BYTES = 16
# Key ids travel in every token and in the setting string, so they are short and
# drawn from characters that cannot be confused with the ':' and ',' separators.
_KID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class DecryptionError(Exception):
    """A field token could not be decrypted; the message never holds plaintext or keys."""


class KeyringError(ValueError):
    """The keyring, or the setting string describing it, is malformed."""


def _check_kid(kid: str) -> None:
    if not _KID_PATTERN.fullmatch(kid):
        raise KeyringError("a key id must be 1-64 characters from A-Z a-z 0-9 _ . -")


def _decode_key(text: str) -> bytes:
    # Accept the URL-safe alphabet and missing padding too: operators paste keys
    # from whatever tool they used, and neither variation is ambiguous.
    text = text.strip().translate(str.maketrans("-_", "+/"))
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text, validate=True)


class FieldCipher:
    """Encrypts and decrypts field values under a keyring of AES-256 keys.

    ``keys`` maps a key id to a 32-byte key; ``current`` names the key new tokens
    are sealed with. Every key stays usable for decryption.
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if not keys:
            raise KeyringError("the keyring is empty")
        for kid, key in keys.items():
            _check_kid(kid)
            if len(key) != _KEY_BYTES:
                raise KeyringError(f"key {kid!r} must be {_KEY_BYTES} bytes, got {len(key)}")
        if current not in keys:
            raise KeyringError(f"the current key id {current!r} is not in the keyring")
        self._aeads = {kid: AESGCM(bytes(key)) for kid, key in keys.items()}
        self._current = current

    @classmethod
    def from_secret(cls, secret: str) -> FieldCipher:
        """Build a cipher from a setting string ``kid1:base64key,kid2:base64key``.

        The LAST entry is the current key, so rotating is appending. Keys are 32
        bytes in base64 (standard or URL-safe, padding optional), as produced by
        :func:`generate_key_setting`. Blanks around entries are ignored. Errors
        name the entry by position and never quote the setting.
        """
        entries = [entry.strip() for entry in secret.split(",")]
        if not any(entries):
            raise KeyringError("the key setting is empty")
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(entries, start=1):
            where = f"key setting entry {position} of {len(entries)}"
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if not sep:
                raise KeyringError(f"{where} is not of the form kid:base64key")
            if not _KID_PATTERN.fullmatch(kid):
                # Not quoting the kid: a pasted-the-wrong-way-round entry would put
                # the key where the kid belongs.
                raise KeyringError(
                    f"{where} has an invalid key id (1-64 characters from A-Z a-z 0-9 _ . -)"
                )
            if kid in keys:
                raise KeyringError(f"{where} repeats the key id of an earlier entry")
            try:
                key = _decode_key(encoded)
            except (binascii.Error, ValueError):
                raise KeyringError(f"{where}: the key is not valid base64") from None
            if len(key) != _KEY_BYTES:
                raise KeyringError(
                    f"{where}: the key must decode to {_KEY_BYTES} bytes, got {len(key)}"
                )
            keys[kid] = key
        return cls(keys, current=list(keys)[-1])

    @property
    def current_key_id(self) -> str:
        """The id of the key new tokens are encrypted with."""
        return self._current

    def __repr__(self) -> str:
        # The default repr is harmless, but an explicit one guarantees no future
        # attribute ever prints a key.
        return f"FieldCipher(key_ids={sorted(self._aeads)!r}, current={self._current!r})"

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt ``plaintext`` under the current key, bound to ``context``.

        ``context`` names where the value lives (``"persons.resident_id"``); the
        same context must be given to :meth:`decrypt`. Each call draws a fresh
        random nonce, so equal plaintexts give different tokens: use a
        :class:`~tongban_kit.crypto.BlindIndex` to look values up.
        """
        header = _header(self._current)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aeads[self._current].encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(header, context)
        )
        return header + nonce + sealed

    def decrypt(self, token: bytes, *, context: str) -> str:
        """Return the plaintext of ``token``, which must have been sealed for ``context``.

        Raises :class:`DecryptionError` if the token is malformed, names a key id
        not in the keyring, was tampered with, or belongs to another context.
        """
        kid, header_len = _parse_header(token)
        aead = self._aeads.get(kid)
        if aead is None:
            raise DecryptionError(f"token was encrypted with key id {kid!r}, not in the keyring")
        header = token[:header_len]
        nonce = token[header_len : header_len + _NONCE_BYTES]
        sealed = token[header_len + _NONCE_BYTES :]
        try:
            plaintext = aead.decrypt(nonce, sealed, _associated_data(header, context))
        except InvalidTag:
            raise DecryptionError(
                "token failed authentication (wrong key, wrong context or tampered)"
            ) from None
        # Authenticated bytes were produced by encrypt() from a str, so this cannot
        # fail short of a forged tag; decode strictly all the same.
        return plaintext.decode("utf-8")

    def needs_reencrypt(self, token: bytes) -> bool:
        """Return whether ``token`` was sealed under a key other than the current one.

        Only the header is read (no decryption); a malformed token raises
        :class:`DecryptionError`.
        """
        kid, _ = _parse_header(token)
        return kid != self._current


def _header(kid: str) -> bytes:
    encoded = kid.encode("ascii")
    return bytes([_VERSION, len(encoded)]) + encoded


def _associated_data(header: bytes, context: str) -> bytes:
    if not context:
        raise ValueError("context must name where the value is stored")
    # The header is self-delimiting (its length byte), so header + context cannot
    # be read two ways.
    return header + context.encode("utf-8")


def _parse_header(token: bytes) -> tuple[str, int]:
    """Return the key id of ``token`` and the length of its header."""
    if len(token) < 2:
        raise DecryptionError("token is too short")
    if token[0] != _VERSION:
        raise DecryptionError(f"unknown token version {token[0]}")
    header_len = 2 + token[1]
    if len(token) < header_len + _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError("token is too short")
    try:
        kid = token[2:header_len].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("token has a malformed key id") from None
    if not _KID_PATTERN.fullmatch(kid):
        raise DecryptionError("token has a malformed key id")
    return kid, header_len


def generate_key_setting(kid: str) -> str:
    """Return a new keyring entry ``kid:base64key`` holding 32 random bytes.

    For operators: append it (after a comma) to the field-encryption setting to
    make it the current key, e.g.
    ``python -c "from tongban_kit.crypto import generate_key_setting as g; print(g('2025-06'))"``.
    """
    _check_kid(kid)
    return f"{kid}:{base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode('ascii')}"
