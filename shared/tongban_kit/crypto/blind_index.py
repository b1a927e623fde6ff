"""Keyed blind indexes: find a row by an encrypted value without decrypting anything.

Encrypted fields (:class:`~tongban_kit.crypto.FieldCipher`) use a random nonce, so
the same resident ID number encrypts differently every time and cannot be searched.
Next to the ciphertext the row stores ``BlindIndex.digest(value, context=...)``, a
deterministic HMAC-SHA256 of the value, and look-ups compare digests.

It must be keyed. A plain SHA-256 of a resident ID number is no protection at all:
there are only some 10^10-10^11 plausible numbers (a few thousand division codes
x tens of thousands of birth dates x 1,000 sequence numbers; the check character
adds nothing), and one GPU computes about 10^10 SHA-256 hashes a second, so anyone
with a database dump would recover every number within minutes. With HMAC the digests are worthless
without the key, which lives in the settings, not in the database.

The key is separate from the field-encryption keys and cannot be rotated by simply
adding a new one: every stored digest would have to be recomputed (by decrypting
the field), so treat a change of blind-index key as a data migration.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["BlindIndex"]

_MIN_KEY_BYTES = 32


class BlindIndex:
    """Computes HMAC-SHA256 blind indexes under one secret key (at least 32 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"a blind-index key must be at least {_MIN_KEY_BYTES} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "BlindIndex(key=<hidden>)"

    def digest(self, value: str, *, context: str) -> str:
        """Return the blind index of ``value`` for ``context`` as 64 lower-case hex digits.

        The MAC covers ``context``, a NUL byte, then ``value`` (UTF-8), so the same
        value gives unrelated digests in different contexts (a resident ID and a
        phone number can never be correlated across columns). ``context`` may not
        contain NUL, which keeps the split unambiguous.

        Pass the canonical form of the value (e.g. what
        :func:`~tongban_kit.identifiers.validate_resident_id` returns): the digest
        is exact, so ``x`` and ``X`` differ.

        Hex rather than base64url: it has one case, so it survives
        case-insensitive collations and case-folding tools unchanged, and it has no
        ``-``/``_``/padding to trip over in SQL, URLs or logs; the 21 characters
        per row it costs over base64url do not matter.
        """
        if not context or "\x00" in context:
            raise ValueError("context must be non-empty and contain no NUL character")
        message = context.encode("utf-8") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
