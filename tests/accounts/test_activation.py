"""Activation (A8): an inactive account asks for a key; the key activates it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from electro.models import Event, User
from tests.support import Client, Mailbox, make_user
from tests.support.accounts import mail_queued_to, mailed_key, mailed_text, mask_csrf, text_of


async def test_activation_end_to_end(app: Any, mailbox: Mailbox) -> None:
    ivy = await make_user(app, "ivy", is_active=False)
    await make_user(app, "ann")
    pages = []
    for address in ("IVY@example.com", "ann@example.com", "nobody@example.com"):
        response = await Client(app).post("/activate", {"email": address})
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        pages.append(mask_csrf(await text_of(response)))
    assert pages[0] == pages[1] == pages[2]
    key = await mailed_key(mailbox, "ivy@example.com")
    assert f"/activate/confirm?key={key}" in await mailed_text(mailbox, "ivy@example.com")
    assert await mail_queued_to(app, "ann@example.com") == 0
    assert await mail_queued_to(app, "nobody@example.com") == 0

    browser = Client(app)
    assert f'value="{key}"' in await text_of(await browser.get(f"/activate/confirm?key={key}"))
    wrong = await browser.post("/activate/confirm", {"key": "not the key"})
    assert "This key does not work" in await text_of(wrong)
    done = await browser.post("/activate/confirm", {"key": key})
    assert "Your account is active" in await text_of(done)
    async with app.extensions["electro"].sessions() as db:
        user = await db.get_one(User, ivy.id)
        [event] = await db.scalars(select(Event).where(Event.type == "account_activated"))
    assert user.is_active and event.actor_id == ivy.id
    again = await browser.post("/activate/confirm", {"key": key})
    assert "This key does not work" in await text_of(again)


async def test_a_malformed_address_is_told(client: Client) -> None:
    page = await text_of(await client.post("/activate", {"email": "no-at-sign"}))
    assert "e-mail address is not valid" in page and 'value="no-at-sign"' in page
