"""The register form in a real Chromium: live field validation without a reload."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.browser


async def test_live_validation_shows_errors_without_a_reload(
    live_server: Any, page: Any, browser_errors: list[str]
) -> None:
    await page.goto(live_server.url + "/register")
    await page.wait_for_function("typeof htmx === 'object'")
    # A marker on the window: a navigation or reload would drop it.
    await page.evaluate("window.sameDocument = true")

    await page.fill("#username", "x")
    await page.press("#username", "Tab")  # blur fires "change"
    await expect(page.locator("#username-error")).to_contain_text("3 to 32 characters")

    await page.fill("#password", "short")
    await page.press("#password", "Tab")
    await expect(page.locator("#password-error")).to_contain_text("Use at least 12 characters")

    # Fixing a field clears its message.
    await page.fill("#username", "fine_name")
    await page.press("#username", "Tab")
    await expect(page.locator("#username-error")).to_have_text("")

    assert await page.evaluate("window.sameDocument") is True
    assert page.url == live_server.url + "/register"
    assert browser_errors == []
