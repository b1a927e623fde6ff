"""The route table: which path prefix goes to which service, and what applies to each route.

``/api/<service>/<rest>`` goes to ``<service base URL>/<rest>``, the query string kept. Within a
service, the first declared route matching the method and ``/<rest>`` decides whether a token
is needed, the timeout, the body limit and the rate-limit class; the service's catch-all takes
the rest. The table is compiled from the route configuration when the app is created, so a bad
file or URL stops the gateway at start with a message naming it, not at the first request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from tongban_gateway.config import (
    GatewayConfig,
    NodeRoute,
    RateLimitClass,
    RouteConfigError,
    RouteRule,
    describe,
    load_config,
)
from tongban_gateway.settings import GatewaySettings

__all__ = [
    "MethodNotAllowed",
    "Route",
    "RouteConfigError",
    "RouteTable",
    "Upstream",
    "directory_url",
    "node_route",
]

# RFC 3986 pchar and "/": left as they are; anything else in a path segment is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# Served on every service's own port for operators and scrapers; never routed from outside.
_INTERNAL_PATHS = frozenset({"metrics"})


@dataclass(frozen=True, slots=True)
class Upstream:
    """One service behind the gateway: the prefix callers use and where it really lives."""

    name: str
    base_url: httpx.URL
    #: The public path prefix: ``/api/<name>/`` for a service, ``/nodes/<code>/`` for a node.
    prefix: str = ""
    base: str = field(init=False, repr=False, compare=False)  # base URL string ending in "/"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", str(self.base_url).rstrip("/") + "/")
        if not self.prefix:
            object.__setattr__(self, "prefix", f"/api/{self.name}/")

    def exposes(self, path: str) -> bool:
        """Whether ``path`` (what follows the prefix) may be forwarded to this service.

        Paths with ``.``/``..`` segments are refused rather than resolved, so a caller never
        steps out of the prefix it was routed by; so are the services' internal endpoints.
        """
        if any(segment in (".", "..") for segment in path.split("/")):
            return False
        return path.strip("/") not in _INTERNAL_PATHS

    def forward_url(self, path: str, query: bytes) -> str:
        """``url_for`` as a string, built by concatenation: the per-request fast path."""
        url = self.base + quote(path, safe=_PATH_SAFE)
        return f"{url}?{query.decode('latin-1')}" if query else url

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
class Route:
    """What the gateway does with a matched request: the limits and checks that apply.

    ``path`` is the public pattern, the label metrics and logs use for the route.
    """

    upstream: Upstream
    path: str
    methods: frozenset[str] | None
    public: bool
    timeout_s: float
    max_body_bytes: int
    rate_limit: str | None
    pattern: re.Pattern[str] | None = None  # None: the upstream's catch-all
    node: str | None = None  # the code of another node this route forwards to

    def matches(self, method: str, rest: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.pattern is None or self.pattern.fullmatch(rest) is not None


@dataclass(frozen=True, slots=True)
class _UpstreamRoutes:
    upstream: Upstream
    methods: frozenset[str]
    routes: tuple[Route, ...]  # declared order, the catch-all last


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every service the gateway routes to and the routes declared for each."""

    _by_name: dict[str, _UpstreamRoutes]
    rate_limits: dict[str, RateLimitClass]
    nodes: dict[str, Route]  # by node code

    @property
    def max_body_bytes(self) -> int:
        """The largest body any route takes: the limit applied before a route is known (each
        route's own is applied once it is)."""
        routes = [r for entry in self._by_name.values() for r in entry.routes]
        return max((r.max_body_bytes for r in [*routes, *self.nodes.values()]), default=0)

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        """The node's own services."""
        return tuple(entry.upstream for entry in self._by_name.values())

    @property
    def node_upstreams(self) -> tuple[Upstream, ...]:
        """Other nodes' gateways."""
        return tuple(route.upstream for route in self.nodes.values())

    def match(self, method: str, path: str) -> tuple[Route, str] | None:
        """The route for ``path`` (starting ``/api/`` or ``/nodes/``) and what follows the
        prefix, or None when nothing is routed there. Raises ``MethodNotAllowed`` for a method
        the upstream does not take."""
        if path.startswith("/nodes/"):
            code, _, rest = path[len("/nodes/") :].partition("/")
            node = self.nodes.get(code)
            return (node, rest) if node is not None else None
        name, _, rest = path[len("/api/") :].partition("/")
        entry = self._by_name.get(name)
        if entry is None:
            return None
        if method not in entry.methods:
            raise MethodNotAllowed(sorted(entry.methods))
        rest = "/" + rest
        for route in entry.routes:
            if route.matches(method, rest):
                return route, rest[1:]
        raise AssertionError("the catch-all route matches everything")  # pragma: no cover

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RouteTable:
        """Load the route file (or the built-in one) and compile it; ``RouteConfigError``
        naming the mistake."""
        config = load_config(settings.routes_file)
        try:
            return cls.from_config(config, settings)
        except RouteConfigError as exc:
            source = describe(settings.routes_file)
            raise RouteConfigError(f"route configuration {source}: {exc}") from None

    @classmethod
    def from_config(cls, config: GatewayConfig, settings: GatewaySettings) -> RouteTable:
        """Compile ``config``, taking URLs and limits it leaves out from ``settings``."""
        env = settings.model_config.get("env_prefix", "")
        by_name: dict[str, _UpstreamRoutes] = {}
        for entry in config.upstreams:
            if entry.name in by_name:
                raise RouteConfigError(f"upstream {entry.name!r} is declared twice")
            if entry.url is not None:
                url = _base_url(entry.url, f"upstreams[{entry.name}].url")
            elif entry.name in _URL_SETTINGS:
                setting = _URL_SETTINGS[entry.name]
                url = _base_url(getattr(settings, setting), f"{env}{setting.upper()}")
            else:
                raise RouteConfigError(f"upstream {entry.name!r} needs a url")
            upstream = Upstream(entry.name, url)
            defaults = _Defaults(
                timeout_s=entry.timeout_s or settings.upstream_timeout_s,
                max_body_bytes=_body_limit(entry.max_body_bytes, settings),
                rate_limit=_rate_class(entry.rate_limit, config, entry.name),
            )
            routes = [_compile(rule, upstream, defaults, config, settings) for rule in entry.routes]
            routes.append(
                Route(
                    upstream=upstream,
                    path=f"{upstream.prefix}{{path}}",
                    methods=None,
                    public=False,
                    timeout_s=defaults.timeout_s,
                    max_body_bytes=defaults.max_body_bytes,
                    rate_limit=defaults.rate_limit,
                )
            )
            by_name[entry.name] = _UpstreamRoutes(upstream, frozenset(entry.methods), tuple(routes))
        nodes: dict[str, Route] = {}
        for node in config.nodes:
            if node.code in nodes:
                raise RouteConfigError(f"node {node.code!r} is declared twice")
            nodes[node.code] = _node_route(node, settings, config)
        return cls(by_name, dict(config.rate_limits), nodes)


