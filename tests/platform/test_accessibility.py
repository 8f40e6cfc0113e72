"""WCAG 2.1 AA (EN 301 549's reference) in a real Chromium with axe-core: every page a shopper,
a signed-in user and an admin can reach (issue 16; the states where problems hide are in
test_accessibility_states.py).

The pages come from the URL map: every GET route, its path parameters filled from real rows, is
fetched as each role. A complete HTML document answered 200 is a page and is audited; what is
not a page is recognised by a rule (a redirect, a body that is not HTML, an HTML fragment), so a
route added later is audited without anyone listing it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from electro.models import Backup, User
from electro.services import newsletters
from tests.support import browser as harness
from tests.support.accessibility import ROLES, Audit, Shop, csrf_token, role_page, seed_shop
from tests.support.browser import axe_source

PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def page_paths(rules: Iterable[Any], fills: Mapping[tuple[str, ...], list[dict[str, Any]]]
               ) -> dict[str, list[str]]:
    """endpoint -> the concrete paths of every GET route. A route's path parameters are filled
    from ``fills``, keyed by the route's sorted parameter names; a route with parameters that
    have no fill fails the walk, naming it (so no new page escapes unvisited)."""
    paths: dict[str, list[str]] = {}
    unfilled = []
    for rule in rules:
        if "GET" not in (rule.methods or ()):
            continue
        names = tuple(sorted(rule.arguments))
        if names and names not in fills:
            unfilled.append(f"{rule.rule} needs a fill for {names}")
            continue
        paths.setdefault(rule.endpoint, []).extend(
            PARAMETER.sub(lambda m, values=values: quote(str(values[m[1]]), safe=""), rule.rule)
            for values in (fills[names] if names else [{}])
        )
    assert not unfilled, "GET routes the sweep cannot reach:\n" + "\n".join(unfilled)
    return paths


async def kind_of(request: Any, path: str) -> str:
    """"page" for a complete HTML document answered 200; otherwise what it is instead."""
    response = await request.get(path, max_redirects=0)
    if 300 <= response.status < 400:
        return "redirect"
    if not response.headers.get("content-type", "").startswith("text/html"):
        return "not HTML"  # a download, an export, a stylesheet...
    if response.status >= 400:
        return f"refused ({response.status})"
    if not (await response.text()).lstrip()[:15].lower().startswith("<!doctype html"):
        return "fragment"  # audited where a page swaps it in
    return "page"


async def _fills(app: Any, shop: Shop, admin_request: Any) -> dict[tuple[str, ...], Any]:
    """Real values for every path parameter of a GET route: a row of every admin table (the
    tables the Tables page links to, their first row's id), a real backup file, and so on."""
    token = await csrf_token(admin_request, "/admin/backups")
    made = await admin_request.post("/admin/backups/create", form={"csrf_token": token})
    assert made.ok, await made.text()
    async with app.extensions["electro"].sessions() as db:
        backup_id = await db.scalar(select(Backup.id).order_by(Backup.id.desc()).limit(1))
    written = await admin_request.post("/admin/newsletters", form={
        "csrf_token": token, "subject": "Winter deals", "body": "Warm things.", "picks": "3"},
        max_redirects=0)
    assert written.status == 302, await written.text()
    newsletter_id = int(written.headers["location"].rsplit("/", 1)[1])
    async with app.extensions["electro"].sessions() as db:
        ann_id = await db.scalar(select(User.id).where(User.username == "ann"))
    index = await (await admin_request.get("/admin/tables")).text()
    tables = re.findall(r'href="/admin/tables/([a-z_]+)"', index)
    rows = []
    for table in tables:
        listing = await (await admin_request.get(f"/admin/tables/{table}")).text()
        first = re.search(r'<tr id="row-(\d+)"', listing)
        assert first, f"the seeded {table} table shows no row"
        rows.append({"table": table, "row_id": first[1]})
    return {
        ("category_id",): [{"category_id": shop.category_id}],
        ("product_id",): [{"product_id": shop.product_id}],
        ("backup_id",): [{"backup_id": backup_id}],
        ("table",): [{"table": table} for table in tables],
        ("row_id", "table"): rows,
        ("key",): [{"key": "a-key-from-a-mail"}],
        ("number",): [{"number": shop.order_number}],
        ("filename",): [{"filename": "app.css"}],
        ("newsletter_id",): [{"newsletter_id": newsletter_id}],
        ("token",): [{"token": newsletters.unsubscribe_token(app.extensions["electro"].settings,
                                                             ann_id)}],
    }


def test_axe_core_is_used_only_as_the_recorded_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "axe v4.14.1" in axe_source()[:40]
    tampered = tmp_path / "axe.min.js"
    tampered.write_bytes(harness.AXE_FILE.read_bytes().replace(b"wcag2aa", b"wcag2xx"))
    monkeypatch.setattr(harness, "AXE_FILE", tampered)
    axe_source.cache_clear()
    with pytest.raises(AssertionError, match="not the recorded"):
        axe_source()


def test_the_walk_fills_every_route_and_names_one_it_cannot(app: Any) -> None:
    @app.get("/probe/<int:category_id>")
    async def probe(category_id: int) -> str:
        return "a page"

    @app.get("/new/<thing>")
    async def new_page(thing: str) -> str:
        return "a page nobody filled yet"

    fills = {tuple(sorted(rule.arguments)): [dict.fromkeys(rule.arguments, 1)]
             for rule in app.url_map.iter_rules()}
    fills |= {("category_id",): [{"category_id": 7}], ("thing",): [{"thing": "a b"}]}
    paths = page_paths(app.url_map.iter_rules(), fills)
    assert paths["probe"] == ["/probe/7"]
    assert paths["new_page"] == ["/new/a%20b"]
    assert paths["shop.index"] == ["/"]
    del fills[("thing",)]
    with pytest.raises(AssertionError) as refused:
        page_paths(app.url_map.iter_rules(), fills)
    assert "/new/<thing> needs a fill for ('thing',)" in str(refused.value)


@pytest.mark.browser
async def test_every_page_passes_wcag_21_aa_for_every_role(
    app: Any, live_server: Any, browser: Any, browser_errors: list[str]
) -> None:
    shop = await seed_shop(app, live_server)
    audit = Audit()
    pages: dict[str, list[str]] = {role: [] for role in ROLES}
    skipped: dict[str, set[str]] = {}
    async with role_page(browser, shop, "admin", browser_errors) as page:
        paths = page_paths(app.url_map.iter_rules(), await _fills(app, shop, page.request))

    async def sweep(role: str) -> None:
        async with role_page(browser, shop, role, browser_errors) as page:
            for endpoint, endpoint_paths in paths.items():
                for path in endpoint_paths:
                    kind = await kind_of(page.request, path)
                    if kind != "page":
                        skipped.setdefault(endpoint, set()).add(kind)
                        continue
                    await page.goto(path)
                    await audit.check(page, f"{role} {path}")
                    pages[role].append(path)

    await asyncio.gather(*(sweep(role) for role in ROLES))  # the roles side by side
    audit.assert_clean()
    reached = {endpoint for endpoint, urls in paths.items()
               if any(path in urls for role in ROLES for path in pages[role])}
    # A route audited for nobody is fine when a rule says it is no page (a redirect, a
    # download, a fragment); one that only refuses, whoever asks, has a stale fill or is broken.
    unreached = {endpoint: kinds for endpoint, kinds in skipped.items()
                 if endpoint not in reached and all(k.startswith("refused") for k in kinds)}
    assert not unreached, unreached
    print("pages audited per role:", {role: len(visited) for role, visited in pages.items()},
          "not pages:",
          {endpoint: sorted(kinds) for endpoint, kinds in skipped.items()
           if endpoint not in reached})
    assert len(pages["admin"]) > len(pages["user"]) > len(pages["anonymous"])
    assert browser_errors == []
