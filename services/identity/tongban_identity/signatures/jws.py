"""Detached JWS over an unencoded payload (RFC 7515 with RFC 7797), and the public JWKs behind it.

What is signed, exactly: the JWS signing input (RFC 7515 §5.1, RFC 7797 §3)::

    ASCII(BASE64URL(UTF8(protected header))) || "." || payload

where ``payload`` is ASCII text used as it is, not base64url-encoded (``"b64": false``, which
must be listed in ``"crit"``): a document's SHA-256 as 64 lowercase hex digits, or an
assurance challenge. The compact serialization leaves the payload out (RFC 7515 Appendix F)::

    <BASE64URL(header)>..<BASE64URL(signature)>

A JWS whose payload part equals the expected payload is read the same way (some JOSE
libraries attach a URL-safe unencoded payload); any other payload part is refused.

Algorithms: ``ES256`` (P-256, the signature is ``r || s``, 64 bytes, RFC 7518 §3.4) and, for
Ed25519 keys, ``EdDSA`` or its fully specified name ``Ed25519`` (RFC 8037, RFC 9864).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = [
    "MAX_JWS_CHARS",
    "JwsError",
    "PublicKey",
    "UnencodedJws",
    "load_public_key",
    "normalise_public_jwk",
    "parse_unencoded",
    "sign_es256",
    "thumbprint",
    "verify_signature",
]

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey

#: A detached ES256 or EdDSA JWS with a modest header is well under 1 kB.
MAX_JWS_CHARS = 2048
_MAX_HEADER_CHARS = 1024
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_P256_COORDINATE_BYTES = 32

#: (kty, crv) → the algorithm names a key of that kind signs with.
_ALGORITHMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("EC", "P-256"): ("ES256",),
    ("OKP", "Ed25519"): ("EdDSA", "Ed25519"),
}
_COORDINATES = {"EC": ("x", "y"), "OKP": ("x",)}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JwsError(ValueError):
    """A JWS or JWK that cannot be used; the message says why and never quotes key material."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); ``JwsError`` otherwise."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise JwsError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwsError("not base64url") from None


