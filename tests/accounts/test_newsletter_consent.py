"""Newsletter consent (SPEC B2): opt-in on /account and the sign-up form, every change an event
with its time and address; the mailed link unsubscribes by one POST (RFC 8058) with no log-in
and no CSRF token, its GET only asks, and a wrong or expired link gets a clear page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from electro import clock
from electro.services import newsletters
from tests.support import Client, Mailbox
from tests.support.accounts import (
    NEW_PASSWORD,
    events_of,
    mailed_key,
    register,
    text_of,
    user_row,
)
from tests.support.newsletters import BASE_URL, send_due, start, subscribers, write_newsletter

pytestmark = pytest.mark.usefixtures("https_links")


async def test_the_account_page_opts_in_and_out_and_records_each_change(
    app: Any, user_client: Client
) -> None:
    page = await text_of(await user_client.get("/account"))
    assert 'name="newsletter" type="checkbox" value="yes">' in page  # not ticked
    assert not (await user_row(app, "ann")).newsletter

    ticked = await user_client.post("/account/newsletter", {"newsletter": "yes"})
    assert ticked.status_code == 302
    assert (await user_row(app, "ann")).newsletter
    assert "checked" in await text_of(await user_client.get("/account"))
    # The same answer again changes nothing and records nothing.
    await user_client.post("/account/newsletter", {"newsletter": "yes"}, htmx=True)
    unticked = await user_client.post("/account/newsletter", {}, htmx=True)
    assert unticked.status_code == 200
    fragment = await text_of(unticked)
    assert "You do not get the newsletter." in fragment and "<html" not in fragment
    assert not (await user_row(app, "ann")).newsletter

    given, withdrawn = await events_of(app, "newsletter_consent")
    assert (given.details["given"], withdrawn.details["given"]) == (True, False)
    for consent in (given, withdrawn):
        assert consent.actor == "ann" and consent.ip and consent.details["via"] == "account"
        assert consent.created_at is not None


@pytest.mark.parametrize("ticked", [True, False])
async def test_sign_up_consent_reaches_the_account_its_key_creates(
    app: Any, client: Client, mailbox: Mailbox, ticked: bool
) -> None:
    form = await text_of(await client.get("/register"))
    assert 'name="newsletter" type="checkbox" value="yes">' in form  # unticked by default
    if ticked:
        await client.post("/register", {
            "username": "bob", "email": "bob@example.com", "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD, "newsletter": "yes"})
    else:
        await register(client)
    key = await mailed_key(mailbox, "bob@example.com")
    assert (await client.post("/register/confirm", {"key": key})).status_code == 200
    assert (await user_row(app, "bob")).newsletter is ticked
    [pending] = await events_of(app, "register_pending")
    assert pending.details["newsletter"] is ticked and pending.ip
    consents = await events_of(app, "newsletter_consent")
    if ticked:
        [consent] = consents
        assert consent.details["via"] == "sign-up" and consent.details["given"] is True
        assert consent.details["ticked_at"] and consent.ip
    else:
        assert consents == []


async def _mailed_link(app: Any, mailbox: Mailbox) -> str:
    """A subscriber ``sub00000`` and the unsubscribe path from their newsletter's header."""
    await subscribers(app, 1)
    await start(app, await write_newsletter(app, picks=0))
    await send_due(app)
    [message] = await mailbox.wait_for("sub00000@example.com")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = " ".join(str(message["List-Unsubscribe"]).split())
    assert link.startswith(f"<{BASE_URL}/newsletter/unsubscribe/") and link.endswith(">")
    return link[1:-1].removeprefix(BASE_URL)


async def test_one_click_post_unsubscribes_without_log_in_or_csrf_token(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    path = await _mailed_link(app, mailbox)
    # As a mail client sends it (RFC 8058): no cookie, no CSRF token, just this body.
    answer = await client.raw.post(path, form={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert "You are unsubscribed" in await text_of(answer)
    assert answer.headers["Cache-Control"] == "no-store"
    assert not (await user_row(app, "sub00000")).newsletter
    [withdrawn] = await events_of(app, "newsletter_consent")
    assert withdrawn.details == {"given": False, "via": "unsubscribe link"}
    assert withdrawn.actor == "sub00000" and withdrawn.ip and withdrawn.path == path
    # A client that sends it again gets the same page, and nothing more is recorded.
    assert (await client.raw.post(path, form={"List-Unsubscribe": "One-Click"})
            ).status_code == 200
    assert len(await events_of(app, "newsletter_consent")) == 1


async def test_opening_the_link_only_asks(app: Any, client: Client, mailbox: Mailbox) -> None:
    path = await _mailed_link(app, mailbox)
    page = await client.get(path)  # what a mail scanner following links does
    assert page.status_code == 200
    html = await text_of(page)
    assert "Stop the E-lectro newsletter to sub00000@example.com?" in html
    assert f'action="{path}"' in html and ">Unsubscribe</button>" in html
    assert (await user_row(app, "sub00000")).newsletter
    assert await events_of(app, "newsletter_consent") == []
    # The confirm button posts the form (a browser without JavaScript).
    done = await client.raw.post(path, form={})
    assert "You are unsubscribed" in await text_of(done)


async def test_a_wrong_or_expired_link_gets_a_clear_page_never_an_error(
    app: Any, client: Client
) -> None:
    (user_id,) = await subscribers(app, 1)
    settings = app.extensions["electro"].settings
    good = newsletters.unsubscribe_token(settings, user_id)
    value, expires, mac = good.split(".")
    forged = [
        f"{user_id + 1}.{expires}.{mac}",  # another account's id under this one's MAC
        f"{value}.{int(expires) + 86400}.{mac}",  # a later expiry
        f"{value}.{expires}.{mac[:-2]}",  # cut short
        "", "1", "1.2", "1.2.3.4", "٣.٣.٣", "1" * 40 + ".1.x", "%00", "a%20b",
    ]
    other_key = newsletters.signed.sign("another secret key", newsletters.UNSUBSCRIBE, user_id,
                                        clock.now() + timedelta(days=1))
    for token in [*forged, other_key]:
        for method in ("GET", "POST"):
            answer = await client.raw.open(f"/newsletter/unsubscribe/{token}", method=method)
            assert answer.status_code in (404, 405), (method, token, answer.status_code)
            if answer.status_code == 404 and token:
                assert "This unsubscribe link does not work" in await text_of(answer)
    clock.advance(timedelta(days=newsletters.UNSUBSCRIBE_LINK_DAYS, seconds=1))
    expired = await client.raw.post(f"/newsletter/unsubscribe/{good}")
    assert expired.status_code == 404
    assert "too old" in await text_of(expired)
    assert (await user_row(app, "sub00000")).newsletter  # nobody was unsubscribed
