"""How a pseudonym is made: HMAC-SHA256 under ``TONGBAN_IDENTITY_PAIRWISE_KEY``.

``pseudonym = base32(HMAC(key, "pairwise-subject-by-resident/<department>" NUL <blind
index of the resident ID>)[:20])``, lower case, 32 characters (160 bits). The input is the
person's resident-ID blind index, not identity's person id, so the pseudonym is known before
the person signs up: a service that holds a resident ID number (from a department's record,
say) gets the same pseudonym for a person not yet registered as the department will see once
they are (``derive_for_resident``). Persons without a resident ID (the walking skeleton's)
fall back to ``HMAC(key, "pairwise-subject/<department>" NUL <person id>)``; the two contexts
keep the inputs apart. The same department and person always give the same
pseudonym; two departments get unrelated ones, and without the key nobody can tell whether
two pseudonyms name the same person (OpenID Connect Core §8.1). The HMAC is the kit's
``BlindIndex``, whose context keeps each department's values apart.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid

from pydantic import SecretStr

from tongban_kit.crypto import BlindIndex

logger = logging.getLogger("tongban.identity.pairwise")

# Public, so pseudonyms made with it are linkable by anyone: development only (refused in
# production by the settings).
_DEVELOPMENT_SEED = b"tongban identity development pairwise-subject key; never in production"
DEVELOPMENT_PAIRWISE_KEY = base64.b64encode(hashlib.sha256(_DEVELOPMENT_SEED).digest()).decode()

PSEUDONYM_PATTERN = r"^[a-z2-7]{32}$"
_PSEUDONYM_BYTES = 20


class Pseudonyms:
    """Derives pairwise pseudonyms under one secret key."""

    def __init__(self, key: bytes) -> None:
        self._mac = BlindIndex(key)

    def __repr__(self) -> str:
        return "Pseudonyms(key=<hidden>)"

    @classmethod
    def from_settings(cls, setting: SecretStr | None) -> Pseudonyms:
        if setting is None:
            logger.warning(
                "TONGBAN_IDENTITY_PAIRWISE_KEY is unset: pairwise pseudonyms are derived with "
                "the public development key, so anyone can link them (refused in production)"
            )
        value = setting.get_secret_value() if setting else DEVELOPMENT_PAIRWISE_KEY
        return cls(base64.b64decode(value))

    def derive(self, *, department: str, person_id: uuid.UUID) -> str:
        """For a person without a resident ID only (see the module's docstring)."""
        digest = self._mac.digest(str(person_id), context=f"pairwise-subject/{department}")
        return _encoded(digest)

    def derive_for_resident(self, *, department: str, resident_id_index: str) -> str:
        """From the blind index of the person's resident ID: registered or not."""
        digest = self._mac.digest(
            resident_id_index, context=f"pairwise-subject-by-resident/{department}"
        )
        return _encoded(digest)


def _encoded(digest: str) -> str:
    return base64.b32encode(bytes.fromhex(digest)[:_PSEUDONYM_BYTES]).decode().lower()
