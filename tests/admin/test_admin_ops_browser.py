"""The dashboard and the events viewer in a real Chromium: no CSP or console errors, and the
events filter swaps only the table and puts the filter in the address bar."""

from __future__ import annotations

from typing import Any

import pytest

from electro import clock
from electro.db import make_engine, make_sessionmaker
from electro.models import Event, User
from tests.support.browser import session_cookie

pytestmark = pytest.mark.browser


async def _signed_in_admin(live_server: Any, database_url: str) -> dict[str, str]:
    """An admin with a live session in the server's database, and its signed cookie."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            admin = User(username="admin", email="admin@example.com", password_hash="x",
                         is_admin=True)
            db.add(admin)
            await db.flush()
            cookie = await session_cookie(live_server, db, admin)
            db.add_all([Event(type="alpha", created_at=clock.now()) for _ in range(3)]
                       + [Event(type="beta", ip="10.9.8.7", created_at=clock.now())
                          for _ in range(2)])
    finally:
        await engine.dispose()
    return cookie


async def test_dashboard_and_events_filter_in_chromium(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str
) -> None:
    await page.context.add_cookies([await _signed_in_admin(live_server, database_url)])

    response = await page.goto(live_server.url + "/admin")
    assert response.status == 200
    # with orders, revenue and newsletter mails
    assert await page.locator("svg.chart").count() == 6
    assert await page.locator("svg.chart rect.bar").count() == 180

    await page.goto(live_server.url + "/admin/events")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.sameDocument = true")
    await page.fill("input[name=type]", "beta")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**/admin/events?type=beta**")
    rows = page.locator("#events-table tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 2
    assert await rows.first.locator("td").nth(3).inner_text() == "10.9.8.7"
    assert await page.evaluate("window.sameDocument") is True  # swapped, not reloaded
    assert browser_errors == []
