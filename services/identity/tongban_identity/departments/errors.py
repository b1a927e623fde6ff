"""OAuth 2 token-endpoint errors (RFC 6749 §5.2) as problem+json.

Each is a ``TongbanError``, so the kit's one handler renders it; the body carries the RFC's
``error`` and ``error_description`` members beside the problem members::

    OAuthError
    ├── InvalidRequest          400  invalid_request
    ├── InvalidClient           401  invalid_client: client authentication failed
    ├── InvalidGrant            400  invalid_grant
    ├── UnauthorizedClient      400  unauthorized_client
    ├── UnsupportedGrantType    400  unsupported_grant_type
    └── InvalidScope            400  invalid_scope

The client-credentials grant raises ``InvalidClient`` for every fault of the client assertion
(RFC 7523 §3.2: the assertion authenticates the client, so a bad one is a failed client
authentication, not a bad grant), ``InvalidScope`` and ``UnsupportedGrantType``. The others are
here for the token endpoint's other grants.
"""

from __future__ import annotations

from typing import ClassVar

from tongban_kit.errors import BadRequest, TongbanError, Unauthorized

__all__ = [
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "OAuthError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
]


class OAuthError(TongbanError):
    """An RFC 6749 §5.2 error response; ``detail`` doubles as ``error_description``."""

    error: ClassVar[str] = "invalid_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error=self.error, error_description=detail)


class InvalidRequest(OAuthError, BadRequest):
    error, type_slug = "invalid_request", "oauth-invalid-request"


class InvalidClient(OAuthError, Unauthorized):
    error, type_slug = "invalid_client", "oauth-invalid-client"


class InvalidGrant(OAuthError, BadRequest):
    error, type_slug = "invalid_grant", "oauth-invalid-grant"


class UnauthorizedClient(OAuthError, BadRequest):
    error, type_slug = "unauthorized_client", "oauth-unauthorized-client"


class UnsupportedGrantType(OAuthError, BadRequest):
    error, type_slug = "unsupported_grant_type", "oauth-unsupported-grant-type"


class InvalidScope(OAuthError, BadRequest):
    error, type_slug = "invalid_scope", "oauth-invalid-scope"
