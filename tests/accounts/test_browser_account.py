"""Log in, end another device's session with htmx, log out: in a real Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from electro import clock
from electro.db import make_engine, make_sessionmaker
from electro.models import User, UserSession
from electro.security.keys import hash_key, new_key
from tests.support import TEST_PASSWORD

pytestmark = pytest.mark.browser


async def _user_with_another_device(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            user = User(username="ann", email="ann@example.com",
                        password_hash=PasswordHasher(time_cost=1, memory_cost=1024,
                                                     parallelism=1).hash(TEST_PASSWORD))
            db.add(user)
            await db.flush()
            db.add(UserSession(token_hash=hash_key(new_key()), user_id=user.id, ip="192.0.2.8",
                               user_agent="Old phone", created_at=clock.now(),
                               last_seen_at=clock.now()))
    finally:
        await engine.dispose()


async def test_log_in_end_a_device_with_htmx_and_log_out(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str
) -> None:
    await _user_with_another_device(database_url)
    await page.goto(live_server.url + "/account")  # the guard sends us to log in first
    assert "/login?next=/account" in page.url
    await page.fill("#login", "ANN")
    await page.fill("#password", TEST_PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(live_server.url + "/account")
    rows = page.locator("#account-sessions tbody tr")
    assert await rows.count() == 2
    assert "Old phone" in await page.locator("#account-sessions").inner_text()

    await page.evaluate("window.notReloaded = true")
    await page.get_by_role("button", name="End this session").click()
    await page.wait_for_selector("#account-sessions .notice")
    assert await rows.count() == 1
    assert "Old phone" not in await page.locator("#account-sessions").inner_text()
    assert await page.evaluate("window.notReloaded") is True  # swapped in place by htmx

    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(live_server.url + "/")
    assert await page.get_by_role("link", name="Log in").count() == 1
    await page.goto(live_server.url + "/account")
    assert "/login" in page.url
    assert browser_errors == []
