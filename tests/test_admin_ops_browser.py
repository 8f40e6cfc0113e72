"""The dashboard and the events viewer in a real Chromium: no CSP or console errors, and the
events filter swaps only the table and puts the filter in the address bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from electro import clock
from electro.app import create_app
from electro.config import Settings
from electro.db import make_engine, make_sessionmaker
from electro.models import Event, User
from electro.services import sessions

pytestmark = pytest.mark.browser


async def _signed_in_admin(live_server: Any, database_url: str, tmp_path: Path) -> dict[str, str]:
    """An admin with a live session in the server's database, and its signed cookie."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            admin = User(username="admin", email="admin@example.com", password_hash="x",
                         is_admin=True)
            db.add(admin)
            await db.flush()
            token = await sessions.start_session(db, Settings(), admin, "127.0.0.1", "chromium")
            db.add_all([Event(type="alpha", created_at=clock.now()) for _ in range(3)]
                       + [Event(type="beta", ip="10.9.8.7", created_at=clock.now())
                          for _ in range(2)])
    finally:
        await engine.dispose()
    # Signed with the server's secret key, as quart-auth's log-in would.
    signer = create_app({"secret_key": live_server.env["ELECTRO_SECRET_KEY"],
                         "database_url": database_url, "instance_dir": tmp_path / "signer"})
    auth = signer.extensions["QUART_AUTH"][0]
    return {"name": auth.cookie_name, "value": auth.dump_token(token, app=signer),
            "url": live_server.url}


async def test_dashboard_and_events_filter_in_chromium(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str, tmp_path: Path
) -> None:
    await page.context.add_cookies([await _signed_in_admin(live_server, database_url, tmp_path)])

    response = await page.goto(live_server.url + "/admin")
    assert response.status == 200
    assert await page.locator("svg.chart").count() == 3
    assert await page.locator("svg.chart rect.bar").count() == 90

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
