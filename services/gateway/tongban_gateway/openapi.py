"""One API description for the node: every service's OpenAPI, as callers see it through the gateway.

Each service's ``/openapi.json`` is fetched (at start, then every few minutes; sooner while one
is missing) and merged into the gateway's own: paths get the service's public prefix
(``/v1/persons`` becomes ``/api/identity/v1/persons``), operation ids and tags the service's
name, and components are shared where two services define the same thing under the same name
and renamed (``Identity_Problem``), with every reference rewritten, where they differ. A service
that cannot be reached keeps its last fetched description, or is left out and named in
``x-tongban-missing``; the merged document is always served.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import aiohttp
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tongban_gateway.routes import RouteTable, Upstream
from tongban_kit.openapi import document_problems

__all__ = ["MergedOpenAPI", "merge"]

logger = logging.getLogger("tongban.gateway.openapi")

_REFRESH_S = 300.0
_RETRY_S = 5.0
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Served on the services' own ports only (see Upstream.exposes): not part of the public API.
_INTERNAL_PATHS = frozenset({"/metrics"})


class MergedOpenAPI:
    """The merged document of ``app`` and the services in ``table``; install with
    ``app.openapi = merged.document`` and run ``refresh_forever`` for the app's lifetime."""

    def __init__(self, app: FastAPI, table: RouteTable) -> None:
        self.app = app
        self.table = table
        self._documents: dict[str, dict[str, Any]] = {}
        self._merged: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        """The merged description as last refreshed (the gateway's own until then)."""
        if self._merged is None:
            self._merged = self._merge()
        return self._merged

    async def refresh(self, session: aiohttp.ClientSession) -> bool:
        """Fetch every service's description; True when all were had."""
        results = await asyncio.gather(
            *(self._fetch(session, upstream) for upstream in self.table.upstreams)
        )
        self._merged = self._merge()
        return all(results)

    async def refresh_forever(self, session: aiohttp.ClientSession) -> None:
        while True:
            complete = await self.refresh(session)
            await asyncio.sleep(_REFRESH_S if complete else _RETRY_S)

    async def _fetch(self, session: aiohttp.ClientSession, upstream: Upstream) -> bool:
        url = str(upstream.url_for("openapi.json"))
        try:
            async with session.get(url, timeout=_FETCH_TIMEOUT) as response:
                if response.status != 200:
                    raise ValueError(f"answered {response.status}")
                document = await response.json(content_type=None)
            if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
                raise ValueError("not an OpenAPI document")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("OpenAPI of %s not fetched: %s", upstream.name, exc)
            return False
        self._documents[upstream.name] = document
        return True

    def _merge(self) -> dict[str, Any]:
        own = document_problems(
            get_openapi(
                title=self.app.title,
                version=self.app.version,
                description=self.app.description,
                routes=self.app.routes,
            )
        )
        merged = merge(own, self._documents)
        missing = [u.name for u in self.table.upstreams if u.name not in self._documents]
        if missing:
            merged["x-tongban-missing"] = missing
        return merged


def merge(own: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``own`` with every service's paths under ``/api/<service>`` and components merged
    without collisions (a pure function, for tests)."""
    merged = copy.deepcopy(own)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = merged.setdefault("components", {})
    tags: list[dict[str, Any]] = merged.setdefault("tags", [])
    for service, document in services.items():
        document = copy.deepcopy(document)
        renames = _renames(service, document.get("components", {}), components)
        document = _rewrite_refs(document, renames)
        for section, entries in document.get("components", {}).items():
            target = components.setdefault(section, {})
            for name, value in entries.items():
                ref = f"#/components/{section}/{name}"
                target[renames.get(ref, ref).rsplit("/", 1)[-1]] = value
        for path, item in document.get("paths", {}).items():
            if path in _INTERNAL_PATHS:
                continue
            paths[f"/api/{service}{path}"] = _prefixed_operations(service, item)
        for tag in document.get("tags", []):
            tags.append({**tag, "name": f"{service}: {tag['name']}"})
    if not tags:
        del merged["tags"]
    return merged


def _renames(
    service: str, theirs: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Refs to rename: a component whose name is taken by a different definition."""
    renames: dict[str, str] = {}
    prefix = service.replace("-", "_").capitalize()
    for section, entries in theirs.items():
        for name, value in entries.items():
            existing = ours.get(section, {}).get(name)
            if existing is not None and existing != value:
                old = f"#/components/{section}/{name}"
                renames[old] = f"#/components/{section}/{prefix}_{name}"
    return renames


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    """``node`` with every ``$ref`` in ``renames`` pointed at its new name."""
    if not renames:
        return node
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                result[key] = renames.get(value, value)
            else:
                result[key] = _rewrite_refs(value, renames)
        return result
    if isinstance(node, list):
        return [_rewrite_refs(value, renames) for value in node]
    return node


def _prefixed_operations(service: str, item: dict[str, Any]) -> dict[str, Any]:
    for operation in item.values():
        if not isinstance(operation, dict):
            continue
        if "operationId" in operation:
            operation["operationId"] = f"{service}_{operation['operationId']}"
        if "tags" in operation:
            operation["tags"] = [f"{service}: {tag}" for tag in operation["tags"]]
        else:
            operation["tags"] = [service]
    return item
