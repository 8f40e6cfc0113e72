"""Password reset (A6): same answer for every address, key out of the URL, sessions end."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from electro import clock
from electro.models import Event, User, UserSession
from tests.support import TEST_PASSWORD, Client, Mailbox, free_port, make_user, sign_in
from tests.support.accounts import NEW_PASSWORD, mail_queued_to, mailed_text, mask_csrf, text_of

LINK = re.compile(r"http://127\.0\.0\.1:5000(/password/reset/(\S+))")


async def _reset_link(client: Client, mailbox: Mailbox, address: str = "ann@example.com") -> str:
    response = await client.post("/password/reset", {"email": address})
    assert response.status_code == 200
    match = LINK.search(await mailed_text(mailbox, address))
    assert match, "the mail carries the reset link"
    return match.group(1)


async def test_reset_sets_the_password_and_ends_every_session(
    app: Any, mailbox: Mailbox
) -> None:
    ann = await make_user(app, "ann")
    signed_in = Client(app)
    await sign_in(app, signed_in, ann)
    browser = Client(app)
    path = await _reset_link(browser, mailbox)

    # First GET moves the key into the session and redirects: the key leaves the URL.
    moved = await browser.get(path)
    assert moved.status_code == 303 and moved.headers["Location"] == "/password/reset/new"
    form = await browser.get("/password/reset/new")
    assert form.headers["Cache-Control"] == "no-store"
    page = await text_of(form)
    assert "Choose a new password" in page and path.rsplit("/", 1)[1] not in page

    weak = await text_of(await browser.post("/password/reset/new", {
        "password": "ann ann ann ann", "password_confirm": "ann ann ann ann"}))
    assert "Do not build the password from your username" in weak
    done = await browser.post("/password/reset/new", {
        "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert done.status_code == 200
    assert "Your password is changed" in await text_of(done)

    rt = app.extensions["electro"]
    async with rt.sessions() as db:
        user = await db.get_one(User, ann.id)
        [session_row] = await db.scalars(select(UserSession))
        [event] = await db.scalars(select(Event).where(Event.type == "authn_password_reset"))
    assert user.password_hash.startswith("$argon2id$")
    assert await rt.passwords.verify(user.password_hash, NEW_PASSWORD)
    assert not await rt.passwords.verify(user.password_hash, TEST_PASSWORD)
    assert session_row.end_reason == "password_reset"
    assert event.actor_id == ann.id
    assert "password of your E-lectro account" in await mailed_text(mailbox, "ann@example.com", 2)

    # Single use: the link again leads to "does not work", and so does the form.
    await browser.get(path)
    assert "This link does not work" in await text_of(await browser.get("/password/reset/new"))
    again = await browser.post("/password/reset/new", {
        "password": "another fine long one", "password_confirm": "another fine long one"})
    assert "This link does not work" in await text_of(again)
    async with rt.sessions() as db:
        assert await db.scalar(select(Event.details).where(Event.type == "key_rejected")) == {
            "purpose": "reset"}


async def test_an_expired_reset_link_is_refused(app: Any, client: Client, mailbox: Mailbox) -> None:
    await make_user(app, "ann")
    path = await _reset_link(client, mailbox)
    await client.get(path)
    clock.advance(timedelta(minutes=15, seconds=1))
    assert "This link does not work" in await text_of(await client.get("/password/reset/new"))


async def test_the_answer_is_the_same_for_every_address(app: Any, mailbox: Mailbox) -> None:
    await make_user(app, "ann")
    await make_user(app, "ivy", is_active=False)
    pages = []
    for address in ("ann@example.com", "nobody@example.com", "ivy@example.com"):
        response = await Client(app).post("/password/reset", {"email": address})
        assert response.status_code == 200
        pages.append(mask_csrf(await text_of(response)))
    assert pages[0] == pages[1] == pages[2]
    await mailbox.wait_for("ann@example.com")
    assert await mail_queued_to(app, "nobody@example.com") == 0
    assert await mail_queued_to(app, "ivy@example.com") == 0


@pytest.fixture
def smtp_down(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["smtp_port"] = free_port()  # nothing listens there


async def test_the_answer_is_the_same_when_mail_cannot_be_sent(
    smtp_down: None, app: Any
) -> None:
    await make_user(app, "ann")
    known = await Client(app).post("/password/reset", {"email": "ann@example.com"})
    unknown = await Client(app).post("/password/reset", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert mask_csrf(await text_of(known)) == mask_csrf(await text_of(unknown))


async def test_reset_requests_are_rate_limited(client: Client) -> None:
    for n in range(10):
        response = await client.post("/password/reset", {"email": f"n{n}@example.com"})
        assert response.status_code == 200
    limited = await client.post("/password/reset", {"email": "n10@example.com"})
    assert limited.status_code == 429
    assert limited.headers.get_all("Retry-After") == [limited.headers["Retry-After"]]


async def test_a_new_reset_mail_replaces_the_previous_link(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    await make_user(app, "ann")
    first = await _reset_link(client, mailbox)
    await client.post("/password/reset", {"email": "ann@example.com"})
    match = LINK.search(await mailed_text(mailbox, "ann@example.com", 2))
    assert match and match.group(1) != first
    await client.get(first)
    assert "This link does not work" in await text_of(await client.get("/password/reset/new"))
    await client.get(match.group(1))
    assert "Choose a new password" in await text_of(await client.get("/password/reset/new"))


@pytest.mark.parametrize(("path", "known"), [("/password/reset", "ann@example.com"),
                                             ("/activate", "ivy@example.com")])
async def test_a_known_address_costs_the_request_the_same_work_as_an_unknown_one(
    app: Any, path: str, known: str
) -> None:
    """The same SQL, statement for statement, whatever the address (issue 11 finding 6: a
    registered address took 1.7 ms longer, enough to tell). The sender composes the mail later;
    it is kept from running here so that only the request's own statements are seen."""
    await make_user(app, "ann")
    await make_user(app, "ivy", is_active=False)
    rt = app.extensions["electro"]
    rt.wake_jobs = None
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    work = {}
    for address in (known, "nobody@example.com"):
        client = Client(app)
        await client.refresh_token()
        event.listen(rt.engine.sync_engine, "before_cursor_execute", seen)
        try:
            assert (await client.post(path, {"email": address})).status_code == 200
        finally:
            event.remove(rt.engine.sync_engine, "before_cursor_execute", seen)
        work[address], statements = statements, []
    assert work[known] == work["nobody@example.com"]
    assert any("outbox" in s for s in work[known])  # the request itself is queued
