"""Helpers for the accessibility sweep and the keyboard tests: a shop with a row in every table,
a shopper and an admin with live sessions, and one browser context per role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from electro.models import Category, Product, User
from tests.support import make_user
from tests.support.admin import add_order, seed_every_table
from tests.support.api import make_token
from tests.support.browser import (
    LiveServer,
    axe_violations,
    describe_violations,
    session_cookie,
    watch_errors,
)
from tests.support.shop import CATALOGUE, add_catalogue

ROLES = ("anonymous", "user", "admin")

# (rule id, pattern of the node's HTML, why): a violation we cannot fix yet, named with its
# reason; the sweep fails once an exception is no longer needed. None today.
KNOWN_EXCEPTIONS: list[tuple[str, str, str]] = []


@dataclass
class Shop:
    """The seeded shop: where it is served, and what its pages are reached through."""

    url: str
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> session cookie
    category_id: int = 0  # a category whose listing shows a struck-through old price
    product_id: int = 0  # a product with an old price
    order_number: str = ""  # an order of the shopper's


async def seed_shop(app: Any, live_server: LiveServer) -> Shop:
    """A row in every table (tests.support.admin), the shop catalogue besides the "Phones"
    that one already made, a shopper ``ann`` with an order and an admin, both signed in, each
    with an API token."""
    await seed_every_table(app)
    ids = await add_catalogue(app, [row for row in CATALOGUE if row[2] != "Phones"])
    shop = Shop(live_server.url, product_id=ids["Quiet Keyboard"])
    ann = await make_user(app, "ann")
    admin = await make_user(app, "admin", is_admin=True)
    for user in (ann, admin):  # the account page lists an API token
        await make_token(app, user)
    async with app.extensions["electro"].sessions.begin() as db:
        shop.order_number = (await add_order(db, ann.id, "ANN2-SHOP", "Ann Example",
                                             "Quiet Keyboard")).number
        shop.category_id = await db.scalar(
            select(Category.id).join(Product).where(Product.id == shop.product_id))
        for role, user in (("user", ann), ("admin", admin)):
            shop.cookies[role] = await session_cookie(
                live_server, db, await db.get_one(User, user.id))
    return shop


def unexcused(violations: list[dict[str, Any]], used: set[str]) -> list[dict[str, Any]]:
    """``violations`` less the nodes a known exception covers (its rule id goes into ``used``)."""
    left = []
    for violation in violations:
        nodes = violation["nodes"]
        for rule_id, pattern, _reason in KNOWN_EXCEPTIONS:
            if violation["id"] == rule_id:
                excused = [n for n in nodes if re.search(pattern, n["html"])]
                if excused:
                    used.add(rule_id)
                nodes = [n for n in nodes if n not in excused]
        if nodes:
            left.append({**violation, "nodes": nodes})
    return left


@dataclass
class Audit:
    """axe-core's findings on each page or state checked, less the known exceptions."""

    checked: list[str] = field(default_factory=list)  # labels of the pages and states
    findings: list[str] = field(default_factory=list)
    exceptions_used: set[str] = field(default_factory=set)

    async def check(self, page: Any, label: str) -> None:
        # Loaded, no htmx request in flight, and the API docs (/docs, no htmx) drawn by
        # Swagger UI, so axe audits what a visitor sees.
        await page.wait_for_function(
            "() => document.readyState === 'complete' && !document.querySelector('.htmx-request')"
            " && (!document.getElementById('swagger-ui')"
            " || document.querySelector('#swagger-ui .opblock'))")
        violations = unexcused(await axe_violations(page), self.exceptions_used)
        self.checked.append(label)
        if violations:
            self.findings.append(f"{label}:\n{describe_violations(violations)}")

    def assert_clean(self) -> None:
        assert not self.findings, "WCAG 2.1 A/AA violations:\n" + "\n".join(self.findings)
        stale = {rule for rule, _, _ in KNOWN_EXCEPTIONS} - self.exceptions_used
        assert not stale, f"known exceptions no longer needed, remove them: {stale}"


@asynccontextmanager
async def role_page(browser: Any, shop: Shop, role: str, errors: list[str]) -> AsyncIterator[Any]:
    """A page in a browser context of its own, signed in as ``role`` (not at all for
    "anonymous"), whose paths and requests are relative to the shop; its console and page
    errors go into ``errors``."""
    context = await browser.new_context(base_url=shop.url)
    try:
        if role in shop.cookies:
            await context.add_cookies([shop.cookies[role]])
        page = await context.new_page()
        watch_errors(page, errors)
        yield page
    finally:
        await context.close()


async def csrf_token(request: Any, url: str) -> str:
    """The CSRF token of the session behind ``request`` (every page carries it for htmx)."""
    page = await (await request.get(url)).text()
    match = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
    assert match, f"{url} carries no CSRF token"
    return match.group(1)
