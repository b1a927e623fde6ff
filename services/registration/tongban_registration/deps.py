"""What endpoints are handed: the service's settings and cipher, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tongban_kit.auth import AccessClaims, require
from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import Forbidden
from tongban_registration.exchange_client import ExchangeClient
from tongban_registration.identity_client import IdentityClient
from tongban_registration.settings import RegistrationSettings

REVIEW_SCOPE = "registration:review"
#: Officers who decide accreditation licence applications and suspend or revoke licences.
LICENSING_SCOPE = "registration:licensing"


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


async def _licensing_officer(
    claims: Annotated[AccessClaims, Depends(require(LICENSING_SCOPE))], settings: SettingsDep
) -> AccessClaims:
    """A licensing officer of this node: the licensing scope, a token of this node."""
    if claims.node != settings.node.node_code:
        raise Forbidden(f"officers of node {claims.node} cannot decide licences here")
    return claims


LicensingOfficer = Annotated[AccessClaims, Depends(_licensing_officer)]
#: A person for themselves or acting for a business (a licence's holder is checked later).
PersonOrActing = Annotated[AccessClaims, Depends(require(principals=("person", "business")))]


def _identity(request: Request) -> IdentityClient | None:
    identity: IdentityClient | None = request.app.state.identity
    return identity


IdentityDep = Annotated[IdentityClient | None, Depends(_identity)]


def _exchange(request: Request) -> ExchangeClient | None:
    exchange: ExchangeClient | None = request.app.state.exchange
    return exchange


ExchangeDep = Annotated[ExchangeClient | None, Depends(_exchange)]
