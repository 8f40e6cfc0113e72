"""B3 personal access tokens: created and revoked on /account, shown once, stored hashed, sent
as a Bearer header; expired, revoked, wrong and cookie-only requests are refused; last use
recorded; every change an event."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from electro import clock
from electro.models import ApiToken, Event
from electro.security.keys import hash_key
from tests.support import make_user, sign_in
from tests.support.api import bearer, make_token


async def _rows(app: Any, model: Any, *where: Any) -> list[Any]:
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(select(model).where(*where)))


async def _events(app: Any, type_: str) -> list[Event]:
    return await _rows(app, Event, Event.type == type_)


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = await response.get_json()
    assert body["status"] == status and "Traceback" not in body["detail"]
    return body


async def test_a_token_is_shown_once_stored_hashed_and_reads_its_owner(
    app: Any, user_client: Any
) -> None:
    for htmx in (False, True):
        made = await user_client.post("/account/tokens", {"name": f"laptop {htmx}",
                                                          "expires_days": "30"}, htmx=htmx)
        assert made.status_code == 200
        page = await made.get_data(as_text=True)
        assert ("<html" in page) is not htmx
        clear = re.search(r'<code id="new-token">([^<]+)</code>', page)
        assert clear, page
    stored = await _rows(app, ApiToken)
    assert [t.token_hash for t in stored][-1] == hash_key(clear[1])
    assert all(clear[1] not in (t.token_hash, t.name) for t in stored)
    # Shown once: the account page lists the token by name only.
    listing = await (await user_client.get("/account")).get_data(as_text=True)
    assert "laptop True" in listing and clear[1] not in listing
    me = await user_client.raw.get("/api/v1/me", headers=bearer(clear[1]))
    assert me.status_code == 200
    body = await me.get_json()
    assert body["username"] == "ann" and body["email"] == "ann@example.com" and body["created"]
    assert len(await _events(app, "api_token_created")) == 2


async def test_a_refused_form_says_why_and_makes_nothing(app: Any, user_client: Any) -> None:
    refused = await user_client.post("/account/tokens", {"name": " ", "expires_days": "366"},
                                     htmx=True)
    assert refused.status_code == 422
    page = await refused.get_data(as_text=True)
    assert "Give the token a name" in page and "from 1 to 365" in page
    assert await _rows(app, ApiToken) == []


async def test_last_use_and_a_new_address_are_recorded(app: Any, client: Any) -> None:
    user = await make_user(app, "bob")
    token = await make_token(app, user)
    assert (await client.raw.get("/api/v1/me", headers=bearer(token))).status_code == 200
    [row] = await _rows(app, ApiToken)
    assert row.last_used_at is not None and row.last_used_ip == "<local>"
    [moved] = await _events(app, "api_token_new_ip")
    assert moved.details["previous_ip"] == "" and moved.actor == "bob"
    clock.advance(timedelta(minutes=5))
    assert (await client.raw.get("/api/v1/me", headers=bearer(token))).status_code == 200
    [later] = await _rows(app, ApiToken)
    assert later.last_used_at is not None and later.last_used_at > row.last_used_at
    assert len(await _events(app, "api_token_new_ip")) == 1  # the same address: no new event


async def test_expired_revoked_wrong_and_cookie_only_requests_get_401(
    app: Any, client: Any
) -> None:
    user = await make_user(app, "cy")
    expiring = await make_token(app, user, "short", days="1")
    revoked = await make_token(app, user, "gone")
    await sign_in(app, client, user)
    [gone] = await _rows(app, ApiToken, ApiToken.name == "gone")
    revoke = await client.post(f"/account/tokens/{gone.id}/revoke")
    assert revoke.status_code == 302
    assert len(await _events(app, "api_token_revoked")) == 1
    assert (await client.raw.get("/api/v1/me", headers=bearer(expiring))).status_code == 200
    clock.advance(timedelta(days=1, seconds=1))
    for headers in (bearer(expiring), bearer(revoked), bearer(expiring + "x"),
                    {"Authorization": "Basic YW5uOnB3"}, {}):
        # The client holds a live session cookie too: the API never takes it.
        refused = await client.raw.get("/api/v1/me", headers=headers)
        problem = await _problem(refused, 401)
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="electro"'
        assert "Bearer" in problem["detail"]


async def test_only_the_owner_revokes_a_token(app: Any, user_client: Any) -> None:
    other = await make_user(app, "dee")
    token = await make_token(app, other)
    [row] = await _rows(app, ApiToken)
    refused = await user_client.post(f"/account/tokens/{row.id}/revoke")
    assert refused.status_code == 404
    assert (await user_client.raw.get("/api/v1/me", headers=bearer(token))).status_code == 200
