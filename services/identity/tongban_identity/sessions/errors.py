"""Sign-in errors (the OAuth endpoints' RFC 6749 errors are ``departments.errors``)::

Unauthorized (401)
├── LoginFailed          no such account or a wrong password (indistinguishable)
├── TotpRequired         the password was right; this account also needs a code
└── TotpRejected         the code is wrong or was used already
BadRequest (400)
└── TotpCodeMismatch     enrolment: the first code does not match the new secret
LoginThrottled (429)     too many failures: ``Retry-After`` says when to try again
"""

from __future__ import annotations

from tongban_kit.errors import BadRequest, TongbanError, Unauthorized


class LoginFailed(Unauthorized):
    """One answer for an unknown account and for a wrong password, so neither tells which."""

    type_slug = "login-failed"

    def __init__(self) -> None:
        super().__init__("the resident ID number and password do not match an account")


class TotpRequired(Unauthorized):
    type_slug = "totp-required"

    def __init__(self) -> None:
        super().__init__("this account needs the current code of its authenticator app (totp)")


class TotpRejected(Unauthorized):
    type_slug = "totp-invalid"

    def __init__(self) -> None:
        super().__init__("the one-time code is wrong, expired or already used")


class TotpCodeMismatch(BadRequest):
    type_slug = "totp-invalid"

    def __init__(self) -> None:
        super().__init__(
            "the code does not match the new secret; check the device's clock and send the "
            "current code"
        )


class LoginThrottled(TongbanError):
    """429 with ``Retry-After``; keyed by blind index, so the same for unknown accounts."""

    status, title, type_slug = 429, "Too Many Requests", "login-throttled"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many failed sign-ins; try again in {retry_after_s} s",
            headers={"Retry-After": str(retry_after_s)},
            retry_after=retry_after_s,
        )
