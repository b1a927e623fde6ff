"""Cryptographic building blocks for personal data and sign-in.

* :class:`FieldCipher` - AES-256-GCM encryption of single fields, bound to where
  they are stored, with a keyring for key rotation;
* :class:`BlindIndex` - keyed HMAC digests to look encrypted values up;
* :class:`PasswordHasher` - argon2id password hashing, with a decoy verify for
  unknown accounts;
* :func:`verify_totp` and friends - RFC 6238 one-time passwords with replay refusal.

All pure and synchronous: no database, no settings read here. Services build the
objects from their settings in ``lifespan`` and hand them out.
"""

from tongban_kit.crypto.blind_index import BlindIndex
from tongban_kit.crypto.fields import (
    DecryptionError,
    FieldCipher,
    KeyringError,
    generate_key_setting,
)
from tongban_kit.crypto.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from tongban_kit.crypto.totp import (
    DEFAULT_DIGITS,
    DEFAULT_STEP_SECONDS,
    DEFAULT_WINDOW,
    new_totp_secret,
    provisioning_uri,
    totp_at,
    verify_totp,
)

__all__ = [
    "DEFAULT_DIGITS",
    "DEFAULT_STEP_SECONDS",
    "DEFAULT_WINDOW",
    "MAX_PASSWORD_LENGTH",
    "BlindIndex",
    "DecryptionError",
    "FieldCipher",
    "KeyringError",
    "PasswordHasher",
    "generate_key_setting",
    "new_totp_secret",
    "provisioning_uri",
    "totp_at",
    "verify_totp",
]
