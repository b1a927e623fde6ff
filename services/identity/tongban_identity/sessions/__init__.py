"""Signing in and staying signed in: login, TOTP, refresh-token families, logout, revocation.

* ``login`` — resident ID + password (+ TOTP), with back-off per account and per address
  (``throttle``); issues an access token and the first refresh token of a new family.
* ``refresh`` — refresh tokens rotate; each family is one sign-in. Reusing a spent token
  after a short grace window revokes the whole family (RFC 9700 §4.14.2).
* ``grants`` — the OAuth token endpoint's grants, one mapping entry each, and RFC 6749
  errors as problem+json.
* ``totp`` — optional RFC 6238 second factor, sealed at rest, codes never accepted twice.
"""
