"""Private signing keys are stored encrypted (AES-256-GCM), each bound to its key id."""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from tongban_kit.crypto import DecryptionError, FieldCipher

logger = logging.getLogger("tongban.identity.keys")

# Anyone can read this string, so anything sealed under it is only obscured: development only.
_DEVELOPMENT_SEED = b"tongban identity development key-encryption key; never in production"
DEVELOPMENT_KEY = base64.b64encode(hashlib.sha256(_DEVELOPMENT_SEED).digest()).decode("ascii")


def key_cipher(setting: SecretStr | None) -> FieldCipher:
    """The cipher for ``TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY``, or the development one if unset.

    The settings refuse an unset value in production, so the fallback only happens in
    development, and says so in the log.
    """
    if setting is not None:
        return FieldCipher.from_secret(setting.get_secret_value())
    logger.warning(
        "TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY is unset: signing keys are sealed with the public "
        "development key (refused in production)"
    )
    return FieldCipher.from_secret(f"dev:{DEVELOPMENT_KEY}")


def sealing_context(kid: str) -> str:
    """The associated data a private key is sealed with: its row and its key id.

    A sealed key copied onto another row (another kid) no longer decrypts.
    """
    return f"signing_keys.private_key/{kid}"


class KeyVault:
    """Seals private keys for the database and unseals them for signing.

    Unsealed keys are kept in memory by key id (only the one in use), so signing a token
    costs no decryption once the active key has been seen.
    """

    def __init__(self, cipher: FieldCipher) -> None:
        self._cipher = cipher
        self._unsealed: dict[str, ec.EllipticCurvePrivateKey] = {}

    def __repr__(self) -> str:
        return f"KeyVault(cipher={self._cipher!r})"

    def seal(self, kid: str, private_key: ec.EllipticCurvePrivateKey) -> bytes:
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self._cipher.encrypt(pem.decode("ascii"), context=sealing_context(kid))

    def unsealed(self, kid: str) -> ec.EllipticCurvePrivateKey | None:
        """The private key of ``kid`` if this vault has unsealed it already."""
        return self._unsealed.get(kid)

    def unseal(self, kid: str, sealed: bytes) -> ec.EllipticCurvePrivateKey:
        """The private key of ``kid``; raises ``KeyUnsealError`` if the sealing key differs."""
        key = self._unsealed.get(kid)
        if key is not None:
            return key
        try:
            pem = self._cipher.decrypt(sealed, context=sealing_context(kid))
        except DecryptionError as exc:
            raise KeyUnsealError(
                f"signing key {kid} does not decrypt: TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY lacks "
                "the key it was sealed with"
            ) from exc
        loaded = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise KeyUnsealError(f"signing key {kid} is not an EC key")
        self._unsealed = {kid: loaded}  # keep only the key in use
        return loaded


class KeyUnsealError(RuntimeError):
    """A stored private key cannot be decrypted with the configured key-encryption key."""
