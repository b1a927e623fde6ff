"""How a person's identifiers are kept: sealed (AES-256-GCM) with a keyed blind index.

The resident ID number and the phone number are stored only sealed; the blind index finds a
person by ID number without decrypting anything; responses and logs see only masked forms.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass

from pydantic import SecretStr

from tongban_kit.crypto import BlindIndex, FieldCipher

logger = logging.getLogger("tongban.identity.persons")

# Public, so anything protected with it is only obscured: development only (refused in
# production by the settings).
_DEVELOPMENT_SEED = b"tongban identity development personal-data key; never in production"
DEVELOPMENT_PII_KEY = base64.b64encode(hashlib.sha256(_DEVELOPMENT_SEED).digest()).decode()
DEVELOPMENT_INDEX_KEY = base64.b64encode(hashlib.sha256(_DEVELOPMENT_SEED + b"/index").digest())

RESIDENT_ID = "persons.resident_id"
PHONE = "persons.phone"


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``."""
    return f"{phone[:3]}****{phone[-4:]}"


@dataclass(frozen=True)
class PersonalData:
    """Seals, unseals and indexes personal identifiers."""

    cipher: FieldCipher
    index: BlindIndex

    @classmethod
    def from_settings(cls, pii_keys: SecretStr | None, index_key: SecretStr | None) -> PersonalData:
        if pii_keys is None or index_key is None:
            logger.warning(
                "TONGBAN_IDENTITY_PII_KEYS / TONGBAN_IDENTITY_BLIND_INDEX_KEY unset: personal "
                "data is sealed with the public development keys (refused in production)"
            )
        cipher = FieldCipher.from_secret(
            pii_keys.get_secret_value() if pii_keys else f"dev:{DEVELOPMENT_PII_KEY}"
        )
        raw_index = (
            base64.b64decode(index_key.get_secret_value())
            if index_key
            else base64.b64decode(DEVELOPMENT_INDEX_KEY)
        )
        return cls(cipher, BlindIndex(raw_index))

    def seal(self, value: str, *, context: str) -> bytes:
        return self.cipher.encrypt(value, context=context)

    def unseal(self, sealed: bytes, *, context: str) -> str:
        return self.cipher.decrypt(sealed, context=context)

    def resident_id_index(self, resident_id: str) -> str:
        return self.index.digest(resident_id, context=RESIDENT_ID)
