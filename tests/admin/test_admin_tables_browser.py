"""Admin tables in a real Chromium: inline edit without a reload, Escape cancels, a group
action with its confirmation, a deleted row fading out; no console or CSP errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from electro.db import make_engine, make_sessionmaker
from electro.models import Category, Product, User
from tests.support.admin import insert_rows
from tests.support.browser import session_cookie

pytestmark = pytest.mark.browser


async def _seed_and_sign_in(live_server: Any, page: Any, database_url: str) -> dict[str, int]:
    """An admin signed in (a server-side session and its signed cookie), bob, and a product."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            admin, bob = await insert_rows(db, User, [
                {"username": name, "email": f"{name}@example.com", "password_hash": "x",
                 "is_admin": name == "admin"} for name in ("admin", "bob")])
            (category,) = await insert_rows(db, Category, [{"name": "Phones"}])
            (product,) = await insert_rows(db, Product, [
                {"name": "Phone", "category_id": category, "price_cents": 999}])
            cookie = await session_cookie(live_server, db, await db.get_one(User, admin))
    finally:
        await engine.dispose()
    await page.context.add_cookies([cookie])
    return {"admin": admin, "bob": bob, "product": product}


async def _value(database_url: str, query: Any) -> Any:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return await db.scalar(query)
    finally:
        await engine.dispose()


async def _editor_ready(page: Any, row_id: int) -> None:
    """Wait until htmx has processed the swapped-in editor's form: an Enter pressed in the
    moment between the swap and that would submit the plain (no-JS) form and reload."""
    await page.wait_for_function(
        "id => document.querySelector(`#row-${id}-editor form`)?.['htmx-internal-data']"
        " !== undefined", arg=row_id)


async def test_inline_edit_of_a_price_saves_without_a_reload(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str
) -> None:
    ids = await _seed_and_sign_in(live_server, page, database_url)
    await page.goto(f"{live_server.url}/admin/tables/products")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.evaluate("window.notReloaded = true")
    row = page.locator(f"#row-{ids['product']}")

    await row.get_by_role("link", name="Edit").click()
    price = page.locator(f"#row-{ids['product']}-editor input[name=price]")
    await price.fill("8.00")
    await price.press("Escape")  # cancels: the row comes back unchanged
    await page.locator(".row-editor").wait_for(state="detached")
    assert await page.locator(f"#row-{ids['product']} td[data-column=price]").inner_text() \
        == "9.99"

    await row.get_by_role("link", name="Edit").click()
    await _editor_ready(page, ids["product"])
    await price.fill("12.3")
    await price.press("Enter")
    await page.locator(f"#row-{ids['product']} td[data-column=price]").filter(
        has_text="12.30").wait_for()
    assert await page.evaluate("window.notReloaded") is True
    assert await _value(database_url, select(Product.price_cents)) == 1230

    await row.get_by_role("link", name="Edit").click()
    await _editor_ready(page, ids["product"])
    await price.fill("12,30")
    await price.press("Enter")
    await page.get_by_text("Enter a price like 12.99").wait_for()  # the 422 editor is swapped in

    await page.reload()
    assert await page.locator(f"#row-{ids['product']} td[data-column=price]").inner_text() \
        == "12.30"
    # Chromium logs every 4xx response; the 422 was the refused value, nothing else may appear.
    assert [e for e in browser_errors if "status of 422" not in e] == []


async def test_a_group_action_asks_first_then_acts_and_refreshes_the_table(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str
) -> None:
    ids = await _seed_and_sign_in(live_server, page, database_url)
    dialogs: list[str] = []

    async def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await page.goto(f"{live_server.url}/admin/tables/users")
    await page.wait_for_function("typeof htmx === 'object'")
    await page.locator(f"#row-{ids['bob']} input[name=ids]").check()
    await page.locator("select[name=action]").select_option("deactivate")
    await page.get_by_role("button", name="Apply to ticked rows").click()
    await page.locator("#action-result").get_by_text("Deactivated 1 account").wait_for()
    assert dialogs == ["Apply the chosen action to the ticked rows?"]
    # The table reloads itself on the admin-changed event: bob shows as inactive.
    await page.locator(f"#row-{ids['bob']} td[data-column=is_active]").filter(
        has_text="no").wait_for()
    assert await _value(database_url, select(User.is_active).where(User.id == ids["bob"])) \
        is False

    await page.locator(f"#row-{ids['bob']}").get_by_role("button", name="Delete").click()
    await page.locator(f"#row-{ids['bob']}").wait_for(state="detached")
    assert dialogs[-1] == f"Delete row {ids['bob']}?"
    assert await _value(database_url, select(User.id).where(User.id == ids["bob"])) is None
    assert browser_errors == []
