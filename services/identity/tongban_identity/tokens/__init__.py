"""Access tokens: issuing them (ES256, RFC 9068) and the issuer's discovery document."""
