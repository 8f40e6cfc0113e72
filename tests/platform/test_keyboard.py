"""Keyboard only, in a real Chromium (issue 16): search and open a result, register, log in,
edit an admin row (Enter saves, Escape cancels), tick rows and run a group action. The focus is
visible wherever it goes and lands in the new content (or its message) after every htmx swap,
never on <body>; search results and form errors appear inside live regions."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from electro.models import Product, User
from tests.support import TEST_PASSWORD, make_user
from tests.support.accessibility import Shop, role_page, seed_shop
from tests.support.admin import one

pytestmark = pytest.mark.browser
MAX_TABS = 80  # more than any page here needs between two controls

FOCUS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    html: el.outerHTML.slice(0, 120),
    body: el === document.body,
    ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
  };
}"""
LIVE = """el => { for (let n = el; n; n = n.parentElement) {
  if (n.getAttribute("aria-live") === "polite" || n.getAttribute("aria-live") === "assertive"
      || ["status", "alert"].includes(n.getAttribute("role"))) return true; }
  return false; }"""


async def focus_is_visible(page: Any) -> dict[str, Any]:
    """Where the focus is; fails when it sits on <body> or shows no focus ring."""
    focus: dict[str, Any] = await page.evaluate(FOCUS)
    assert not focus["body"], "the focus fell back to <body>"
    assert focus["ring"], f"no visible focus ring on {focus['html']}"
    return focus


async def tab_to(page: Any, target: Any, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab) until ``target`` has the focus, checking the ring on each stop."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        await focus_is_visible(page)
        if await target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{target} is not reachable with the Tab key")


async def in_live_region(locator: Any) -> bool:
    return bool(await locator.evaluate(LIVE))


async def focus_within(locator: Any) -> bool:
    return bool(await locator.evaluate("el => el.contains(document.activeElement)"))


async def htmx_ready(page: Any, selector: str) -> None:
    """Wait until htmx has processed ``selector`` (a form or link just swapped in): a key
    pressed before that would reach the plain form or link and load a page."""
    await page.wait_for_function(
        "s => document.querySelector(s)?.['htmx-internal-data'] !== undefined", arg=selector)


@pytest.fixture
def live_server_env(live_server_env: dict[str, str]) -> dict[str, str]:
    # Trending shows a search at once instead of after the cache's few seconds.
    return {**live_server_env, "ELECTRO_SEARCH_CACHE_SECONDS": "0"}


@pytest.fixture
async def shop(app: Any, live_server: Any) -> Shop:
    return await seed_shop(app, live_server)


async def test_search_and_open_a_result_by_keyboard(
    shop: Shop, browser: Any, browser_errors: list[str]
) -> None:
    async with role_page(browser, shop, "anonymous", browser_errors) as page:
        await page.goto("/")
        await page.wait_for_function("() => typeof htmx === 'object'")
        box = page.locator('input[name="q"]')
        await tab_to(page, box)
        await page.keyboard.type("quiet", delay=30)
        first = page.locator("#search-results .result-name").first
        await first.wait_for()
        assert await in_live_region(first)  # announced as it appears
        assert await box.evaluate("el => el === document.activeElement")  # typing goes on
        await tab_to(page, first)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/products/{shop.product_id}")
        assert await page.locator("h1").inner_text() == "Quiet Keyboard"

        # The search now trends; its link loads the search page into this one (boosted): the
        # focus starts at the new page's heading, as after a page load, not on <body>.
        await page.goto("/")
        await page.wait_for_function("() => typeof htmx === 'object'")
        trend = page.locator(".trending-list a", has_text="quiet")
        await tab_to(page, trend)
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/search?q=quiet")
        await page.locator("main .result-name").first.wait_for()
        await focus_is_visible(page)
        assert await page.locator("main h1").evaluate("el => el === document.activeElement")
    assert browser_errors == []


async def test_register_by_keyboard(shop: Shop, browser: Any, browser_errors: list[str]) -> None:
    async with role_page(browser, shop, "anonymous", browser_errors) as page:
        await page.goto("/register")
        await page.wait_for_function("() => typeof htmx === 'object'")
        username = page.locator("#username")
        await tab_to(page, username)
        await page.keyboard.type("x")
        await page.keyboard.press("Tab")  # leaving the field validates it
        message = page.locator("#username-error")
        await message.filter(has_text="3 to 32 characters").wait_for()
        assert await in_live_region(message)
        assert await username.get_attribute("aria-invalid") == "true"
        assert await page.locator("#email").evaluate("el => el === document.activeElement")
        await page.keyboard.type("kim@example.com")
        await page.keyboard.press("Tab")
        await page.keyboard.type(TEST_PASSWORD)
        await page.keyboard.press("Tab")
        await page.keyboard.type("another password entirely")
        await page.keyboard.press("Enter")  # sent as it is: the page comes back with errors
        await page.locator("#password_confirm-error").filter(has_text="differ").wait_for()
        await focus_is_visible(page)
        assert await username.evaluate("el => el === document.activeElement")  # first error
        await htmx_ready(page, "#username")  # the page is new: its live validation too

        await page.keyboard.press("Control+A")
        await page.keyboard.type("kim_keys")
        await page.keyboard.press("Tab")
        await expect(message).to_have_text("")
        await page.wait_for_function(
            "() => !document.querySelector('#username').hasAttribute('aria-invalid')")
        await page.keyboard.press("Tab")  # the address came back; the passwords never do
        await page.keyboard.type(TEST_PASSWORD)
        await page.keyboard.press("Tab")
        await focus_is_visible(page)
        await page.keyboard.type(TEST_PASSWORD)
        await page.keyboard.press("Enter")
        await page.get_by_role("heading", name="Check your mail").wait_for()
    assert browser_errors == []


