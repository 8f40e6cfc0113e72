"""WCAG 2.1 AA in the states where problems hide, not just first loads (issue 16): a form
showing field errors, the live search results open, an admin row in edit mode (and refused),
a group action asking for confirmation, and the error pages 403, 404 and 429."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import make_user
from tests.support.accessibility import Audit, role_page, seed_shop

pytestmark = pytest.mark.browser
SEARCHES_PER_MINUTE = 60  # electro.web.search: the limit the 429 page is reached through


@pytest.fixture
def live_server_env(live_server_env: dict[str, str]) -> dict[str, str]:
    return {**live_server_env, "ELECTRO_RATE_LIMITS": "1"}  # for a real 429 page


async def _register_with_errors(page: Any, audit: Audit) -> None:
    await page.goto("/register")
    await page.fill("#username", "x")
    await page.press("#username", "Tab")  # live validation swaps the message in
    await page.locator("#username-error").filter(has_text="3 to 32 characters").wait_for()
    await audit.check(page, "register: a live field error")
    await page.fill("#email", "not-an-address")
    await page.fill("#password", "short")
    await page.fill("#password_confirm", "other")
    await page.get_by_role("button", name="Register").click()
    await page.locator("#password-error").filter(has_text="12 characters").wait_for()
    await audit.check(page, "register: the form sent back with its field errors")


async def _search_open(page: Any, audit: Audit) -> None:
    await page.goto("/")
    await page.locator('input[name="q"]').press_sequentially("lum", delay=30)
    await page.locator("#search-results .result-name").first.wait_for()
    await audit.check(page, "live search results open")
    await page.locator('input[name="q"]').fill("")
    await page.locator('input[name="q"]').press_sequentially("zzzq", delay=30)
    await page.locator("#search-results .empty").wait_for()
    await audit.check(page, "live search finding nothing")


async def _row_editor(page: Any, audit: Audit, product_id: int) -> None:
    await page.goto("/admin/tables/products")
    row = page.locator(f"#row-{product_id}")
    await row.get_by_role("link", name="Edit").click()
    price = page.locator(f"#row-{product_id}-editor input[name=price]")
    await price.wait_for()
    await audit.check(page, "admin: a product row in edit mode")
    await page.wait_for_function(  # htmx has taken the form over (else Enter posts the page)
        "id => document.querySelector(`#row-${id}-editor form`)?.['htmx-internal-data']",
        arg=product_id)
    await price.fill("12,30")
    await price.press("Enter")
    await page.get_by_text("Enter a price like 12.99").wait_for()
    await audit.check(page, "admin: the row editor refusing a price")


async def _group_action_confirmation(page: Any, audit: Audit, user_id: int) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto("/admin/tables/users")
    await page.locator(f"#row-{user_id} input[name=ids]").check()
    await page.locator("select[name=action]").select_option("delete_inactive")
    await page.get_by_role("button", name="Apply to ticked rows").click()
    await page.get_by_role("button", name="Yes, delete 1").wait_for()
    await audit.check(page, "admin: a group action asking for confirmation")


async def _error_pages(page: Any, audit: Audit) -> None:
    for path in ("/products/999999999", "/no/such/page"):
        response = await page.goto(path)
        assert response.status == 404
        await audit.check(page, f"404 page ({path})")
    # The limit refills one search a second (GCRA): twice the limit, sent at once, is past it;
    # on a machine so busy that a second passes before the page is asked for, a refilled
    # search may answer it, so past the limit again, and again, until the page is refused.
    for attempt in range(10):
        await asyncio.gather(*(page.request.get("/search?q=cable")
                               for _ in range(2 * SEARCHES_PER_MINUTE)))
        # A URL the browser has not seen: one it has may come from its cache, never asking.
        response = await page.goto(f"/search?q=cables{attempt}")
        if response.status == 429:
            break
    assert response.status == 429
    await audit.check(page, "429 page")


async def test_states_pass_wcag_21_aa(
    app: Any, live_server: Any, browser: Any, browser_errors: list[str]
) -> None:
    shop = await seed_shop(app, live_server)
    idle = await make_user(app, "idle", is_active=False)
    audit = Audit()
    async with role_page(browser, shop, "anonymous", browser_errors) as page:
        await _register_with_errors(page, audit)
        await _search_open(page, audit)
        await _error_pages(page, audit)
    async with role_page(browser, shop, "user", browser_errors) as page:
        response = await page.goto("/admin")
        assert response.status == 403
        await audit.check(page, "403 page (a shopper at /admin)")
    async with role_page(browser, shop, "admin", browser_errors) as page:
        await _row_editor(page, audit, shop.product_id)
        await _group_action_confirmation(page, audit, idle.id)
    audit.assert_clean()
    print("states audited:", len(audit.checked), audit.checked)
    # Chromium logs each 4xx answer of a page load: the errors this test asked for.
    expected = ("status of 403", "status of 404", "status of 422", "status of 429")
    assert [e for e in browser_errors if not any(s in e for s in expected)] == []
