"""The newsletter (SPEC B2) through the real SMTP sink: each subscriber's own mail with the
RFC 8058 headers, text and HTML parts; recipients fixed when sending starts; a rate cap; a
sender stopped partway resumes without sending anyone a newsletter twice."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from electro import clock
from electro.models import AccountBlock, Event, NewsletterDelivery, Order, OrderLine, User
from electro.services import mail, newsletters
from tests.support import Client, Mailbox, make_user
from tests.support.admin import fetch
from tests.support.newsletters import (
    BASE_URL,
    parts,
    send_due,
    start,
    subscribers,
    unsubscribe_link,
    write_newsletter,
)
from tests.support.shop import add_catalogue

pytestmark = pytest.mark.usefixtures("https_links")


@pytest.fixture
def asleep(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The background sender is not woken by requests: the test runs ``send_due`` itself."""
    monkeypatch.setattr(app.extensions["electro"], "wake_jobs", None)


async def _statuses(app: Any) -> dict[int, str]:
    return dict(await fetch(app, select(NewsletterDelivery.user_id, NewsletterDelivery.status)))


async def test_an_admin_writes_sends_and_each_subscriber_gets_one_own_mail(
    asleep: None, app: Any, admin_client: Client, mailbox: Mailbox
) -> None:
    ids = await add_catalogue(app)
    await subscribers(app, 3)
    await make_user(app, "quiet")  # never consented
    await subscribers(app, 1, prefix="asleep", is_active=False)
    (blocked,) = await subscribers(app, 1, prefix="blocked")
    async with app.extensions["electro"].sessions.begin() as db:
        db.add(AccountBlock(user_id=blocked, until=clock.now() + timedelta(days=1)))

    written = await admin_client.post("/admin/newsletters", {
        "subject": "Winter\r\nBcc: evil@example.com", "body": "Cold outside.\n\nWarm deals.",
        "picks": "3"})
    assert written.status_code == 302
    path = written.headers["Location"]
    page = await (await admin_client.get(path)).get_data(as_text=True)
    assert "Not sent yet." in page and "Send to every subscriber" in page
    sent = await admin_client.post(f"{path}/send")
    assert sent.status_code == 302
    assert await send_due(app) == 3

    for n in range(3):
        [message] = await mailbox.wait_for(f"sub{n:05d}@example.com")
        assert message["Subject"] == "Winter Bcc: evil@example.com"  # one line, no header
        assert message["Bcc"] is None
        link = unsubscribe_link(message)
        assert link.startswith(f"{BASE_URL}/newsletter/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        text, html = parts(message)["text/plain"], parts(message)["text/html"]
        assert f"Hello sub{n:05d}," in text and "<p>Warm deals.</p>" in html
        for product_id in list(ids.values())[-3:]:  # the newest three, while picks are newest
            assert f"{BASE_URL}/products/{product_id}" in text
            assert f'href="{BASE_URL}/products/{product_id}"' in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Cable" in html  # a name, escaped
        assert link in text and f'href="{link}"' in html
    assert {m["To"] for m in mailbox.messages} == {f"sub{n:05d}@example.com" for n in range(3)}
    # Everyone's link is their own.
    assert len({unsubscribe_link(m) for m in mailbox.messages}) == 3

    done = await (await admin_client.get(f"{path}/progress", htmx=True)).get_data(as_text=True)
    assert "Finished" in done and "3 sent" in done and "hx-trigger" not in done
    assert (await admin_client.post(f"{path}/send")).status_code == 409  # once only
    assert len(await _statuses(app)) == 3


async def test_a_sender_stopped_partway_resumes_and_nobody_gets_it_twice(
    app: Any, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    await subscribers(app, 6)
    await start(app, await write_newsletter(app))
    original = mail.Transport.send
    calls = 0

    async def dies_at_the_fourth(self: mail.Transport, message: Any, label: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("the worker was killed")  # a crash: nothing below runs
        await original(self, message, label)

    monkeypatch.setattr(mail.Transport, "send", dies_at_the_fourth)
    with pytest.raises(RuntimeError):
        await send_due(app)
    monkeypatch.setattr(mail.Transport, "send", original)
    assert len(mailbox.messages) == 3
    # The rows the dead sender had claimed stay leased: a restart at once sends nothing...
    assert await send_due(app) == 0
    # ...and once the lease has run out, it sends the rest, and only the rest.
    clock.advance(mail.LEASE + timedelta(seconds=1))
    assert await send_due(app) == 3
    for n in range(6):
        assert len(await mailbox.wait_for(f"sub{n:05d}@example.com")) == 1
    await asyncio.sleep(0.1)  # anything extra would have arrived by now
    assert len(mailbox.messages) == 6
    assert set((await _statuses(app)).values()) == {"sent"}


async def test_two_senders_at_once_send_each_mail_once(app: Any, mailbox: Mailbox) -> None:
    await subscribers(app, 30)
    await start(app, await write_newsletter(app, picks=0))
    first, second = await asyncio.gather(send_due(app), send_due(app))
    assert first + second == 30
    await asyncio.sleep(0.1)
    assert sorted(m["To"] for m in mailbox.messages) == [
        f"sub{n:05d}@example.com" for n in range(30)]


async def test_unsubscribed_or_blocked_after_the_start_get_nothing_more(
    app: Any, client: Client, mailbox: Mailbox, settings_overrides: dict[str, Any]
) -> None:
    await subscribers(app, 4)
    rt = app.extensions["electro"]
    capped = rt.settings.__class__(**{**rt.settings.__dict__, "newsletter_per_minute": 2})
    await start(app, await write_newsletter(app))
    assert await newsletters.send_due(rt.sessions, capped) == 2  # the cap: two this minute
    [first] = await mailbox.wait_for("sub00000@example.com")
    users = dict(await fetch(app, select(User.username, User.id)))
    # sub00002 unsubscribes by a link of the kind the first mail carries; sub00003 is blocked.
    token = newsletters.unsubscribe_token(rt.settings, users["sub00002"])
    assert (await client.raw.post(f"/newsletter/unsubscribe/{token}")).status_code == 200
    async with rt.sessions.begin() as db:
        db.add(AccountBlock(user_id=users["sub00003"], until=clock.now() + timedelta(days=1)))
    assert await newsletters.send_due(rt.sessions, capped) == 0  # still the same minute
    clock.advance(timedelta(seconds=61))
    assert await newsletters.send_due(rt.sessions, capped) == 0
    statuses = await _statuses(app)
    assert sorted(statuses.values()) == ["sent", "sent", "skipped", "skipped"]
    assert unsubscribe_link(first)
    await asyncio.sleep(0.1)
    assert {m["To"] for m in mailbox.messages} == {"sub00000@example.com",
                                                   "sub00001@example.com"}


async def test_the_rate_cap_counts_every_mail_claimed_in_the_last_minute(
    app: Any, mailbox: Mailbox
) -> None:
    await subscribers(app, 5)
    rt = app.extensions["electro"]
    capped = rt.settings.__class__(**{**rt.settings.__dict__, "newsletter_per_minute": 3})
    await start(app, await write_newsletter(app, picks=0))
    assert await newsletters.send_due(rt.sessions, capped) == 3
    clock.advance(timedelta(seconds=30))
    assert await newsletters.send_due(rt.sessions, capped) == 0
    clock.advance(timedelta(seconds=31))
    assert await newsletters.send_due(rt.sessions, capped) == 2
    assert await newsletters.send_due(rt.sessions, capped) == 0


async def test_recipients_are_queued_in_one_statement_however_many(app: Any) -> None:
    """Set-based: 3 and 3,000 subscribers cost the same statements to start."""
    rt = app.extensions["electro"]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def statements_to_start(subscribed: int, prefix: str) -> int:
        await subscribers(app, subscribed, prefix=prefix)
        newsletter_id = await write_newsletter(app)
        statements.clear()
        started = time.perf_counter()
        await start(app, newsletter_id)
        assert time.perf_counter() - started < 2
        return len(statements)

    engine = rt.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        few = await statements_to_start(3, "few")
        many = await statements_to_start(3000, "many")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert few == many < 8
    assert (await fetch(app, select(func.count()).select_from(NewsletterDelivery)))[0][0] == (
        3 + 3003)


async def test_preview_as_a_shopper_and_a_test_mail_to_oneself(
    asleep: None, app: Any, admin_client: Client, mailbox: Mailbox
) -> None:
    await add_catalogue(app)
    await make_user(app, "ann")
    newsletter_id = await write_newsletter(app, subject="Preview me")
    path = f"/admin/newsletters/{newsletter_id}"
    page = await (await admin_client.get(f"{path}?shopper=ANN@example.com")).get_data(
        as_text=True)
    assert "Hello ann," in page and "Picked for you:" in page
    unknown = await admin_client.get(f"{path}?shopper=nobody")
    assert unknown.status_code == 422
    assert "No account has this username or e-mail." in await unknown.get_data(as_text=True)

    assert (await admin_client.post(f"{path}/test")).status_code == 302
    [message] = mailbox.to("admin@example.com")  # sent before the answer came
    assert message["Subject"] == "Preview me"
    assert unsubscribe_link(message) and "Hello admin," in parts(message)["text/plain"]
    assert (await fetch(app, select(func.count()).select_from(NewsletterDelivery)))[0][0] == 0
    [tested] = (await fetch(app, select(Event.details).where(
        Event.type == "admin_newsletter_test")))
    assert tested[0]["newsletter_id"] == newsletter_id


async def test_a_test_mail_the_server_refuses_says_so(
    app: Any, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuses(self: mail.Transport, message: Any, label: Any) -> None:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(mail.Transport, "send", refuses)
    newsletter_id = await write_newsletter(app)
    answer = await admin_client.post(f"/admin/newsletters/{newsletter_id}/test")
    assert answer.status_code == 503
    assert "did not take the test mail" in await answer.get_data(as_text=True)


async def test_writing_refuses_bad_input_with_messages(app: Any, admin_client: Client) -> None:
    refused = await admin_client.post("/admin/newsletters",
                                      {"subject": "  ", "body": "", "picks": "99"})
    assert refused.status_code == 422
    html = await refused.get_data(as_text=True)
    for message in ("Write a subject.", "Write the newsletter", "0 to 12"):
        assert message in html
    assert (await admin_client.get("/admin/newsletters/4242")).status_code == 404


async def test_progress_polls_while_sending_and_stops_when_done(
    asleep: None, app: Any, admin_client: Client, mailbox: Mailbox
) -> None:
    await subscribers(app, 2)
    newsletter_id = await write_newsletter(app, picks=0)
    progress = f"/admin/newsletters/{newsletter_id}/progress"
    assert "hx-trigger" not in await (await admin_client.get(progress, htmx=True)).get_data(
        as_text=True)  # not started: nothing to poll for
    await start(app, newsletter_id)
    sending = await (await admin_client.get(progress, htmx=True)).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in sending and "0 sent" in sending and "2 pending" in sending
    assert "<html" not in sending
    await send_due(app)
    done = await (await admin_client.get(progress, htmx=True)).get_data(as_text=True)
    assert "hx-trigger" not in done and "2 sent" in done and "0 pending" in done
    full = await (await admin_client.get(progress)).get_data(as_text=True)
    assert 'aria-live="polite"' in full and "<html" in full
    listing = await (await admin_client.get("/admin/newsletters")).get_data(as_text=True)
    assert "December news" in listing and ">sent<" in listing


async def _buys(app: Any, user_id: int, product_id: int, number: str) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        order = Order(number=number, user_id=user_id, email="x@example.com", status="paid",
                      payment="bank_transfer", name="N", street="S", postcode="1", city="C",
                      country="DE", checkout_hash=number.ljust(64, "0"))
        db.add(order)
        await db.flush()
        db.add(OrderLine(order_id=order.id, product_id=product_id, name="x",
                         unit_price_cents=100, quantity=1))


async def test_picks_differ_between_shoppers_with_different_histories(
    app: Any, mailbox: Mailbox
) -> None:
    ids = await add_catalogue(app)
    gamer, photographer = await subscribers(app, 2)
    await _buys(app, gamer, ids["Quiet Keyboard"], "HIST-0001")
    await _buys(app, photographer, ids["Pixel Camera X"], "HIST-0002")
    await start(app, await write_newsletter(app, picks=3))
    assert await send_due(app) == 2
    picked = []
    for n in range(2):
        [message] = await mailbox.wait_for(f"sub{n:05d}@example.com")
        text = parts(message)["text/plain"]
        picked.append(set(re.findall(r"/products/(\d+)", text)))
    assert picked[0] and picked[1] and picked[0] != picked[1]


async def test_nobody_subscribed_finishes_at_once(app: Any, admin_client: Client) -> None:
    await make_user(app, "quiet")
    newsletter_id = await write_newsletter(app)
    assert await start(app, newsletter_id) == 0
    html = await (await admin_client.get(f"/admin/newsletters/{newsletter_id}")).get_data(
        as_text=True)
    assert "Finished" in html and "every 2s" not in html
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(update(User).values(newsletter=True))
    assert await send_due(app) == 0  # its recipients were fixed at the start
