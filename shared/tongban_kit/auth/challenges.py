"""Bearer-token errors: problem+json plus the ``WWW-Authenticate`` challenge a client acts on.

    Unauthorized (401)
    ├── InvalidToken          error="invalid_token"; also no token at all (no error code)
    └── StepUpRequired        error="insufficient_user_authentication", acr_values (RFC 9470)
    Forbidden (403)
    └── InsufficientScope     error="insufficient_scope", scope (RFC 6750 §3.1)

Each carries ``headers``, which the kit's one problem handler sends with the problem.
"""

from __future__ import annotations

import re
from typing import Any

from tongban_kit.errors import Forbidden, Unauthorized

__all__ = [
    "BearerChallenge",
    "InsufficientScope",
    "InvalidToken",
    "StepUpRequired",
]

# RFC 6750 §3: a quoted value may hold %x20-21 / %x23-5B / %x5D-7E only.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quoted(value: str) -> str:
    return '"' + _UNSAFE.sub("?", value) + '"'


class BearerChallenge(Exception):
    """Mixin: the error answers with ``WWW-Authenticate: Bearer <params>``."""

    headers: dict[str, str] | None

    def _challenge(self, **params: str | None) -> None:
        parts = [f"{name}={_quoted(value)}" for name, value in params.items() if value]
        self.headers = {"WWW-Authenticate": "Bearer" + (" " + ", ".join(parts) if parts else "")}


class InvalidToken(BearerChallenge, Unauthorized):
    """No token, or one that does not verify (401)."""

    type_slug = "invalid-token"

    def __init__(self, detail: str, *, missing: bool = False, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        # RFC 6750 §3.1: a request with no credentials gets a bare challenge, no error code.
        if missing:
            self._challenge(realm="tongban")
        else:
            self._challenge(realm="tongban", error="invalid_token", error_description=detail)


class StepUpRequired(BearerChallenge, Unauthorized):
    """The person signed in at too low a level of assurance for this request (401)."""

    type_slug = "step-up-required"

    def __init__(self, detail: str, *, required_acr: str) -> None:
        super().__init__(detail, required_acr=required_acr, acr_values=required_acr)
        self._challenge(
            realm="tongban",
            error="insufficient_user_authentication",
            error_description=detail,
            acr_values=required_acr,
        )


class InsufficientScope(BearerChallenge, Forbidden):
    """The token is fine but lacks a scope the request needs (403)."""

    type_slug = "insufficient-scope"

    def __init__(self, detail: str, *, required_scopes: tuple[str, ...]) -> None:
        super().__init__(detail, required_scopes=list(required_scopes))
        self._challenge(
            realm="tongban",
            error="insufficient_scope",
            error_description=detail,
            scope=" ".join(required_scopes),
        )
