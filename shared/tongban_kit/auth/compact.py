"""Compact JWS (RFC 7515 §7.1) with ES256 (RFC 7518 §3.4), parsed once.

What ``jwt.decode`` does for an access token, without its repeated work: a verifier reads the
header first (to refuse a wrong ``alg`` or ``typ`` and find the key by ``kid``), and PyJWT
would then decode and check every segment again, character by character in Python. Here each
segment is checked and decoded once, the signature is checked by ``cryptography`` over the
bytes as sent, and the payload is decoded only after the signature holds. Strict: exactly
three unpadded base64url segments, a header and a payload that are JSON objects, no ``crit``
header (no extension is understood, so RFC 7515 §4.1.11 says refuse).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["CompactJws", "MalformedJws", "parse"]

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_ES256_SIGNATURE_BYTES = 64
_ES256 = ec.ECDSA(hashes.SHA256())


class MalformedJws(ValueError):
    """Not three base64url segments, or a header or payload that is not a JSON object."""


@dataclass(frozen=True)
class CompactJws:
    header: dict[str, Any]
    signing_input: bytes
    payload_segment: str
    signature: bytes

    def verifies_es256(self, key: ec.EllipticCurvePublicKey) -> bool:
        """Whether the signature is ES256 (P-256, SHA-256, r‖s) by ``key`` over the input."""
        if len(self.signature) != _ES256_SIGNATURE_BYTES or key.curve.name != "secp256r1":
            return False
        r = int.from_bytes(self.signature[:32], "big")
        s = int.from_bytes(self.signature[32:], "big")
        try:
            key.verify(encode_dss_signature(r, s), self.signing_input, _ES256)
        except InvalidSignature:
            return False
        return True

    def payload(self) -> dict[str, Any]:
        """The payload as a JSON object (decode it only once the signature verified)."""
        return _json_object(_decode(self.payload_segment))


def parse(token: str) -> CompactJws:
    """The header and the parts of ``token``; ``MalformedJws`` if it is not a compact JWS."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise MalformedJws("not three base64url segments")
    header = _json_object(_decode(parts[0]))
    if "crit" in header:
        raise MalformedJws("the header names extensions (crit) that are not understood")
    return CompactJws(
        header=header,
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        payload_segment=parts[1],
        signature=_decode(parts[2]),
    )


def _decode(segment: str) -> bytes:
    if len(segment) % 4 == 1:
        raise MalformedJws("a segment has an impossible length")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise MalformedJws("a segment is not base64url") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError included
        raise MalformedJws("not JSON") from None
    if not isinstance(value, dict):
        raise MalformedJws("not a JSON object")
    return value
