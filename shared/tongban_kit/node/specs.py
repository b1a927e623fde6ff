"""Find the node's services through the ``tongban.services`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from tongban_kit.service import ServiceSpec

__all__ = ["load_specs"]


def load_specs() -> list[ServiceSpec]:
    """Every installed service's spec, in start order (the gateway last)."""
    specs = []
    for entry in entry_points(group="tongban.services"):
        spec = entry.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {entry.name} is not a ServiceSpec")
        specs.append(spec)
    return sorted(specs, key=lambda s: (s.start_order, s.name))
