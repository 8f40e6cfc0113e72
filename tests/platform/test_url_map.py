"""Walks the URL map so a new route cannot slip past the CSRF check, the rate limiter or the
admin guard (which also sends an admin without two-factor to enrol, SPEC B4)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from quart_rate_limiter import QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE
from sqlalchemy import func, select

from electro.models import Event, OutboxMail
from electro.web.guards import admin_required, current_account, login_required
from tests.support import Client, make_user, sign_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EXEMPT_ALLOWED = {"system.healthz"}  # health probe and benchmark baseline
# Prefixes whose unsafe methods carry no CSRF token, each with the reason it is safe.
CSRF_EXEMPT_PREFIXES = {
    "/api/": "authenticated by a Bearer token only: a cookie never signs anybody in there, so "
             "a forged cross-site request carries no credential",
    "/newsletter/unsubscribe/": "RFC 8058 one-click unsubscribe: the link's signed token is "
             "the credential (a mail client's POST has no cookie or CSRF token), and all it "
             "can do is unsubscribe the account the link was mailed to",
}


def _concrete(rule: Any) -> str:
    return re.sub(r"<[^>]+>", "1", rule.rule)


async def test_rate_limit_exemptions_come_only_from_the_allow_list(app: Any) -> None:
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        exempt = getattr(view, QUART_RATE_LIMITER_EXEMPT_ATTRIBUTE, False)
        assert not exempt or rule.endpoint in EXEMPT_ALLOWED, (
            f"{rule.rule} is exempt from rate limits without being on the allow-list"
        )


async def test_every_unsafe_route_refuses_a_missing_or_wrong_csrf_token(
    app: Any, client: Any
) -> None:
    await client.refresh_token()
    visited = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(tuple(CSRF_EXEMPT_PREFIXES)):
            continue
        for method in sorted((rule.methods or set()) & UNSAFE):
            for form in ({}, {"csrf_token": "forged-" + client.token}):
                response = await client.raw.open(_concrete(rule), method=method, form=form)
                assert response.status_code == 403, f"{method} {rule.rule} lacks the CSRF check"
            visited.append(rule.rule)
    assert len(visited) >= 20  # the account and admin forms: the walk really covers routes
    # The check is global (before_request): a route added later is covered too.
    @app.post("/probe")
    async def probe() -> str:
        return "reached"

    response = await client.raw.post("/probe", form={})
    assert response.status_code == 403
    assert (await client.post("/probe")).status_code == 200


async def test_the_csrf_exemption_holds_only_where_no_cookie_signs_in(
    app: Any, user_client: Any
) -> None:
    """Under /api/ an unsafe request needs no CSRF token because the session cookie that a
    forged request would carry signs nobody in there; everywhere else the check stands."""
    @app.post("/api/probe")
    async def api_probe() -> str:
        return "signed in" if await current_account() is not None else "nobody"

    @app.post("/apiary")  # a look-alike path is no exemption
    async def apiary() -> str:
        return "reached"

    @app.post("/newsletter/unsubscribed-probe")  # a look-alike of the unsubscribe prefix
    async def unsubscribe_look_alike() -> str:
        return "reached"

    answer = await user_client.raw.post("/api/probe", form={})
    assert answer.status_code == 200
    assert await answer.get_data(as_text=True) == "nobody"
    assert (await user_client.raw.post("/apiary", form={})).status_code == 403
    assert (await user_client.raw.post("/newsletter/unsubscribed-probe", form={})
            ).status_code == 403
    assert (await user_client.get("/account")).status_code == 200  # the cookie is live


@pytest.fixture
def two_factor_required(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["admin_two_factor"] = "required"  # the production default


@pytest.fixture
async def unenrolled_admin(app: Any) -> Client:
    """An admin without two-factor (the app requires it: see two_factor_required)."""
    client = Client(app)
    await sign_in(app, client, await make_user(app, "newadmin", is_admin=True))
    return client


async def _admin_guard_violations(
    app: Any, anonymous: Any, user: Any, unenrolled_admin: Any
) -> list[str]:
    """Every /admin route, every method: anonymous -> /login, signed-in non-admin -> 403, an
    admin without two-factor -> /account/two-factor (SPEC B4), and nothing done for any."""
    problems = []
    for client in (anonymous, user, unenrolled_admin):
        await client.refresh_token()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = _concrete(rule)
            anon = await anonymous.raw.open(path, method=method,
                                            form={"csrf_token": anonymous.token})
            if anon.status_code != 302 or not anon.headers["Location"].startswith("/login"):
                problems.append(f"{method} {rule.rule}: anonymous got {anon.status_code}")
            signed_in = await user.raw.open(path, method=method, form={"csrf_token": user.token})
            if signed_in.status_code != 403:
                problems.append(f"{method} {rule.rule}: non-admin got {signed_in.status_code}")
            admin = await unenrolled_admin.raw.open(
                path, method=method, form={"csrf_token": unenrolled_admin.token})
            if admin.status_code != 302 or not admin.headers["Location"].startswith(
                    "/account/two-factor?next="):
                problems.append(f"{method} {rule.rule}: admin without two-factor got "
                                f"{admin.status_code}")
    return problems


async def test_every_admin_route_requires_an_admin_with_two_factor(
    two_factor_required: None, app: Any, client: Any, user_client: Any,
    unenrolled_admin: Any,
) -> None:
    @app.route("/admin/probe/<int:row>", methods=["GET", "POST"])
    @admin_required
    async def guarded_probe(row: int) -> str:
        return "admin only"

    assert await _admin_guard_violations(app, client, user_client, unenrolled_admin) == []
    assert await mail_and_events_untouched(app)


async def mail_and_events_untouched(app: Any) -> bool:
    """No admin action ran during the walk: nothing queued, no admin_* event recorded."""
    async with app.extensions["electro"].sessions() as db:
        mails = await db.scalar(select(func.count()).select_from(OutboxMail))
        admin_events = await db.scalar(select(func.count()).select_from(Event).where(
            Event.type.startswith("admin_")))
    return mails == 0 and admin_events == 0


async def test_the_admin_walk_catches_a_route_without_its_guard(
    two_factor_required: None, app: Any, client: Any, user_client: Any,
    unenrolled_admin: Any,
) -> None:
    @app.post("/admin/forgotten")
    async def forgotten() -> str:
        return "anyone"

    @app.get("/admin/half-guarded")
    @login_required
    async def half_guarded() -> str:
        return "any signed-in account"

    problems = await _admin_guard_violations(app, client, user_client, unenrolled_admin)
    assert problems == ["POST /admin/forgotten: anonymous got 200",
                        "POST /admin/forgotten: non-admin got 200",
                        "POST /admin/forgotten: admin without two-factor got 200",
                        "GET /admin/half-guarded: non-admin got 200",
                        "GET /admin/half-guarded: admin without two-factor got 200"]


async def test_every_id_in_a_path_is_bounded(app: Any, admin_client: Any) -> None:
    """Ids past the database's integer range, or written in other scripts' digits, are refused
    by the URL map on every route and method (they reached the driver and gave 500s), even for
    an admin who passes every guard."""
    await admin_client.refresh_token()
    visited = 0
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for odd in ("99999999999999999999", "2147483648", "0", "٣", "1_0"):
                path = re.sub(r"<int:[^>]+>", odd, rule.rule)
                path = re.sub(r"<[^>]+>", "users", path)  # a table name, where one is asked
                response = await admin_client.raw.open(
                    path, method=method, form={"csrf_token": admin_client.token})
                # 405 where werkzeug knows another method's rule for the same path shape.
                status = response.status_code
                assert status in (404, 405), f"{method} {path}: {status}"
                visited += 1
    assert visited >= 40  # account sessions, products, categories, every admin row route
