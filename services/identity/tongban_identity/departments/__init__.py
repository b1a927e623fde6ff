"""Departments as OAuth clients: enrolled by operators with their public keys, they obtain
access tokens by client credentials, authenticating with a signed JWT (private_key_jwt,
RFC 7523 §2.2 / OpenID Connect Core §9)."""
