"""Helpers for the one-time-key flows: read keys out of received mail, mask CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from tests.conftest import Client, Mailbox, body_of

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
