"""Helpers for the account tests: log-in, rows and events to check, mail and the keys in it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text

from electro import clock, tasks
from electro.models import Event, IpBlock, LoginFailure, OutboxMail, User, UserSession
from electro.tasks import run_jobs_once
from tests.support import TEST_PASSWORD, Client, Mailbox, body_of

GENERIC = "The log-in name or password is not right"


async def log_in(
    client: Client, login: str, password: str = TEST_PASSWORD, **kwargs: Any
) -> Any:
    """Post the real /login form over https (the session cookie is Secure, as in production);
    after a success the client picks up the rotated CSRF token."""
    form = {"login": login, "password": password, **kwargs.pop("form", {})}
    response = await client.post("/login", form, scheme="https", **kwargs)
    if response.status_code == 302:
        client.token = ""
    return response


async def events_of(app: Any, type_: str) -> list[Event]:
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


async def user_row(app: Any, username: str) -> User:
    async with app.extensions["electro"].sessions() as db:
        user = await db.scalar(select(User).where(User.username == username))
        assert user is not None
        return user


async def failure_row(app: Any, username: str, address: str) -> LoginFailure | None:
    """The count of wrong passwords for ``username`` from ``address`` (an IPv6 /64 as such)."""
    async with app.extensions["electro"].sessions() as db:
        return await db.scalar(select(LoginFailure).join(User).where(
            User.username == username, LoginFailure.ip == address))


async def session_rows(app: Any, user_id: int | None = None) -> list[UserSession]:
    """The sessions of one account, or of all when ``user_id`` is None, oldest first."""
    query = select(UserSession).order_by(UserSession.id)
    if user_id is not None:
        query = query.where(UserSession.user_id == user_id)
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(query))


async def count_rows(app: Any, model: Any) -> int:
    async with app.extensions["electro"].sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def queued_mail(app: Any, template: str) -> int:
    async with app.extensions["electro"].sessions() as db:
        return int(await db.scalar(
            select(func.count(OutboxMail.id)).where(OutboxMail.template == template)) or 0)


async def mail_queued_to(app: Any, address: str) -> int:
    """Mail written to the outbox for ``address``: a request queues in its own transaction, so
    unlike the SMTP mailbox (filled later by the sender) this cannot be checked too early. A
    request whose mail the sender composes (reset, activation) is composed first."""
    rt = app.extensions["electro"]
    await run_jobs_once(rt.sessions, rt.settings, [tasks.OUTBOX[0]])
    async with rt.sessions() as db:
        return int(await db.scalar(
            select(func.count(OutboxMail.id)).where(OutboxMail.to_addr == address)) or 0)


async def block_ip(app: Any, ip: str, hours: float = 1) -> int:
    """An IP block row, as the admin panel's ip_blocks table adds it."""
    async with app.extensions["electro"].sessions.begin() as db:
        block = IpBlock(ip=ip, until=clock.now() + timedelta(hours=hours), reason="abuse",
                        created_at=clock.now())
        db.add(block)
        await db.flush()
        return block.id


def mask_csrf(page: str) -> str:
    return re.sub(r'(name="csrf_token" value="|"X-CSRF-Token": ")[^"]+', r"\1MASKED", page)


# The one-time-key flows: keys read out of received mail.
NEW_PASSWORD = "plum tractor winter lantern"
KEY_LINE = re.compile(r"^Key: (\S+)", re.MULTILINE)


async def mailed_text(mailbox: Mailbox, address: str, count: int = 1) -> str:
    """The body of the ``count``-th mail to ``address``."""
    return body_of((await mailbox.wait_for(address, count))[count - 1])


async def mailed_key(mailbox: Mailbox, address: str, count: int = 1) -> str:
    match = KEY_LINE.search(await mailed_text(mailbox, address, count))
    assert match, "the mail carries a 'Key: ...' line"
    return match.group(1)


async def register(
    client: Client, username: str = "bob", email: str = "bob@example.com",
    password: str = NEW_PASSWORD, confirm: str | None = None,
) -> Any:
    return await client.post("/register", {
        "username": username, "email": email, "password": password,
        "password_confirm": password if confirm is None else confirm,
    })


async def text_of(response: Any) -> str:
    return str(await response.get_data(as_text=True))


async def all_cells(app: Any, *tables: str) -> list[str]:
    """Every value of every column of every row of ``tables``, as text."""
    cells: list[str] = []
    async with app.extensions["electro"].sessions() as db:
        for table in tables:
            for row in (await db.execute(text(f"SELECT * FROM {table}"))).all():  # noqa: S608
                cells += [str(value) for value in row]
    return cells
