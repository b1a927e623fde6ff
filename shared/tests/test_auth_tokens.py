"""verify_access_token against a real JWKS server: what passes, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tongban_kit.auth import AccessClaims, JwksCache, verify_access_token
from tongban_kit.auth.testing import LocalIssuer, LocalKey
from tongban_kit.errors import Unauthorized


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
async def jwks(issuer: LocalIssuer) -> AsyncIterator[JwksCache]:
    async with httpx.AsyncClient() as http:
        yield JwksCache(issuer.jwks_url, http)


async def verify(token: str, issuer: LocalIssuer, jwks: JwksCache) -> AccessClaims:
    return await verify_access_token(
        token, jwks=jwks, issuer=issuer.issuer, audience=issuer.audience
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def handmade(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A JWS built by hand, for tokens a well-behaved library refuses to make."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


async def test_a_valid_token_verifies_and_its_claims_come_back(
    issuer: LocalIssuer, jwks: JwksCache
) -> None:
    token = issuer.mint(scope="records:read records:write", acr="substantial")

    verified = await verify(token, issuer, jwks)

    assert verified.sub == "person-7f3a"
    assert verified.aud == (issuer.audience,)
    assert verified.scopes == {"records:read", "records:write"}
    assert verified.acr == "substantial"
    assert verified.node == "440300"


async def test_clock_skew_within_the_leeway_is_tolerated(
    issuer: LocalIssuer, jwks: JwksCache
) -> None:
    now = int(time.time())

    verified = await verify(issuer.mint(exp=now - 10, nbf=now + 10, iat=now + 10), issuer, jwks)

    assert verified.sub == "person-7f3a"


def _none(issuer: LocalIssuer) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": issuer.key.kid}
    return handmade(header, issuer.claims(), lambda _: b"")


def _hs256_with_the_public_key(issuer: LocalIssuer) -> str:
    # The classic confusion attack: the published public key used as an HMAC secret.
    return handmade(
        {"alg": "HS256", "typ": "at+jwt", "kid": issuer.key.kid},
        issuer.claims(),
        lambda data: hmac.new(issuer.key.public_pem, data, hashlib.sha256).digest(),
    )


def _es384(issuer: LocalIssuer) -> str:
    other = ec.generate_private_key(ec.SECP384R1())
    header = {"kid": issuer.key.kid, "typ": "at+jwt"}
    return jwt.encode(issuer.claims(), other, algorithm="ES384", headers=header)


def _no_kid(issuer: LocalIssuer) -> str:
    return jwt.encode(
        issuer.claims(), issuer.key.private_key, algorithm="ES256", headers={"typ": "at+jwt"}
    )


def _tampered_signature(issuer: LocalIssuer) -> str:
    head, payload, signature = issuer.mint().split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    return f"{head}.{payload}.{flipped}"


def _tampered_claims(issuer: LocalIssuer) -> str:
    head, _, signature = issuer.mint().split(".")
    forged = b64url(json.dumps(issuer.claims(scope="records:read admin")).encode())
    return f"{head}.{forged}.{signature}"


def _later(seconds: int) -> int:
    return int(time.time()) + seconds


REFUSED: dict[str, tuple[Callable[[LocalIssuer], str], str]] = {
    "alg none": (_none, "algorithm 'none' is not accepted"),
    "HS256 signed with the public key": (_hs256_with_the_public_key, "'HS256' is not accepted"),
    "ES384": (_es384, "'ES384' is not accepted"),
    "expired": (lambda i: i.mint(exp=_later(-60)), "expired"),
    "not yet valid": (lambda i: i.mint(nbf=_later(120)), "not valid yet"),
    "issued in the future": (lambda i: i.mint(iat=_later(120)), "not valid yet"),
    "another issuer": (lambda i: i.mint(iss="https://evil.example"), "another issuer"),
    "another audience": (lambda i: i.mint(aud="tongban:110000"), "not meant for this service"),
    "tampered signature": (_tampered_signature, "signature does not verify"),
    "tampered claims": (_tampered_claims, "signature does not verify"),
    "typ JWT, not an access token": (lambda i: i.mint(header={"typ": "JWT"}), "typ must be"),
    "no kid": (_no_kid, "names no key id"),
    "unknown level of assurance": (lambda i: i.mint(acr="medium"), "'acr' claim is invalid"),
    "not a JWT at all": (lambda i: "not-a-token", "not a well-formed JWS"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_token_is_refused_with_a_401_naming_why(
    case: str, issuer: LocalIssuer, jwks: JwksCache
) -> None:
    make, reason = REFUSED[case]

    with pytest.raises(Unauthorized) as refused:
        await verify(make(issuer), issuer, jwks)

    assert reason in refused.value.detail
    assert refused.value.status == 401


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "jti", "scope", "node"])
async def test_a_token_missing_a_required_claim_is_refused(
    claim: str, issuer: LocalIssuer, jwks: JwksCache
) -> None:
    with pytest.raises(Unauthorized, match=f"lacks the '{claim}' claim"):
        await verify(issuer.mint(drop=(claim,)), issuer, jwks)


async def test_a_token_signed_by_an_unpublished_key_is_refused(
    issuer: LocalIssuer, jwks: JwksCache
) -> None:
    with pytest.raises(Unauthorized, match="does not publish"):
        await verify(issuer.mint(key=LocalKey()), issuer, jwks)


def _signed(issuer: LocalIssuer, header: dict[str, Any], payload: Any) -> str:
    """ES256 by the published key over whatever header and payload (valid signature)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def sign(data: bytes) -> bytes:
        der = issuer.key.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    header = {"alg": "ES256", "typ": "at+jwt", "kid": issuer.key.kid, **header}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


# The kit parses tokens itself (tongban_kit.auth.compact): its strictness, each validly signed.
STRICT: dict[str, tuple[Callable[[LocalIssuer], str], str]] = {
    "a crit header": (lambda i: _signed(i, {"crit": ["b64"], "b64": False}, i.claims()), "JWS"),
    "a payload that is a list": (lambda i: _signed(i, {}, [i.claims()]), "malformed"),
    "aud a number": (lambda i: _signed(i, {}, i.claims(aud=440300)), "'aud' claim is invalid"),
    "exp a string": (lambda i: _signed(i, {}, i.claims(exp="tomorrow")), "'exp' claim is invalid"),
    "exp a boolean": (lambda i: _signed(i, {}, i.claims(exp=True)), "'exp' claim is invalid"),
    "four segments": (lambda i: i.mint() + ".e30", "not a well-formed JWS"),
    "padding": (lambda i: i.mint() + "=", "not a well-formed JWS"),
    "a short signature": (lambda i: i.mint()[:-4], "signature does not verify"),
    "non-ASCII": (lambda i: "é" + i.mint(), "not a well-formed JWS"),
}


@pytest.mark.parametrize("case", list(STRICT))
async def test_tokens_the_kit_cannot_parse_strictly_are_refused(
    case: str, issuer: LocalIssuer, jwks: JwksCache
) -> None:
    make, reason = STRICT[case]

    with pytest.raises(Unauthorized) as refused:
        await verify(make(issuer), issuer, jwks)

    assert reason in refused.value.detail
