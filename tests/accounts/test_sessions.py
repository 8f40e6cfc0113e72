"""Server-side sessions and the guards (A4, A5): every request re-checks session and account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from electro import clock
from electro.models import AccountBlock, IpBlock, User, UserSession
from electro.web.guards import admin_required, current_account, login_required
from tests.support import Client, make_user, sign_in
from tests.support.accounts import events_of, session_rows


@pytest.fixture
def probes(app: Any) -> None:
    """Routes behind each guard, as the account and admin blueprints will have."""

    @app.get("/probe/user")
    @login_required
    async def probe_user() -> str:
        account = await current_account()
        assert account is not None
        return f"hello {account.user.username}"

    @app.get("/probe/admin")
    @admin_required
    async def probe_admin() -> str:
        return "admin area"


@pytest.mark.usefixtures("probes")
async def test_signed_in_request_sees_its_account(app: Any, user_client: Client) -> None:
    response = await user_client.get("/probe/user")
    assert response.status_code == 200
    assert await response.get_data(as_text=True) == "hello ann"
    [row] = await session_rows(app)
    assert len(row.token_hash) == 64 and row.user_agent == "pytest"


@pytest.mark.usefixtures("probes")
async def test_anonymous_goes_to_login_and_htmx_gets_hx_redirect(client: Client) -> None:
    response = await client.get("/probe/user?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/probe/user%3Fx%3D1"
    response = await client.get("/probe/admin", htmx=True)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/probe/admin"


@pytest.mark.usefixtures("probes")
async def test_admin_guard_refuses_signed_in_non_admins(
    app: Any, user_client: Client, admin_client: Client
) -> None:
    assert (await user_client.get("/probe/admin")).status_code == 403
    assert (await user_client.get("/probe/admin", htmx=True)).status_code == 403
    assert len(await events_of(app, "authz_fail")) == 2
    assert (await admin_client.get("/probe/admin")).status_code == 200


@pytest.mark.usefixtures("probes")
async def test_fourth_login_ends_the_oldest_session(app: Any) -> None:
    user = await make_user(app, "bob")
    clients = [Client(app) for _ in range(4)]
    for n, client in enumerate(clients):
        await sign_in(app, client, user, user_agent=f"device {n}")
        clock.advance(timedelta(seconds=1))
    codes = [(await c.get("/probe/user")).status_code for c in clients]
    assert codes == [302, 200, 200, 200]
    rows = await session_rows(app)
    assert [r.end_reason for r in rows] == ["replaced", None, None, None]


@pytest.mark.usefixtures("probes")
async def test_ended_session_cookie_is_refused_and_deleted(app: Any, user_client: Client) -> None:
    [row] = await session_rows(app)
    async with app.extensions["electro"].sessions.begin() as db:
        (await db.get_one(UserSession, row.id)).ended_at = clock.now()
    response = await user_client.get("/probe/user")
    assert response.status_code == 302
    assert response.headers["Set-Cookie"].startswith("QUART_AUTH=;")  # cookie deleted


@pytest.mark.usefixtures("probes")
async def test_idle_session_expires(app: Any, user_client: Client) -> None:
    idle = app.extensions["electro"].settings.session_idle_minutes
    clock.advance(timedelta(minutes=idle - 1))
    assert (await user_client.get("/probe/user")).status_code == 200  # seen: idle restarts
    clock.advance(timedelta(minutes=idle - 1))
    assert (await user_client.get("/probe/user")).status_code == 200
    clock.advance(timedelta(minutes=idle, seconds=1))
    assert (await user_client.get("/probe/user")).status_code == 302
    [row] = await session_rows(app)
    assert row.end_reason == "idle"
    assert [e.details["reason"] for e in await events_of(app, "session_refused")] == ["idle"]


@pytest.mark.usefixtures("probes")
async def test_absolute_lifetime_ends_even_a_busy_session(app: Any, admin_client: Client) -> None:
    hours = app.extensions["electro"].settings.admin_session_max_hours
    for _ in range(hours):
        clock.advance(timedelta(minutes=59))
        assert (await admin_client.get("/probe/admin")).status_code == 200
    clock.advance(timedelta(minutes=hours + 1))
    assert (await admin_client.get("/probe/admin")).status_code == 302
    [row] = await session_rows(app)
    assert row.end_reason == "expired"


@pytest.mark.usefixtures("probes")
async def test_a_block_ends_the_session_at_once_and_expires_by_date(app: Any) -> None:
    user = await make_user(app, "carl")
    client = Client(app)
    await sign_in(app, client, user)
    async with app.extensions["electro"].sessions.begin() as db:
        db.add(AccountBlock(user_id=user.id, until=clock.now() + timedelta(hours=1), reason="x"))
    assert (await client.get("/probe/user")).status_code == 302
    assert (await session_rows(app))[0].end_reason == "blocked"
    clock.advance(timedelta(hours=1, seconds=1))  # the block's date passed; no job has run
    await sign_in(app, client, user)
    assert (await client.get("/probe/user")).status_code == 200


@pytest.mark.usefixtures("probes")
async def test_deactivated_account_is_signed_out(app: Any, user_client: Client) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        user = await db.scalar(select(User).where(User.username == "ann"))
        assert user is not None
        user.is_active = False
    assert (await user_client.get("/probe/user")).status_code == 302
    assert (await session_rows(app))[0].end_reason == "inactive"


@pytest.mark.usefixtures("probes")
async def test_blocked_ip_is_signed_out(app: Any, user_client: Client) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        db.add(IpBlock(ip="<local>", until=clock.now() + timedelta(days=1), reason="abuse"))
    assert (await user_client.get("/probe/user")).status_code == 302
    assert (await session_rows(app))[0].end_reason == "ip_blocked"


@pytest.mark.parametrize(("policy", "status", "reason"),
                         [("log", 200, None), ("strict", 302, "ip_changed")])
async def test_client_ip_change_follows_the_policy(
    settings_overrides: dict[str, Any], policy: str, status: int, reason: str | None
) -> None:
    from electro.app import create_app

    settings_overrides["session_ip_policy"] = policy
    app = create_app(settings_overrides)

    @app.get("/probe/user")
    @login_required
    async def probe_user() -> str:
        return "ok"

    async with app.test_app():
        client = Client(app)
        await sign_in(app, client, await make_user(app, "dora"))
        response = await client.raw.get("/probe/user",
                                        scope_base={"client": ("203.0.113.9", 4000)})
        assert response.status_code == status
        assert (await session_rows(app))[0].end_reason == reason
        changes = await events_of(app, "session_ip_changed")
        if policy == "log":  # recorded once, not on every request from the new address
            await client.raw.get("/probe/user", scope_base={"client": ("203.0.113.9", 4001)})
            changes = await events_of(app, "session_ip_changed")
            assert [(e.ip, e.details["previous_ip"]) for e in changes] == [
                ("203.0.113.9", "<local>")]
            assert (await session_rows(app))[0].ip == "203.0.113.9"
        else:
            assert changes == []


async def test_purge_job_marks_expired_sessions_ended(app: Any, user_client: Client) -> None:
    from electro.tasks import run_jobs_once

    rt = app.extensions["electro"]
    await run_jobs_once(rt.sessions, rt.settings)
    assert (await session_rows(app))[0].ended_at is None  # live: untouched
    clock.advance(timedelta(minutes=rt.settings.session_idle_minutes, seconds=1))
    await run_jobs_once(rt.sessions, rt.settings)
    assert (await session_rows(app))[0].end_reason == "expired"
