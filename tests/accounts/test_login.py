"""Log in and out through the real forms (A3, A4): generic failures, lockout, rehash, limits."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from electro import clock
from electro.app import create_app
from electro.models import User
from electro.security.passwords import Passwords
from electro.services import blocking
from electro.services.events import NOBODY
from tests.support import TEST_PASSWORD, Client, Mailbox, body_of, make_user
from tests.support.accounts import (
    GENERIC,
    block_ip,
    events_of,
    failure_row,
    log_in,
    mask_csrf,
    queued_mail,
    session_rows,
    user_row,
)


async def test_log_in_and_out_end_to_end(app: Any, client: Client) -> None:
    await make_user(app, "ann")
    guarded = await client.get("/account")
    assert guarded.headers["Location"] == "/login?next=/account"
    page = await (await client.get(guarded.headers["Location"])).get_data(as_text=True)
    assert 'name="login"' in page and 'name="password"' in page
    assert '<input type="hidden" name="next" value="/account">' in page
    response = await log_in(client, "ann", form={"next": "/account"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    account = await client.get("/account")
    assert account.status_code == 200
    assert "ann@example.com" in await account.get_data(as_text=True)
    assert len(await events_of(app, "authn_login_success")) == 1
    assert len(await events_of(app, "session_created")) == 1

    saved = {c.name: c.value for c in client.raw.cookie_jar}  # type: ignore[union-attr]
    response = await client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert response.headers["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    assert response.headers["Set-Cookie"].startswith("QUART_AUTH=;")
    [row] = await session_rows(app, (await user_row(app, "ann")).id)
    assert row.end_reason == "logout"
    assert (await client.get("/account")).status_code == 302

    client.raw.set_cookie("localhost", "QUART_AUTH", saved["QUART_AUTH"])  # replay the old cookie
    response = await client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


async def test_login_by_email_in_any_case_and_only_local_next(app: Any, client: Client) -> None:
    await make_user(app, "Ann")
    response = await log_in(client, "  ANN@Example.COM ", form={"next": "//evil.example/x"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert (await client.get("/account")).status_code == 200
    assert (await log_in(Client(app), "aNN")).status_code == 302


@pytest.mark.parametrize("target", [
    "//evil.example/x", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
    "/\r/evil.example", "/x\\..\\\\evil.example", "https://evil.example/", "evil.example",
])
async def test_next_never_leaves_the_site(app: Any, client: Client, target: str) -> None:
    """Browsers drop tabs and line breaks from a Location and read backslashes as slashes."""
    await make_user(app, "ann")
    response = await log_in(client, "ann", form={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


async def test_a_local_next_is_followed(app: Any, client: Client) -> None:
    await make_user(app, "ann")
    response = await log_in(client, "ann", form={"next": "/account?tab=sessions"})
    assert response.headers["Location"] == "/account?tab=sessions"


async def test_a_look_alike_next_is_sent_percent_encoded(app: Any, client: Client) -> None:
    await make_user(app, "ann")
    response = await log_in(client, "ann", form={"next": "/／／evil.com"})
    assert response.headers["Location"] == "/%EF%BC%8F%EF%BC%8Fevil.com"


async def test_every_login_starts_a_new_session(app: Any, client: Client) -> None:
    user = await make_user(app, "ann")
    others = [Client(app), Client(app)]
    for other in others:
        await log_in(other, "ann")
    await log_in(client, "ann")
    await log_in(client, "ann")  # again, from the same browser
    *_, first, second = await session_rows(app, user.id)
    assert first.token_hash != second.token_hash
    assert first.end_reason == "replaced" and second.ended_at is None  # no lingering session
    assert (await client.get("/account")).status_code == 200
    # The replaced session ended before the new one counted: no other device was pushed out.
    assert [(await other.get("/account")).status_code for other in others] == [200, 200]


async def test_unknown_user_and_wrong_password_look_identical(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(app, "ann")
    dummy_calls = []
    original = Passwords.verify_dummy

    async def spy(self: Passwords, password: str) -> None:
        dummy_calls.append(password)
        await original(self, password)

    monkeypatch.setattr(Passwords, "verify_dummy", spy)
    unknown = await log_in(Client(app), "nobody", "a wrong password")
    assert dummy_calls == ["a wrong password"]
    wrong = await log_in(Client(app), "ann", "a wrong password")
    assert dummy_calls == ["a wrong password"]  # a known account verifies its real hash
    assert unknown.status_code == wrong.status_code == 200
    unknown_page = mask_csrf(await unknown.get_data(as_text=True))
    assert GENERIC in unknown_page
    assert unknown_page == mask_csrf(await wrong.get_data(as_text=True))
    assert "nobody" not in unknown_page
    fails = await events_of(app, "authn_login_fail")
    assert [(e.details["login"], e.details["reason"]) for e in fails] == [
        ("nobody", "unknown"), ("ann", "wrong_password")]
    assert all("a wrong password" not in str(e.details) for e in fails)
    assert (await user_row(app, "ann")).failed_logins == 1


async def test_concurrent_failures_from_one_address_lock_it_from_there_only(
    app: Any, mailbox: Mailbox
) -> None:
    """Eight wrong guesses at once from one address (the per-IP limit allows ten a minute):
    every one is counted; the fifth locks the account from that address, exactly once; the
    three made while it was locked could not have succeeded, so they do not count for the
    account, and another address signs in."""
    await make_user(app, "ann")
    client = Client(app)
    await client.refresh_token()
    attacker = {"client": ("198.51.100.7", 4000)}
    responses = await asyncio.gather(*(
        log_in(client, "ann", f"wrong guess {n}", scope_base=attacker) for n in range(8)))
    assert {r.status_code for r in responses} == {200}
    user = await user_row(app, "ann")
    assert (user.failed_logins, user.locked_until) == (5, None)
    pair = await failure_row(app, "ann", "198.51.100.7")
    assert pair is not None and pair.failures == 8  # attempts keep counting while locked
    assert pair.locked_until is not None
    # Locked for 15 minutes from the fifth failure, which came after the window opened.
    assert pair.locked_until - pair.window_started_at >= timedelta(minutes=15)
    assert pair.locked_until - timedelta(minutes=15) <= clock.now()
    [lock] = await events_of(app, "authn_login_lock")
    assert (lock.details["scope"], lock.ip) == ("address", "198.51.100.7")
    assert len(await events_of(app, "authn_login_fail")) == 8
    [mail] = await mailbox.wait_for("ann@example.com")
    assert "locked" in mail["Subject"]
    assert "198.51.100.7" in body_of(mail) and "until" in body_of(mail)

    refused = await log_in(client, "ann", scope_base=attacker)  # the right password
    assert refused.status_code == 200 and GENERIC in await refused.get_data(as_text=True)
    assert (await events_of(app, "authn_login_fail"))[-1].details["reason"] == (
        "locked_from_address")
    assert await queued_mail(app, "account_locked") == 1  # no second mail for the refusal

    assert (await log_in(Client(app), "ann")).status_code == 302  # the owner, elsewhere
    clock.advance(timedelta(minutes=15, seconds=1))  # the lock lifts by its date alone
    assert (await log_in(client, "ann", scope_base=attacker)).status_code == 302
    assert await failure_row(app, "ann", "198.51.100.7") is None  # a success forgets the count
    user = await user_row(app, "ann")
    assert (user.failed_logins, user.locked_until, user.failed_window_started_at) == (0, None,
                                                                                      None)


async def test_concurrent_failures_from_many_addresses_lock_the_account_for_everyone(
    app: Any, mailbox: Mailbox
) -> None:
    """Sixty wrong guesses at once from sixty addresses: every one is counted; the fiftieth
    (ELECTRO_LOGIN_ACCOUNT_LOCK_THRESHOLD) locks the account everywhere, exactly once."""
    await make_user(app, "ann")
    client = Client(app)
    await client.refresh_token()
    responses = await asyncio.gather(*(
        log_in(client, "ann", f"wrong guess {n}", scope_base={"client": (f"10.0.0.{n}", 4000)})
        for n in range(60)
    ))
    assert {r.status_code for r in responses} == {200}
    user = await user_row(app, "ann")
    assert user.failed_logins == 60
    assert user.locked_until is not None and user.failed_window_started_at is not None
    assert user.locked_until - timedelta(minutes=15) <= clock.now()
    [lock] = await events_of(app, "authn_login_lock")
    assert (lock.details.get("scope"), lock.details["failures"]) == ("account", 50)
    [mail] = await mailbox.wait_for("ann@example.com")
    assert mail["Subject"] == "Your E-lectro account is locked for a while"
    assert "locked for everyone" in body_of(mail)

    refused = await log_in(Client(app), "ann")  # the right password, from a fresh address
    assert refused.status_code == 200 and GENERIC in await refused.get_data(as_text=True)
    assert (await events_of(app, "authn_login_fail"))[-1].details["reason"] == "locked"
    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await log_in(client, "ann")).status_code == 302


async def test_failures_outside_the_window_start_a_new_count(app: Any) -> None:
    await make_user(app, "ann")
    for _ in range(4):
        await log_in(Client(app), "ann", "wrong")
    clock.advance(timedelta(minutes=16))
    await log_in(Client(app), "ann", "wrong")
    user = await user_row(app, "ann")
    assert (user.failed_logins, user.locked_until) == (1, None)


async def test_blocked_account_gets_the_generic_error_and_a_mail(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    ann = await make_user(app, "ann")
    async with app.extensions["electro"].sessions.begin() as db:
        await blocking.block_accounts(db, app.extensions["electro"].settings, [ann.id],
                                      clock.now() + timedelta(days=2), "chargeback fraud", NOBODY)
    app.extensions["electro"].wake_jobs.set()  # a request would wake the sender after commit
    await mailbox.wait_for("ann@example.com")  # the block notice itself
    wrong = await log_in(client, "ann", "wrong password")
    right = await log_in(client, "ann")
    assert mask_csrf(await wrong.get_data(as_text=True)) == mask_csrf(
        await right.get_data(as_text=True))
    assert GENERIC in await right.get_data(as_text=True)
    _, notice = await mailbox.wait_for("ann@example.com", count=2)
    assert notice["Subject"] == "Your E-lectro account is blocked"
    assert "chargeback fraud" in body_of(notice)
    await log_in(client, "ann")  # a second try within 15 minutes mails nobody
    assert await queued_mail(app, "login_blocked") == 1
    assert [e.details["reason"] for e in await events_of(app, "authn_login_fail")] == [
        "wrong_password", "blocked", "blocked"]


async def test_inactive_account_gets_the_generic_error_and_a_mail(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    await make_user(app, "ann", is_active=False)
    response = await log_in(client, "ann")
    assert response.status_code == 200 and GENERIC in await response.get_data(as_text=True)
    [mail] = await mailbox.wait_for("ann@example.com")
    assert mail["Subject"] == "Your E-lectro account is not active"
    assert (await client.get("/account")).status_code == 302


async def test_a_blocked_ip_cannot_log_in(app: Any, client: Client) -> None:
    await make_user(app, "ann")
    await block_ip(app, "203.0.113.9")
    response = await log_in(client, "ann", scope_base={"client": ("203.0.113.9", 1)})
    assert response.status_code == 200
    assert (await events_of(app, "authn_login_fail"))[-1].details["reason"] == "ip_blocked"
    assert (await log_in(client, "ann")).status_code == 302  # from another address


async def test_fourth_login_through_the_form_ends_the_oldest(app: Any) -> None:
    await make_user(app, "ann")
    clients = [Client(app) for _ in range(4)]
    for client in clients:
        assert (await log_in(client, "ann")).status_code == 302
        clock.advance(timedelta(seconds=1))
    codes = [(await c.get("/account")).status_code for c in clients]
    assert codes == [302, 200, 200, 200]


async def test_login_is_rate_limited_per_address(app: Any, client: Client) -> None:
    for _ in range(10):
        assert (await log_in(client, "nobody", "guess")).status_code == 200
    response = await log_in(client, "nobody", "guess")
    assert response.status_code == 429
    assert len(response.headers.getlist("Retry-After")) == 1
    other = await log_in(client, "nobody", "guess", scope_base={"client": ("10.9.9.9", 1)})
    assert other.status_code == 200  # the limit is per client address


async def test_login_rehashes_when_the_parameters_change(
    settings_overrides: dict[str, Any],
) -> None:
    old_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(TEST_PASSWORD)
    assert "t=1," in old_hash
    stronger = create_app({**settings_overrides, "argon2_time_cost": 2})
    async with stronger.test_app():
        await make_user(stronger, "ann")
        async with stronger.extensions["electro"].sessions.begin() as db:
            await db.execute(update(User).values(password_hash=old_hash))
        assert (await log_in(Client(stronger), "ann")).status_code == 302
        user = await user_row(stronger, "ann")
        assert "t=2," in user.password_hash and user.last_login_at is not None
        assert (await log_in(Client(stronger), "ann")).status_code == 302  # the new hash works


async def test_header_shows_what_the_visitor_can_do(
    client: Client, admin_client: Client, user_client: Client
) -> None:
    anonymous = await (await client.get("/")).get_data(as_text=True)
    assert 'href="/login"' in anonymous and 'href="/register"' in anonymous
    assert 'action="/logout"' not in anonymous
    admin = await (await admin_client.get("/")).get_data(as_text=True)
    assert 'href="/account"' in admin and 'href="/admin"' in admin
    assert 'action="/logout"' in admin and 'href="/login"' not in admin
    user = await (await user_client.get("/")).get_data(as_text=True)
    assert 'href="/account"' in user and 'href="/admin"' not in user
