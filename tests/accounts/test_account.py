"""The account page (A4, A7): live sessions, ending them (htmx and plain), password change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from electro import clock
from tests.support import TEST_PASSWORD, Client, Mailbox, body_of, make_user, sign_in
from tests.support.accounts import (
    events_of,
    failure_row,
    log_in,
    mail_queued_to,
    session_rows,
    user_row,
)

NEW_PASSWORD = "lanterns over a quiet harbour"


async def _devices(app: Any, username: str, count: int) -> list[Client]:
    """``count`` clients signed in to ``username``, one per device, oldest first."""
    user = await make_user(app, username)
    clients = []
    for n in range(count):
        client = Client(app)
        await sign_in(app, client, user, user_agent=f"Device {n}")
        clock.advance(timedelta(seconds=1))
        clients.append(client)
    return clients


async def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = await client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account"


async def test_account_page_shows_profile_and_live_sessions(app: Any) -> None:
    _first, second = await _devices(app, "ann", 2)
    response = await second.get("/account")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = await response.get_data(as_text=True)
    assert "ann@example.com" in page and 'href="/account/email"' in page
    assert "Device 0" in page and "Device 1" in page
    sessions = await session_rows(app, (await user_row(app, "ann")).id)
    assert f'id="session-{sessions[1].id}" class="current"' in page
    assert f'hx-post="/account/sessions/{sessions[0].id}/end"' in page
    assert f'action="/account/sessions/{sessions[1].id}/end"' not in page  # not for itself


async def test_ending_a_session_with_htmx_returns_the_list(app: Any) -> None:
    first, second = await _devices(app, "ann", 2)
    user = await user_row(app, "ann")
    old, _current = await session_rows(app, user.id)
    response = await second.post(f"/account/sessions/{old.id}/end", htmx=True)
    assert response.status_code == 200
    fragment = await response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="account-sessions">')
    assert "Device 0" not in fragment and "Device 1" in fragment
    assert (await first.get("/account")).status_code == 302
    assert (await session_rows(app, user.id))[0].end_reason == "ended_by_user"
    assert len(await events_of(app, "session_ended")) == 1


async def test_ending_a_session_without_javascript_redirects(app: Any) -> None:
    first, second = await _devices(app, "ann", 2)
    old, _current = await session_rows(app, (await user_row(app, "ann")).id)
    response = await second.post(f"/account/sessions/{old.id}/end")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    page = await (await second.get("/account")).get_data(as_text=True)
    assert "The session was ended." in page and "Device 0" not in page
    assert (await first.get("/account")).status_code == 302


async def test_another_accounts_session_cannot_be_ended(app: Any) -> None:
    [ann] = await _devices(app, "ann", 1)
    [bob] = await _devices(app, "bob", 1)
    [bob_session] = await session_rows(app, (await user_row(app, "bob")).id)
    response = await ann.post(f"/account/sessions/{bob_session.id}/end")
    assert response.status_code == 404
    assert len(await events_of(app, "http_not_found")) == 1  # recorded, not stuck on a lock
    assert (await bob.get("/account")).status_code == 200
    [bob_session] = await session_rows(app, (await user_row(app, "bob")).id)
    assert bob_session.ended_at is None


async def test_end_all_others_keeps_the_current_session(app: Any) -> None:
    clients = await _devices(app, "ann", 3)
    response = await clients[1].post("/account/sessions/end-others", htmx=True)
    assert response.status_code == 200
    assert "Signed out of 2 other session(s)." in await response.get_data(as_text=True)
    codes = [(await c.get("/account")).status_code for c in clients]
    assert codes == [302, 200, 302]


async def test_password_change_ends_other_sessions_and_mails_a_notice(
    app: Any, mailbox: Mailbox
) -> None:
    other, current = await _devices(app, "ann", 2)
    response = await current.post("/account/password", {
        "current_password": TEST_PASSWORD, "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    page = await (await current.get("/account")).get_data(as_text=True)
    assert "Your password was changed; 1 other session(s) were signed out." in page
    assert (await other.get("/account")).status_code == 302
    [mail] = await mailbox.wait_for("ann@example.com")
    assert mail["Subject"] == "Your E-lectro password was changed"
    assert "ann" in body_of(mail)
    assert len(await events_of(app, "authn_password_change")) == 1
    assert (await log_in(Client(app), "ann", TEST_PASSWORD)).status_code == 200  # old: refused
    assert (await log_in(Client(app), "ann", NEW_PASSWORD)).status_code == 302


async def test_password_change_refusals_say_what_to_do(app: Any, mailbox: Mailbox) -> None:
    [client] = await _devices(app, "ann", 1)
    wrong = await client.post("/account/password", {
        "current_password": "not my password", "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD})
    assert wrong.status_code == 200
    assert "That is not your current password." in await wrong.get_data(as_text=True)
    assert (await user_row(app, "ann")).failed_logins == 1  # counts like a failed log-in

    weak = await client.post("/account/password", {
        "current_password": TEST_PASSWORD, "password": "short", "password_confirm": "other"})
    page = await weak.get_data(as_text=True)
    assert "Use at least 12 characters" in page
    assert "type the same password twice" in page
    assert (await client.get("/account")).status_code == 200  # still signed in
    assert (await log_in(Client(app), "ann", TEST_PASSWORD)).status_code == 302  # unchanged
    assert await mail_queued_to(app, "ann@example.com") == 0


# Every form that asks for the current password (issue 11 finding 4: the e-mail form did not
# count wrong ones, and accepted the right one on a locked account).
CURRENT_PASSWORD_FORMS = {
    "/account/password": {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    "/account/email": {"email": "new@example.com"},
}


@pytest.mark.parametrize("path", sorted(CURRENT_PASSWORD_FORMS))
async def test_wrong_current_passwords_lock_the_account_like_failed_logins(
    app: Any, path: str
) -> None:
    """Counted per client address too (issue 11 finding 7): five lock the form from that
    address, and the owner can still use it from another."""
    [client] = await _devices(app, "ann", 1)
    form = CURRENT_PASSWORD_FORMS[path]
    here = {"client": ("192.0.2.1", 4000)}
    for tries in range(1, 6):
        wrong = await client.post(path, {"current_password": "guess", **form}, scope_base=here)
        assert wrong.status_code == 200  # the count commits
        assert (await user_row(app, "ann")).failed_logins == tries
    assert (await user_row(app, "ann")).locked_until is None  # not locked for everyone
    locked = await client.post(path, {"current_password": TEST_PASSWORD, **form},
                               scope_base=here)
    assert "Too many wrong passwords" in await locked.get_data(as_text=True)
    assert len(await events_of(app, "authn_login_lock")) == 1
    assert (await user_row(app, "ann")).email == "ann@example.com"  # nothing changed
    assert await mail_queued_to(app, "new@example.com") == 0
    notices = await mail_queued_to(app, "ann@example.com")  # the lock's, so far
    elsewhere = await client.post(path, {"current_password": TEST_PASSWORD, **form},
                                  scope_base={"client": ("192.0.2.2", 4000)})
    assert elsewhere.status_code < 400
    assert "Too many wrong passwords" not in await elsewhere.get_data(as_text=True)
    # Accepted: the owner is told of the new password or the address change.
    assert await mail_queued_to(app, "ann@example.com") == notices + 1
    pair = await failure_row(app, "ann", "192.0.2.1")
    assert pair is not None and pair.failures == 5 and pair.locked_until is not None
