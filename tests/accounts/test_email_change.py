"""E-mail change (A11): password first, key to the new address, notice to the old one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from electro.models import Event, OneTimeKey, User
from tests.support import TEST_PASSWORD, Client, Mailbox, make_user, sign_in
from tests.support.accounts import mailed_key, mailed_text, mask_csrf, text_of, user_row


async def _email_of(app: Any, username: str) -> str:
    async with app.extensions["electro"].sessions() as db:
        return str(await db.scalar(select(User.email).where(User.username == username)))


async def test_email_change_end_to_end(app: Any, user_client: Client, mailbox: Mailbox) -> None:
    page = await user_client.get("/account/email")
    assert page.status_code == 200 and "ann@example.com" in await text_of(page)
    wrong = await user_client.post("/account/email", {"email": "new@example.com",
                                                      "current_password": "not it at all"})
    assert "That is not your current password" in await text_of(wrong)
    response = await user_client.post("/account/email", {"email": "New@Example.com",
                                                         "current_password": TEST_PASSWORD})
    assert "Check the new mailbox" in await text_of(response)
    key = await mailed_key(mailbox, "new@example.com")
    assert f"/account/email/confirm?key={key}" in await mailed_text(mailbox, "new@example.com")
    notice = await mailed_text(mailbox, "ann@example.com")
    assert "Key:" not in notice and "change" in notice
    assert await _email_of(app, "ann") == "ann@example.com"  # not before the key

    link_page = await user_client.get(f"/account/email/confirm?key={key}")
    assert f'value="{key}"' in await text_of(link_page)
    done = await user_client.post("/account/email/confirm", {"key": key})
    assert "now uses new@example.com" in await text_of(done)
    assert await _email_of(app, "ann") == "new@example.com"
    async with app.extensions["electro"].sessions() as db:
        assert await db.scalar(select(Event.actor_id).where(Event.type == "email_changed")) == (
            await user_row(app, "ann")).id
    again = await user_client.post("/account/email/confirm", {"key": key})
    assert "This key does not work" in await text_of(again)


async def test_an_address_with_an_account_gets_a_notice_and_the_same_answer(
    app: Any, user_client: Client, mailbox: Mailbox
) -> None:
    await make_user(app, "bob")
    pages = [
        mask_csrf(await text_of(await user_client.post(
            "/account/email", {"email": address, "current_password": TEST_PASSWORD})))
        for address in ("bob@example.com", "free@example.com")
    ]
    assert pages[0] == pages[1]
    assert "Key:" not in await mailed_text(mailbox, "bob@example.com")
    assert "Key:" in await mailed_text(mailbox, "free@example.com")


async def _request_change(client: Client, mailbox: Mailbox, to: str = "x@example.com") -> str:
    """Ask for a change to ``to``; returns the key mailed there."""
    await client.post("/account/email", {"email": to, "current_password": TEST_PASSWORD})
    return await mailed_key(mailbox, to)


async def test_an_address_taken_meanwhile_gets_a_clear_message(
    app: Any, user_client: Client, mailbox: Mailbox
) -> None:
    key = await _request_change(user_client, mailbox)
    await make_user(app, "xavier", email="X@example.com")
    response = await user_client.post("/account/email/confirm", {"key": key})
    assert response.status_code == 200
    assert "This address got an account meanwhile" in await text_of(response)
    assert await _email_of(app, "ann") == "ann@example.com"


async def test_only_the_requesting_account_can_use_the_key(
    app: Any, user_client: Client, mailbox: Mailbox
) -> None:
    key = await _request_change(user_client, mailbox)
    anonymous = await Client(app).post("/account/email/confirm", {"key": key})
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    # Wrong keys are charged to ann's pending change; the fifth ends it.
    for n in range(4):
        page = await user_client.post("/account/email/confirm", {"key": f"wrong{n}"})
        assert "This key does not work" in await text_of(page)
    ended = await user_client.post("/account/email/confirm", {"key": "wrong4"})
    assert "E-mail change ended" in await text_of(ended)
    assert "This key does not work" in await text_of(
        await user_client.post("/account/email/confirm", {"key": key}))
    async with app.extensions["electro"].sessions() as db:
        assert await db.scalar(select(OneTimeKey.attempts)) == 5
    assert await _email_of(app, "ann") == "ann@example.com"


async def test_a_key_of_another_account_does_not_work(
    app: Any, user_client: Client, mailbox: Mailbox
) -> None:
    bob = Client(app)
    await sign_in(app, bob, await make_user(app, "bob"))
    key = await _request_change(user_client, mailbox)
    stolen = await bob.post("/account/email/confirm", {"key": key})
    assert "This key does not work" in await text_of(stolen)
    assert await _email_of(app, "bob") == "bob@example.com"
