"""Walks the URL map so a new route cannot slip past the CSRF check or the rate limiter."""

from __future__ import annotations

import re
from typing import Any

from quart_rate_limiter import QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EXEMPT_ALLOWED = {"system.healthz"}  # health probe and benchmark baseline


def _concrete(rule: Any) -> str:
    return re.sub(r"<[^>]+>", "1", rule.rule)


async def test_rate_limit_exemptions_come_only_from_the_allow_list(app: Any) -> None:
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        exempt = getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False)
        assert not exempt or rule.endpoint in EXEMPT_ALLOWED, (
            f"{rule.rule} is exempt from rate limits without being on the allow-list"
        )


async def test_every_unsafe_route_refuses_a_missing_csrf_token(app: Any, client: Any) -> None:
    await client.refresh_token()
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & UNSAFE):
            response = await client.raw.open(_concrete(rule), method=method, form={})
            assert response.status_code == 403, f"{method} {rule.rule} lacks the CSRF check"
    # No app route takes an unsafe method yet, so the loop above visits none today; the probe
    # proves the check is global (before_request), covering routes added later.
    @app.post("/probe")
    async def probe() -> str:
        return "reached"

    response = await client.raw.post("/probe", form={})
    assert response.status_code == 403
    assert (await client.post("/probe")).status_code == 200
