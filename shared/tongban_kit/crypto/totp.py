"""Time-based one-time passwords (RFC 6238) for second factors.

HMAC-SHA1, 6 digits and a 30-second step are what every authenticator app
supports by default, so they are the defaults here. Pure standard library.

The shared secret is as sensitive as a password and, unlike a password, must be
recoverable: store it encrypted (:class:`~tongban_kit.crypto.FieldCipher`). Store
also the step counter :func:`verify_totp` returns and pass it back next time, so
that a code, once used, cannot be replayed within its window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import struct
from urllib.parse import quote, urlencode

__all__ = [
    "DEFAULT_DIGITS",
    "DEFAULT_STEP_SECONDS",
    "DEFAULT_WINDOW",
    "new_totp_secret",
    "provisioning_uri",
    "totp_at",
    "verify_totp",
]

DEFAULT_DIGITS = 6
DEFAULT_STEP_SECONDS = 30
#: Steps accepted either side of the current one. One covers clock drift and the time
#: a person takes to type; each more widens an attacker's odds per guess, since
#: 2 * window + 1 codes are valid at once.
DEFAULT_WINDOW = 1

_SECRET_BYTES = 20  # 160 bits: RFC 4226 requires at least 128 and recommends 160


def new_totp_secret() -> str:
    """Return a new random 160-bit secret in base32 (32 characters, no padding)."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def provisioning_uri(
    secret: str,
    *,
    account: str,
    issuer: str,
    digits: int = DEFAULT_DIGITS,
    step_seconds: int = DEFAULT_STEP_SECONDS,
) -> str:
    """Return the ``otpauth://totp/...`` URI an authenticator app enrols from (as a QR code).

    Follows the Google Authenticator key URI format: the label is
    ``issuer:account`` and ``issuer`` is repeated as a parameter; both are
    percent-encoded UTF-8, so Chinese names are fine. Neither may contain a colon,
    which the format reserves as the label separator.
    """
    _decode_secret(secret)
    _check_digits(digits)
    if ":" in issuer or ":" in account:
        raise ValueError("issuer and account may not contain ':'")
    if not issuer or not account:
        raise ValueError("issuer and account must not be empty")
    label = quote(issuer, safe="") + ":" + quote(account, safe="")
    query = urlencode(
        {
            "secret": _normalise_secret(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": digits,
            "period": step_seconds,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def totp_at(
    secret: str,
    for_time: float,
    *,
    digits: int = DEFAULT_DIGITS,
    step_seconds: int = DEFAULT_STEP_SECONDS,
) -> str:
    """Return the code for ``secret`` at Unix time ``for_time``."""
    _check_digits(digits)
    return _hotp(_decode_secret(secret), _step_of(for_time, step_seconds), digits)


def verify_totp(
    secret: str,
    code: str,
    *,
    now: float,
    last_used_step: int | None,
    window: int = DEFAULT_WINDOW,
    digits: int = DEFAULT_DIGITS,
    step_seconds: int = DEFAULT_STEP_SECONDS,
) -> int | None:
    """Check ``code`` at Unix time ``now``; return the matched step counter, or None.

    Codes for the current step and ``window`` steps either side are accepted,
    except any step at or before ``last_used_step``: store the returned counter
    and pass it here next time, and a code cannot be used twice (nor an older code
    after a newer one). Blanks in ``code`` are ignored, since people type
    ``123 456``; anything else that is not exactly ``digits`` digits is refused.
    Every candidate is compared in constant time, matched or not.
    """
    if window < 0:
        raise ValueError("window must not be negative")
    _check_digits(digits)
    key = _decode_secret(secret)
    code = "".join(code.split())
    if len(code) != digits or not (code.isascii() and code.isdigit()):
        return None
    current = _step_of(now, step_seconds)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if step < 0 or (last_used_step is not None and step <= last_used_step):
            continue
        # No early exit: the time taken does not depend on which step matched.
        if hmac.compare_digest(_hotp(key, step, digits).encode(), code.encode()):
            matched = step
    return matched


def _hotp(key: bytes, counter: int, digits: int) -> str:
    # RFC 4226 section 5.3: HMAC the big-endian counter, take 4 bytes at the offset
    # named by the last nibble, drop the sign bit, keep the low decimal digits.
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _step_of(unix_time: float, step_seconds: int) -> int:
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    return math.floor(unix_time / step_seconds)


def _check_digits(digits: int) -> None:
    # RFC 4226 requires at least 6; the 31-bit truncated value has only 9-10
    # decimal digits, and no authenticator app offers more than 8.
    if not 6 <= digits <= 8:
        raise ValueError("digits must be 6, 7 or 8")


def _normalise_secret(secret: str) -> str:
    # Secrets are shown to people who may type them in groups or in lower case.
    return "".join(secret.split()).upper().rstrip("=")


def _decode_secret(secret: str) -> bytes:
    text = _normalise_secret(secret)
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("the TOTP secret is not valid base32") from None
    if not key:
        raise ValueError("the TOTP secret is empty")
    return key
