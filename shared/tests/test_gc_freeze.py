"""``NodeSettings.gc_freeze``: a started service's objects leave the collector's full scans."""

from __future__ import annotations

import gc

import pytest

from tongban_kit.service import create_base_app
from tongban_kit.settings import BaseServiceSettings, NodeSettings


@pytest.mark.parametrize("freeze", [True, False])
async def test_startup_objects_are_frozen_only_when_set(freeze: bool) -> None:
    settings = BaseServiceSettings(node=NodeSettings(gc_freeze=freeze))
    app = create_base_app(
        settings=settings, title="t", description="", routers=[], verify_tokens=False
    )
    gc.unfreeze()
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
        assert (frozen > 0) is freeze
    finally:
        gc.unfreeze()


def test_the_test_suite_runs_with_it_off() -> None:
    assert NodeSettings().gc_freeze is False
