"""跨省通办: which requests are about a business of another node.

A USCC (GB 32100) carries the division code of the node that registered the business in
characters 3 to 8. The gateway sends these public requests to the node that holds that
division (``Directory.holder``: the division's own node, else its city's, else its
province's) instead of its own registration service:

- ``GET|HEAD /api/registration/v1/businesses/{uscc}`` (the public profile) and
  ``…/{uscc}/licence`` (the e-licence);
- ``GET|HEAD /api/registration/v1/licences/verify?uscc=…`` or ``?payload=…`` (the QR payload,
  whose document names the USCC; only the holding node can say whether it signed it).

A request that arrived from another node (with a valid node assertion) is always answered
here, so two nodes never bounce one request between them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import parse_qs

__all__ = ["business_division"]

_BUSINESS = re.compile(r"^/api/registration/v1/businesses/([0-9A-Z]{18})(?:/licence)?$")
_VERIFY = "/api/registration/v1/licences/verify"
_READS = frozenset({"GET", "HEAD"})


def business_division(method: str, path: str, query: bytes) -> str | None:
    """The division code of the business this request is about, or None."""
    if method not in _READS:
        return None
    uscc: str | None = None
    matched = _BUSINESS.match(path)
    if matched:
        uscc = matched.group(1)
    elif path == _VERIFY and query:
        uscc = _uscc_in_query(query)
    if uscc is None or len(uscc) != 18 or not uscc[2:8].isdigit():
        return None
    return uscc[2:8]


def _uscc_in_query(query: bytes) -> str | None:
    try:
        params = parse_qs(query.decode("latin-1"), max_num_fields=5)
    except ValueError:
        return None
    if "uscc" in params:
        return params["uscc"][0].strip().upper()
    if "payload" in params:
        encoded = params["payload"][0].partition("~")[0]
        try:
            document = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except (binascii.Error, ValueError):
            return None
        uscc = document.get("uscc") if isinstance(document, dict) else None
        return uscc if isinstance(uscc, str) else None
    return None
