"""The node's token signing keys: ES256 key pairs with a lifecycle, published as a JWKS."""
