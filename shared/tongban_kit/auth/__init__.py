"""Access tokens, checked locally by every service against identity's published keys.

``JwksCache`` holds identity's public keys by key id; ``verify_access_token`` checks a token
against them and returns its ``AccessClaims``; ``require(*scopes, min_acr=...)`` is the FastAPI
dependency endpoints declare; ``token_verification`` wires an app in its lifespan
(``create_base_app`` does it for every service); refusals carry their ``WWW-Authenticate``
challenge. ``ServiceTokens`` gets a service's own tokens (service accounts). The wiring is
shown in ``tongban_kit.auth.dependencies``.
"""

from tongban_kit.auth.challenges import (
    BearerChallenge,
    InsufficientScope,
    InvalidToken,
    StepUpRequired,
)
from tongban_kit.auth.claims import (
    ASSURANCE_LEVELS,
    OPERATOR_SCOPE,
    AccessClaims,
    AssuranceLevel,
    Principal,
    assurance_at_least,
)
from tongban_kit.auth.client import ServiceTokens
from tongban_kit.auth.dependencies import require, token_verification
from tongban_kit.auth.jwks import JwksCache, UnknownKeyId
from tongban_kit.auth.verify import (
    ACCESS_TOKEN_ALGORITHM,
    ACCESS_TOKEN_TYPE,
    verify_access_token,
)

__all__ = [
    "ACCESS_TOKEN_ALGORITHM",
    "ACCESS_TOKEN_TYPE",
    "ASSURANCE_LEVELS",
    "OPERATOR_SCOPE",
    "AccessClaims",
    "AssuranceLevel",
    "BearerChallenge",
    "InsufficientScope",
    "InvalidToken",
    "JwksCache",
    "Principal",
    "ServiceTokens",
    "StepUpRequired",
    "UnknownKeyId",
    "assurance_at_least",
    "require",
    "token_verification",
    "verify_access_token",
]
