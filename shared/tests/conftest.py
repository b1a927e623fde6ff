from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kit_app import KitService, kit_service_fixture

from tongban_kit.settings import NodeSettings


@pytest.fixture
async def kit_service(make_database, node_settings: NodeSettings) -> AsyncIterator[KitService]:  # type: ignore[no-untyped-def]
    async for service in kit_service_fixture(make_database, node_settings):
        yield service
