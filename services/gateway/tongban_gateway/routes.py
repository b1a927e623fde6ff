"""The route table: which path prefix goes to which service.

``/api/<service>/<rest>`` goes to ``<service base URL>/<rest>``, the query string kept. The table
is built from settings when the app is created, so a bad URL stops the gateway at start with a
message naming the setting, not at the first request.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from tongban_gateway.settings import GatewaySettings

#: RFC 3986 pchar minus percent-encodings, plus "/": what may stay as it is in a path.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

__all__ = ["RouteConfigError", "RouteTable", "Upstream"]

# Served on every service's own port for operators and scrapers; never routed from outside.
_INTERNAL_PATHS = frozenset({"metrics"})


class RouteConfigError(ValueError):
    """A service URL in the settings cannot be routed to."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """One service behind the gateway: the prefix callers use and where it really lives."""

    name: str
    base_url: httpx.URL

    @property
    def prefix(self) -> str:
        """The public path prefix, e.g. ``/api/identity/``."""
        return f"/api/{self.name}/"

    def exposes(self, path: str) -> bool:
        """Whether ``path`` (what follows the prefix) may be forwarded to this service.

        Paths with ``.``/``..`` segments are refused rather than resolved, so a caller never
        steps out of the prefix it was routed by; so are the services' internal endpoints.
        """
        if any(segment in (".", "..") for segment in path.split("/")):
            return False
        return path.strip("/") not in _INTERNAL_PATHS

    def url_for(self, path: str, query: bytes = b"") -> httpx.URL:
        """The service's URL for ``path`` (what follows the prefix, decoded) and the raw query
        string. The path is percent-encoded again, so any character a caller managed to put
        in it (a control character, ``%``, ``?``) reaches the service as the same text."""
        base_path = self.base_url.path.rstrip("/")
        raw = f"{base_path}/{quote(path, safe=_PATH_SAFE)}".encode("ascii")
        return self.base_url.copy_with(raw_path=raw + (b"?" + query if query else b""))

    def public_location(self, location: str, public_base: str) -> str:
        """Rewrite a redirect that points into this service so it points through the gateway.

        ``public_base`` is the gateway's own URL for the prefix (``http://host/api/identity``).
        Redirects elsewhere are returned unchanged.
        """
        origin = str(self.base_url.copy_with(path="/", query=None)).rstrip("/")
        base_path = self.base_url.path.rstrip("/")
        if location.startswith(origin + "/"):
            location = location[len(origin) :]
        elif not location.startswith("/") or location.startswith("//"):
            return location
        if base_path and not location.startswith(base_path + "/"):
            return location
        return public_base + location[len(base_path) :]


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every service the gateway routes to, in the order they are matched."""

    upstreams: tuple[Upstream, ...]

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RouteTable:
        """Build and check the table; raise ``RouteConfigError`` naming a bad setting."""
        prefix = settings.model_config.get("env_prefix", "")
        return cls(
            upstreams=(
                Upstream("identity", _base_url(settings.identity_url, f"{prefix}IDENTITY_URL")),
                Upstream(
                    "registration",
                    _base_url(settings.registration_url, f"{prefix}REGISTRATION_URL"),
                ),
                Upstream("exchange", _base_url(settings.exchange_url, f"{prefix}EXCHANGE_URL")),
            )
        )


def _base_url(value: str, setting: str) -> httpx.URL:
    # Credentials have no place in these URLs; if someone put them there, keep them out of logs.
    shown = "<redacted>" if "@" in value else repr(value)
    problem = f"{setting}={shown} is not a service base URL"
    try:
        url = httpx.URL(value)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise RouteConfigError(f"{problem}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise RouteConfigError(f"{problem}: expected http(s)://host[:port][/path]")
    if port is not None and not 0 < port < 65536:
        raise RouteConfigError(f"{problem}: port {port} is out of range")
    if url.query or url.fragment or url.userinfo:
        raise RouteConfigError(f"{problem}: a query, fragment or credentials do not belong in it")
    return url
