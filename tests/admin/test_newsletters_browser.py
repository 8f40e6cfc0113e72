"""The admin sends a newsletter in a real Chromium and watches its progress advance without a
reload, until the polling stops; no console or CSP errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.models import NewsletterDelivery, User
from electro.services import newsletters
from electro.services.events import Actor
from tests.support import Mailbox
from tests.support.admin import insert_rows
from tests.support.browser import session_cookie

pytestmark = pytest.mark.browser


@pytest.fixture
def two_a_minute(live_server_env: dict[str, str]) -> None:
    """The server sends two mails a minute: the rest waits, so the page shows it pending."""
    live_server_env["ELECTRO_NEWSLETTER_PER_MINUTE"] = "2"


async def test_send_progress_advances_without_a_reload(
    two_a_minute: None, live_server: Any, page: Any, browser_errors: list[str],
    database_url: str, mailbox: Mailbox,
) -> None:
    settings = load_settings(environ=live_server.env)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as db:
            admin = User(username="admin", email="admin@example.com", password_hash="x",
                         is_admin=True)
            db.add(admin)
            await db.flush()
            cookie = await session_cookie(live_server, db, admin)
            await insert_rows(db, User, [
                {"username": f"sub{n}", "email": f"sub{n}@example.com", "password_hash": "x",
                 "newsletter": True} for n in range(5)])
            newsletter = await newsletters.write(db, "Winter", "Warm deals.", "0", Actor())
        await page.context.add_cookies([cookie])
        await page.goto(f"{live_server.url}/admin/newsletters/{newsletter.id}")
        await page.wait_for_function("typeof htmx === 'object'")
        await page.evaluate("window.sameDocument = true")
        await page.click("text=Send to every subscriber")  # a form post: a new page
        progress = page.locator("#newsletter-progress")
        await progress.get_by_text("2 sent").wait_for()  # the server's share of this minute
        assert "3 pending" in await progress.inner_text()
        assert await progress.get_attribute("hx-trigger") == "every 2s"
        await page.evaluate("window.sameDocument = true")
        # A minute later (the claims moved back) another node, this test, sends two more and
        # then the last; the page learns each by polling.
        for sent in (4, 5):
            async with sessions.begin() as db:
                await db.execute(update(NewsletterDelivery).values(
                    claimed_at=NewsletterDelivery.claimed_at - timedelta(minutes=1)))
            await newsletters.send_due(sessions, settings)
            await progress.get_by_text(f"{sent} sent").wait_for(timeout=10_000)
        assert "Finished" in await progress.inner_text()
        assert await page.evaluate("window.sameDocument") is True  # swapped, not reloaded
        assert await progress.get_attribute("hx-trigger") is None  # the polling stopped
        assert await page.locator("[aria-live=polite] #newsletter-progress").count() == 1
        assert sorted(m["To"] for m in mailbox.messages) == [
            f"sub{n}@example.com" for n in range(5)]
    finally:
        await engine.dispose()
    assert browser_errors == []
