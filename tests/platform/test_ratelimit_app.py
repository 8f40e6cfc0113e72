"""The default rate limit through the real app (quart-rate-limiter, in-memory store)."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from quart_rate_limiter import (
    QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE,
    QUART_RATE_LIMITER_LIMITS_ATTRIBUTE,
)
from sqlalchemy import func, select

from electro.app import create_app
from electro.models import Event


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    settings_overrides["default_rate_limit"] = "3/minute"
    return settings_overrides


async def test_every_route_without_its_own_limit_gets_the_default(app: Any, client: Any) -> None:
    checked = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False) or getattr(
            view, QUART_RATE_LIMITER_LIMITS_ATTRIBUTE, None
        ):
            continue  # exemptions are policed by test_url_map; own limits by their own tests
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        path = re.sub(r"<[^>]+>", "1", rule.rule)  # the limiter runs before the view, even a 404
        statuses = [(await client.raw.open(path, method=method)).status_code for _ in range(4)]
        assert 429 not in statuses[:3] and statuses[3] == 429, f"{method} {rule.rule}: {statuses}"
        checked.append(rule.endpoint)
    assert {"shop.index", "static"} <= set(checked)


async def test_the_fourth_request_gets_one_retry_after_and_a_page_or_fragment(
    app: Any, client: Any
) -> None:
    for _ in range(3):
        assert (await client.get("/")).status_code == 200

    page = await client.get("/")
    assert page.status_code == 429
    assert len(page.headers.getlist("Retry-After")) == 1
    # 3 a minute: the next one is allowed 20 s after the first (whole seconds, rounded up).
    assert page.headers["Retry-After"] in ("19", "20")
    body = await page.get_data(as_text=True)
    assert "<html" in body and "Too many requests" in body

    fragment = await client.get("/", htmx=True)
    assert fragment.status_code == 429
    assert len(fragment.headers.getlist("Retry-After")) == 1
    text = await fragment.get_data(as_text=True)
    assert "<html" not in text and "Too many requests" in text

    async with app.extensions["electro"].sessions() as db:
        recorded = await db.scalar(
            select(func.count(Event.id)).where(Event.type == "excess_rate_limit_exceeded")
        )
    assert recorded == 2


@pytest.mark.redis
async def test_two_app_instances_sharing_redis_let_exactly_three_of_twenty_through(
    settings_overrides: dict[str, Any], redis_url: str
) -> None:
    """Two workers (two whole apps) with one Redis: 20 simultaneous requests from one address
    against 3 a minute. quart-rate-limiter's own RedisStore let all 20 through."""
    settings_overrides["redis_url"] = redis_url
    workers = [create_app(settings_overrides) for _ in range(2)]
    # A fresh address per run keeps this test's Redis keys apart from earlier runs'.
    address = (f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 4000)
    async with workers[0].test_app() as first, workers[1].test_app() as second:
        clients = [first.test_client(), second.test_client()]
        responses = await asyncio.gather(
            *(clients[n % 2].get("/", scope_base={"client": address}) for n in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 3 + [429] * 17
