"""API fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.shop import add_catalogue


@pytest.fixture
async def catalogue(app: Any) -> dict[str, int]:
    return await add_catalogue(app)