class MethodNotAllowed(Exception):
    """The upstream does not take this method; ``allowed`` lists the ones it does."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


_URL_SETTINGS = {
    "identity": "identity_url",
    "registration": "registration_url",
    "exchange": "exchange_url",
}


@dataclass(frozen=True, slots=True)
class _Defaults:
    timeout_s: float
    max_body_bytes: int
    rate_limit: str | None


def _compile(
    rule: RouteRule,
    upstream: Upstream,
    defaults: _Defaults,
    config: GatewayConfig,
    settings: GatewaySettings,
) -> Route:
    where = f"upstream {upstream.name!r} route {rule.path!r}"
    return Route(
        upstream=upstream,
        path=f"{upstream.prefix[:-1]}{rule.path}",
        methods=frozenset(rule.methods) if rule.methods is not None else None,
        public=rule.public,
        timeout_s=rule.timeout_s or defaults.timeout_s,
        max_body_bytes=(
            _body_limit(rule.max_body_bytes, settings)
            if rule.max_body_bytes is not None
            else defaults.max_body_bytes
        ),
        rate_limit=(
            _rate_class(rule.rate_limit, config, where)
            if rule.rate_limit is not None
            else defaults.rate_limit
        ),
        pattern=_pattern(rule.path, where),
    )


def _node_route(node: NodeRoute, settings: GatewaySettings, config: GatewayConfig) -> Route:
    """Everything under ``/nodes/<code>/`` to that node's gateway: protected, default limits."""
    return node_route(
        node.code,
        _base_url(node.url, f"nodes[{node.code}].url"),
        settings,
        rate_limit=_rate_class("default", config, f"node {node.code!r}"),
        timeout_s=node.timeout_s,
    )


def node_route(
    code: str,
    url: httpx.URL,
    settings: GatewaySettings,
    *,
    rate_limit: str | None,
    public: bool = False,
    timeout_s: float | None = None,
) -> Route:
    """A route to another node's gateway (from the route configuration or the directory)."""
    prefix = f"/nodes/{code}/"
    upstream = Upstream(f"node-{code}", url, prefix)
    return Route(
        upstream=upstream,
        path=f"{prefix}{{path}}",
        methods=None,
        public=public,
        timeout_s=timeout_s or settings.upstream_timeout_s,
        max_body_bytes=settings.node.max_body_bytes,
        rate_limit=rate_limit,
        node=code,
    )


def directory_url(value: str, code: str) -> httpx.URL:
    """A gateway URL the directory lists, checked like a configured one."""
    return _base_url(value, f"directory node {code} gateway_url")


def _pattern(path: str, where: str) -> re.Pattern[str]:
    """``{name}`` one segment, ``**`` anything, ``*`` anything within a segment."""
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\}|\*\*|\*)", path)
    regex = ""
    for part in parts:
        if part == "**":
            regex += ".*"
        elif part == "*":
            regex += "[^/]*"
        elif part.startswith("{") and part.endswith("}"):
            regex += "[^/]+"
        elif "{" in part or "}" in part:
            raise RouteConfigError(f"{where}: a path parameter is written {{name}}")
        else:
            regex += re.escape(part)
    return re.compile(regex)


def _rate_class(name: str | None, config: GatewayConfig, where: str) -> str | None:
    if name is None or name == "none":
        return None
    if name not in config.rate_limits:
        known = ", ".join(sorted(config.rate_limits)) or "none are declared"
        raise RouteConfigError(f"{where}: rate_limit {name!r} is not in rate_limits ({known})")
    return name


def _body_limit(value: int | None, settings: GatewaySettings) -> int:
    """A route's or upstream's own limit, or the node's. It may be higher than the node's
    (an upload route): the gateway's outer limit is then the highest of them (``max_body``)."""
    return settings.node.max_body_bytes if value is None else value


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
