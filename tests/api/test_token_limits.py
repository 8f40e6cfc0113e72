"""B3: the API's rate limits count per working token, else per address; 429 is a problem
with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest

from electro.models import User
from tests.support import make_user
from tests.support.api import bearer, make_token


async def _status(response: Any) -> int:
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/problem+json"
    return int(response.status_code)


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**settings_overrides, "default_rate_limit": "3/minute"}


async def test_rate_limits_count_per_token_and_answer_429_problems(
    app: Any, client: Any
) -> None:
    user: User = await make_user(app, "eve")
    first, second = await make_token(app, user, "a"), await make_token(app, user, "b")
    for _ in range(3):
        assert (await client.raw.get("/api/v1/me", headers=bearer(first))).status_code == 200
    limited = await client.raw.get("/api/v1/me", headers=bearer(first))
    assert await _status(limited) == 429
    assert int(limited.headers["Retry-After"]) >= 1
    # Another token, and the address itself, have limits of their own.
    assert (await client.raw.get("/api/v1/me", headers=bearer(second))).status_code == 200
    assert (await client.raw.get("/api/v1/categories")).status_code == 200
    # A made-up token counts against the address, so it cannot open fresh limits.
    for n in range(2):
        await client.raw.get("/api/v1/categories", headers=bearer(f"made-up-{n}"))
    made_up = await client.raw.get("/api/v1/categories", headers=bearer("x"))
    assert await _status(made_up) == 429
