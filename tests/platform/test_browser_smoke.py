"""The home page in a real Chromium: htmx active and locked down, no console or CSP errors."""

from __future__ import annotations

from typing import Any

import pytest

from electro.db import make_engine, make_sessionmaker
from electro.models import Category

pytestmark = pytest.mark.browser


async def _seed_categories(database_url: str, names: list[str]) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            db.add_all(Category(name=name) for name in names)
    finally:
        await engine.dispose()


async def test_home_page_runs_htmx_without_errors(
    live_server: Any,
    page: Any,
    js_disabled_page: Any,
    browser_errors: list[str],
    database_url: str,
) -> None:
    # The server reads the catalogue per request, so seeding after it started is fine.
    await _seed_categories(database_url, ["Cameras & <Lenses>", "Headphones"])

    response = await page.goto(live_server.url + "/")
    assert response.status == 200
    await page.wait_for_function("typeof htmx === 'object'")
    assert await page.evaluate("typeof htmx") == "object"
    assert await page.evaluate("htmx.config.allowEval") is False
    assert await page.evaluate("htmx.config.selfRequestsOnly") is True
    names = await page.locator(".category-name").all_inner_texts()
    assert names == ["Cameras & <Lenses>", "Headphones"]
    assert browser_errors == []

    # Without JavaScript the server-rendered page is complete (progressive enhancement).
    await js_disabled_page.goto(live_server.url + "/")
    assert await js_disabled_page.locator(".category-name").all_inner_texts() == names

    # The harness notices a CSP violation: an inline script is refused and reported.
    async with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        await page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.inlineRan = true'; document.body.append(s); }"
        )
    assert await page.evaluate("window.inlineRan === undefined")
    assert any("Content Security Policy" in error for error in browser_errors), browser_errors
