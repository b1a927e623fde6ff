"""Signatures: the node's document-signing key and the documents it signs (detached JWS,
RFC 7797), persons' own signing keys, and levels of assurance raised by proof (``substantial``
by an authoritative record, ``high`` by possession of a registered key).
"""
