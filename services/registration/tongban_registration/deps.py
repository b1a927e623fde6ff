"""What endpoints are handed: the service's settings and cipher, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tongban_kit.auth import AccessClaims, require
from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import Forbidden
from tongban_registration.identity_client import IdentityClient
from tongban_registration.settings import RegistrationSettings

REVIEW_SCOPE = "registration:review"


def _settings(request: Request) -> RegistrationSettings:
    settings: RegistrationSettings = request.app.state.settings
    return settings


def _cipher(request: Request) -> FieldCipher:
    cipher: FieldCipher = request.app.state.cipher
    return cipher


SettingsDep = Annotated[RegistrationSettings, Depends(_settings)]
CipherDep = Annotated[FieldCipher, Depends(_cipher)]

#: A signed-in person at any level (drafting needs no more).
Person = Annotated[AccessClaims, Depends(require(principals=("person",)))]
#: A person signed in at `substantial` or above (submitting; 401 step-up otherwise).
SubstantialPerson = Annotated[
    AccessClaims, Depends(require(principals=("person",), min_acr="substantial"))
]


async def _officer(
    claims: Annotated[AccessClaims, Depends(require(REVIEW_SCOPE))], settings: SettingsDep
) -> AccessClaims:
    """An officer of this node: the review scope, and a token issued for this node."""
    if claims.node != settings.node.node_code:
        raise Forbidden(f"officers of node {claims.node} cannot review here")
    return claims


Officer = Annotated[AccessClaims, Depends(_officer)]


def _identity(request: Request) -> IdentityClient | None:
    identity: IdentityClient | None = request.app.state.identity
    return identity


IdentityDep = Annotated[IdentityClient | None, Depends(_identity)]