# --- keys ---------------------------------------------------------------------------------


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 or Ed25519 public key."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("crv", "kty", "x")
    canonical = json.dumps(
        {name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True
    )
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def normalise_public_jwk(entry: Any) -> dict[str, Any]:
    """The public JWK to store: ``kty crv x [y] kid alg use``, with ``kid`` its thumbprint.

    Accepts an EC P-256 key (ES256) or an OKP Ed25519 key (EdDSA). Refused with ``JwsError``:
    anything holding a private member (``d`` …, so a private key pasted by mistake is never
    stored), another key type or curve, an ``alg`` the key cannot sign with, ``use`` other
    than ``sig``, ``key_ops`` without ``verify``, or coordinates that are not a point of the
    curve.
    """
    if not isinstance(entry, Mapping):
        raise JwsError("a JWK is a JSON object")
    if _PRIVATE_MEMBERS & set(entry):
        raise JwsError("the JWK holds private key material; send the public key only")
    kty, crv = entry.get("kty"), entry.get("crv")
    algorithms = _ALGORITHMS.get((str(kty), str(crv)))
    if algorithms is None:
        raise JwsError("only EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are accepted")
    alg = entry.get("alg", algorithms[0])
    if alg not in algorithms:
        raise JwsError(f"a {kty} {crv} key signs with {' or '.join(algorithms)} only")
    if entry.get("use", "sig") != "sig":
        raise JwsError('the key\'s "use" must be "sig"')
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise JwsError('the key\'s "key_ops" must include "verify"')
    public: dict[str, Any] = {"kty": kty, "crv": crv}
    for name in _COORDINATES[str(kty)]:
        value = entry.get(name)
        if not isinstance(value, str) or len(value) > 64:
            raise JwsError(f'the JWK lacks a valid "{name}" coordinate')
        # Re-encoded: spare bits in the last character would otherwise give one key several
        # spellings, hence several thumbprints.
        public[name] = b64url_encode(b64url_decode(value))
    load_public_key(public)  # proves the point is on the curve
    return {**public, "kid": thumbprint(public), "alg": alg, "use": "sig"}


def load_public_key(jwk: Mapping[str, Any]) -> PublicKey:
    """The ``cryptography`` public key of a normalised P-256 or Ed25519 JWK."""
    try:
        if jwk["kty"] == "EC":
            x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
            if len(x) != _P256_COORDINATE_BYTES or len(y) != _P256_COORDINATE_BYTES:
                raise JwsError("a P-256 coordinate is 32 bytes")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            return numbers.public_key()
        return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    except JwsError:
        raise
    except (KeyError, TypeError, ValueError):
        raise JwsError(f"not a valid {jwk.get('crv')} public key") from None


# --- signatures ---------------------------------------------------------------------------


def sign_es256(
    private_key: ec.EllipticCurvePrivateKey, header: Mapping[str, Any], payload: str
) -> str:
    """A detached compact JWS (``<header>..<signature>``) of ``payload`` with ``b64: false``."""
    protected = {**header, "alg": "ES256", "b64": False, "crit": ["b64"]}
    header_segment = b64url_encode(json.dumps(protected, separators=(",", ":")).encode())
    signing_input = f"{header_segment}.{payload}".encode("ascii")
    r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{header_segment}..{b64url_encode(signature)}"


@dataclass(frozen=True)
class UnencodedJws:
    """A parsed compact JWS with ``b64: false``, bound to the payload it was checked against."""

    header: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg"))

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) and 0 < len(kid) <= 128 else None

    @property
    def typ(self) -> str | None:
        typ = self.header.get("typ")
        return typ if isinstance(typ, str) else None


def parse_unencoded(jws: str, *, payload: str) -> UnencodedJws:
    """Read a compact JWS over ``payload`` (ASCII) with ``b64: false`` (RFC 7797).

    ``JwsError`` for: not three parts, a header that is not a base64url JSON object, ``b64``
    not ``false`` or not listed in ``crit``, any other ``crit`` entry (we understand none), a
    payload part other than empty or ``payload`` itself, a signature that is not base64url.
    Nothing is verified here; see ``verify_signature``.
    """
    if len(jws) > MAX_JWS_CHARS:
        raise JwsError("the JWS is too long")
    parts = jws.split(".")
    if len(parts) != 3:
        raise JwsError("a compact JWS has three parts separated by dots")
    header_segment, payload_segment, signature_segment = parts
    if len(header_segment) > _MAX_HEADER_CHARS:
        raise JwsError("the JWS header is too long")
    try:
        header = json.loads(b64url_decode(header_segment))
    except (JwsError, ValueError):
        raise JwsError("the JWS header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise JwsError("the JWS header is not a JSON object")
    if header.get("b64") is not False or header.get("crit") != ["b64"]:
        raise JwsError('the JWS must have "b64": false and "crit": ["b64"] (RFC 7797)')
    if payload_segment not in ("", payload):
        raise JwsError("the JWS carries a different payload")
    return UnencodedJws(
        header=header,
        signing_input=f"{header_segment}.{payload}".encode("ascii"),
        signature=b64url_decode(signature_segment),
    )


def verify_signature(key: PublicKey, alg: str, jws: UnencodedJws) -> bool:
    """Whether ``jws``'s signature verifies with ``key`` under ``alg`` (which must fit the key)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and alg == "ES256":
            if len(jws.signature) != 64:
                return False
            r = int.from_bytes(jws.signature[:32], "big")
            s = int.from_bytes(jws.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if isinstance(key, Ed25519PublicKey) and alg in ("EdDSA", "Ed25519"):
            key.verify(jws.signature, jws.signing_input)
            return True
    except InvalidSignature:
        return False
    return False
