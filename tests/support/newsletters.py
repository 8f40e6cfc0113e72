"""Newsletter helpers: subscribers straight in the database, a newsletter written as an admin
would, and the unsubscribe link a mail carries."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from electro.services import newsletters
from electro.services.events import Actor
from tests.support.admin import seed_users

BASE_URL = "https://shop.example"  # as in production: mailed links are https (https_links)


async def subscribers(app: Any, count: int, prefix: str = "sub", **values: Any) -> list[int]:
    """``count`` active accounts that consented to the newsletter (one INSERT)."""
    return await seed_users(app, count, prefix=prefix, newsletter=True, **values)


async def write_newsletter(app: Any, subject: str = "December news", picks: int = 2,
                           body: str = "Our winter picks.\n\nHappy holidays!") -> int:
    async with app.extensions["electro"].sessions.begin() as db:
        return (await newsletters.write(db, subject, body, str(picks), Actor())).id


async def start(app: Any, newsletter_id: int) -> int:
    async with app.extensions["electro"].sessions.begin() as db:
        return await newsletters.start_sending(db, newsletter_id, Actor())


async def send_due(app: Any) -> int:
    rt = app.extensions["electro"]
    return await newsletters.send_due(rt.sessions, rt.settings)


def unsubscribe_link(message: Message) -> str:
    """The https link inside the mail's List-Unsubscribe header (unfolded, as a mail client
    reads it: a long one is folded before its value)."""
    match = re.fullmatch(r"<(https://[^>\s]+)>", " ".join(str(message["List-Unsubscribe"]).split()))
    assert match, message["List-Unsubscribe"]
    return match[1]


def parts(message: Message) -> dict[str, str]:
    """content type -> decoded text of each part of a multipart/alternative mail."""
    found = {}
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found