async def test_log_in_by_keyboard(
    app: Any, shop: Shop, browser: Any, browser_errors: list[str]
) -> None:
    await make_user(app, "kim")
    async with role_page(browser, shop, "anonymous", browser_errors) as page:
        await page.goto("/login")
        await tab_to(page, page.locator("#login"))
        await page.keyboard.type("kim")
        await page.keyboard.press("Tab")
        await page.keyboard.type("not the password")
        await page.keyboard.press("Enter")
        refusal = page.locator("#login-form .error")
        await refusal.wait_for()
        assert await in_live_region(refusal)
        await tab_to(page, page.locator("#login"))
        await page.keyboard.type("kim")
        await page.keyboard.press("Tab")
        await page.keyboard.type(TEST_PASSWORD)
        await page.keyboard.press("Enter")
        await page.get_by_role("button", name="Log out").wait_for()
    assert browser_errors == []


async def test_edit_an_admin_row_by_keyboard(
    app: Any, shop: Shop, browser: Any, browser_errors: list[str]
) -> None:
    product = shop.product_id
    async with role_page(browser, shop, "admin", browser_errors) as page:
        await page.goto("/admin/tables/products")
        await page.wait_for_function("() => typeof htmx === 'object'")
        row, editor = page.locator(f"#row-{product}"), page.locator(f"#row-{product}-editor")
        await tab_to(page, row.get_by_role("link", name="Edit"))
        await page.keyboard.press("Enter")
        await editor.wait_for()
        await focus_is_visible(page)
        assert await focus_within(editor)  # the first field, not the top of the page
        await htmx_ready(page, f"#row-{product}-editor form")
        await tab_to(page, editor.locator("input[name=price]"))
        await page.keyboard.press("Control+A")
        await page.keyboard.type("12,30")
        await page.keyboard.press("Enter")  # refused: the editor comes back with its message
        await editor.get_by_text("Enter a price like 12.99").wait_for()
        await focus_is_visible(page)
        assert await editor.locator("input[name=price]").evaluate(
            "el => el === document.activeElement && el.getAttribute('aria-invalid') === 'true'")
        await htmx_ready(page, f"#row-{product}-editor form")
        await page.keyboard.press("Control+A")
        await page.keyboard.type("12.30")
        await page.keyboard.press("Enter")  # saves
        await row.locator("td[data-column=price]").filter(has_text="12.30").wait_for()
        await focus_is_visible(page)
        assert await focus_within(row)
        assert (await one(app, Product, product)).price_cents == 1230

        await tab_to(page, row.get_by_role("link", name="Edit"))
        await page.keyboard.press("Enter")
        await editor.wait_for()
        await page.keyboard.type("a name never saved")
        await htmx_ready(page, f"#row-{product}-editor .cancel")  # else Escape loads the list
        await page.keyboard.press("Escape")  # cancels
        await editor.wait_for(state="detached")
        await focus_is_visible(page)
        assert await focus_within(row)
        assert "never saved" not in await row.inner_text()
    assert [e for e in browser_errors if "status of 422" not in e] == []


async def test_tick_rows_and_run_a_group_action_by_keyboard(
    app: Any, shop: Shop, browser: Any, browser_errors: list[str]
) -> None:
    idle = await make_user(app, "idle", is_active=False)
    async with role_page(browser, shop, "admin", browser_errors) as page:
        page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm's own browser dialog
        await page.goto("/admin/tables/users")
        await page.wait_for_function("() => typeof htmx === 'object'")
        box = page.locator(f"#row-{idle.id} input[name=ids]")
        await tab_to(page, box)
        await page.keyboard.press("Space")
        assert await box.is_checked()
        action = page.locator("select[name=action]")
        await tab_to(page, action, backwards=True)
        await page.keyboard.type("Delete inactive")  # a closed select picks by typing
        assert await action.input_value() == "delete_inactive"
        await tab_to(page, page.get_by_role("button", name="Apply to ticked rows"))
        await page.keyboard.press("Enter")
        result = page.locator("#action-result")
        confirm = result.get_by_role("button", name="Yes, delete 1")
        await confirm.wait_for()
        await htmx_ready(page, "#action-result form")
        assert await in_live_region(result.get_by_text("will be deleted"))
        await tab_to(page, confirm)  # the next stop after the button that asked
        await page.keyboard.press("Enter")
        await result.get_by_text("Deleted 1 inactive account").wait_for()
        await focus_is_visible(page)
        assert await focus_within(result)  # the message, where the confirm button was
        assert await one(app, User, idle.id) is None
    assert browser_errors == []
