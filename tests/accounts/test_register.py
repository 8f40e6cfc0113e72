"""Registration (A1, A2): pending registration, key by mail, account only with the key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from electro.models import OneTimeKey, OutboxMail, User
from electro.services import keys
from tests.support import Client, Mailbox, make_user
from tests.support.accounts import (
    NEW_PASSWORD,
    all_cells,
    events_of,
    mailed_key,
    mailed_text,
    mask_csrf,
    register,
    text_of,
)


async def _users(app: Any) -> list[User]:
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(select(User).order_by(User.id)))


async def test_register_then_confirm_creates_the_account(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    page = await text_of(await client.get("/register"))
    assert 'name="csrf_token"' in page and 'hx-post="/register/validate/username"' in page
    response = await register(client, email="Bob@Example.com")
    assert response.status_code == 200
    assert "Check your mail" in await text_of(response)
    assert await _users(app) == []  # pending, not an account

    body = await mailed_text(mailbox, "bob@example.com")
    key = await mailed_key(mailbox, "bob@example.com")
    assert f"http://127.0.0.1:5000/register/confirm?key={key}" in body

    # The link shows a form with the key in it; the GET alone creates nothing.
    link_page = await client.get(f"/register/confirm?key={key}")
    assert link_page.headers["Cache-Control"] == "no-store"
    assert f'value="{key}"' in await text_of(link_page)
    assert await _users(app) == []

    done = await client.post("/register/confirm", {"key": key})
    assert done.status_code == 200
    assert "Your account is ready" in await text_of(done)
    [user] = await _users(app)
    assert (user.username, user.email, user.is_active) == ("bob", "bob@example.com", True)
    assert user.password_hash.startswith("$argon2id$")
    assert await app.extensions["electro"].passwords.verify(user.password_hash, NEW_PASSWORD)
    [created] = await events_of(app, "user_created")
    assert created.actor_id == user.id

    # Used once: the same key again is refused, and nothing new appears.
    again = await client.post("/register/confirm", {"key": key})
    assert "This key does not work" in await text_of(again)
    assert len(await _users(app)) == 1


async def test_only_hashes_are_stored(app: Any, client: Client, mailbox: Mailbox) -> None:
    await register(client)
    key = await mailed_key(mailbox, "bob@example.com")
    for stage in ("pending", "confirmed"):
        for cell in await all_cells(app, "one_time_keys", "users", "events"):
            assert key not in cell and NEW_PASSWORD not in cell, stage
        if stage == "pending":
            await client.post("/register/confirm", {"key": key})
    assert len(await _users(app)) == 1


async def test_a_registered_address_gets_the_same_page_and_its_owner_a_notice(
    app: Any, mailbox: Mailbox
) -> None:
    await make_user(app, "ann")
    known = await register(Client(app), "newcomer", "ANN@example.com")
    unknown = await register(Client(app), "stranger", "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert mask_csrf(await text_of(known)) == mask_csrf(await text_of(unknown))
    notice = await mailed_text(mailbox, "ann@example.com")
    assert "already" in notice and "Key:" not in notice
    assert "Key:" in await mailed_text(mailbox, "nobody@example.com")
    assert [u.username for u in await _users(app)] == ["ann"]


async def test_submit_shows_every_field_error(app: Any, client: Client, mailbox: Mailbox) -> None:
    response = await register(client, "x", "not-an-address", "short", "other")
    assert response.status_code == 200
    page = await text_of(response)
    assert "3 to 32 characters" in page
    assert "e-mail address is not valid" in page
    assert "Use at least 12 characters" in page
    assert "The two passwords differ" in page
    assert 'value="x"' in page and "short" not in page.split("<form", 1)[1].split("</form>")[0]
    fragment = await client.post("/register", {"username": "x"}, htmx=True)
    assert (await text_of(fragment)).strip().startswith('<form id="register-form"')
    await make_user(app, "Bob")
    taken = await text_of(await register(client, "BOB"))
    assert "This username is taken" in taken
    builtin = await text_of(await register(client, "carol", "carol@example.com",
                                           "carol carol carol"))
    assert "Do not build the password from your username" in builtin
    async with app.extensions["electro"].sessions() as db:
        assert await db.scalar(select(func.count()).select_from(OneTimeKey)) == 0
        assert await db.scalar(select(func.count()).select_from(OutboxMail)) == 0


async def test_live_validation_returns_the_field_error_fragment(app: Any, client: Client) -> None:
    await make_user(app, "ann")
    form = {"username": "Ann", "email": "x@example.com", "password": "tiny",
            "password_confirm": "tony"}
    fragment = await client.post("/register/validate/username", form, htmx=True)
    assert fragment.status_code == 200 and fragment.headers["Vary"] == "HX-Request"
    text = await text_of(fragment)
    assert text.strip().startswith('<p class="field-error" id="username-error"')
    assert "This username is taken" in text and "<html" not in text
    password = await text_of(await client.post("/register/validate/password", form, htmx=True))
    assert "Use at least 12 characters" in password
    confirm = await text_of(await client.post("/register/validate/password_confirm", form,
                                              htmx=True))
    assert "The two passwords differ" in confirm
    fine = await text_of(await client.post("/register/validate/username",
                                           {**form, "username": "fresh.name-1"}, htmx=True))
    assert fine.strip() == '<p class="field-error" id="username-error" role="status"></p>'

    # Without htmx: the whole register page with that field's message.
    page = await client.post("/register/validate/username", form)
    assert page.status_code == 200
    assert "<html" in (body := await text_of(page)) and "This username is taken" in body
    assert (await client.post("/register/validate/is_admin", form, htmx=True)).status_code == 404


async def test_live_validation_of_the_address_reveals_no_account(
    app: Any, client: Client
) -> None:
    await make_user(app, "ann")
    answers = [
        await text_of(await client.post("/register/validate/email", {"email": address},
                                        htmx=True))
        for address in ("ann@example.com", "nobody@example.com")
    ]
    assert answers[0] == answers[1]
    assert answers[0].strip() == '<p class="field-error" id="email-error" role="status"></p>'
    bad = await text_of(await client.post("/register/validate/email", {"email": "a@"}, htmx=True))
    assert "e-mail address is not valid" in bad


async def test_wrong_keys_end_the_pending_registration(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    await register(client)
    key = await mailed_key(mailbox, "bob@example.com")
    # Another browser's wrong keys are not charged to this registration.
    assert "does not work" in await text_of(await Client(app).post("/register/confirm",
                                                                   {"key": "wrong"}))
    for attempt in range(1, 5):
        page = await text_of(await client.post("/register/confirm", {"key": f"wrong{attempt}"}))
        assert "This key does not work" in page
    ended = await client.post("/register/confirm", {"key": "wrong5"})
    assert ended.status_code == 200 and "Registration ended" in await text_of(ended)
    # Even the right key is refused now.
    late = await client.post("/register/confirm", {"key": key})
    assert "This key does not work" in await text_of(late)
    assert await _users(app) == []
    async with app.extensions["electro"].sessions() as db:
        [row] = await db.scalars(select(OneTimeKey))
    assert row.attempts == 5 and row.used_at is None
    rejected = await events_of(app, "key_rejected")
    assert len(rejected) == 7 and [e.details["ended"] for e in rejected].count(True) == 1


async def test_two_pending_registrations_of_one_name(
    app: Any, mailbox: Mailbox
) -> None:
    """Two people registered the same name at once (the soft check lets a race through):
    the second confirmation is told clearly, with no 500."""
    first, second = Client(app), Client(app)
    await register(first, "Dana", "dana@example.com")
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:  # the state the race leaves: a second pending row
        other_key, _row = await keys.issue(db, rt.settings, "register", username="dana",
                                           email="other@example.com", password_hash="x")
    assert "Your account is ready" in await text_of(await first.post(
        "/register/confirm", {"key": await mailed_key(mailbox, "dana@example.com")}))
    response = await second.post("/register/confirm", {"key": other_key})
    assert response.status_code == 200
    assert "This username was taken meanwhile" in await text_of(response)
    assert [u.email for u in await _users(app)] == ["dana@example.com"]
    # The refused pending registration is over: its key does not work again.
    again = await second.post("/register/confirm", {"key": other_key})
    assert "This key does not work" in await text_of(again)


async def test_registering_again_replaces_this_browsers_pending_registration(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    await register(client, "bob", "bob@exmaple.com")  # a typo in the address
    first_key = await mailed_key(mailbox, "bob@exmaple.com")
    # Another browser cannot take the name while it is pending ...
    assert "This username is taken" in await text_of(await register(Client(app), "Bob"))
    # ... but the same browser can correct its address at once.
    fix = await client.post("/register/validate/username", {"username": "bob"}, htmx=True)
    assert "taken" not in await text_of(fix)
    assert "Check your mail" in await text_of(await register(client, "bob", "bob@example.com"))
    assert "This key does not work" in await text_of(
        await client.post("/register/confirm", {"key": first_key}))
    done = await client.post("/register/confirm",
                             {"key": await mailed_key(mailbox, "bob@example.com")})
    assert "Your account is ready" in await text_of(done)
    assert [u.email for u in await _users(app)] == ["bob@example.com"]
