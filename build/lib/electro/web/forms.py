"""What the key and e-mail form pages of registration, activation, reset and e-mail change
share. Form errors answer 200 in these areas, so the request's transaction commits what a
refusal must keep (wrong-try counters, events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from quart import Response, request
from quart_rate_limiter import RateLimit, rate_limit

from electro.web import render, runtime

# Tight limits per client address on everything that takes a form or a key (A10).
SUBMIT = rate_limit(limits=[RateLimit(10, timedelta(minutes=1)),
                            RateLimit(50, timedelta(hours=1))])


def minutes() -> str:
    """How long a mailed key works, for the pages that mention it."""
    return f"{runtime().settings.key_ttl_minutes} minutes"


def key_refused() -> str:
    return (f"This key does not work: it may be mistyped, already used or expired (keys last "
            f"{minutes()}). Check the latest mail, or start again.")


@dataclass(frozen=True)
class FormPage:
    """The words of a one-field form page: a key to type, or an address to send a key to."""

    title: str
    intro: str
    action: str
    button: str


async def form_values(*names: str) -> dict[str, str]:
    data = await request.form
    return {name: data.get(name, "") for name in names}


async def key_page(page: FormPage, key: str = "", message: str | None = None) -> Response:
    return await render("key_confirm.html", "partials/key_form.html", title=page.title,
                        intro=page.intro, action=page.action, button=page.button, key=key,
                        message=message)


async def address_page(page: FormPage, email: str = "", message: str | None = None) -> Response:
    return await render("email_request.html", "partials/email_form.html", title=page.title,
                        intro=page.intro, action=page.action, button=page.button, email=email,
                        message=message)


async def notice(title: str, message: str, link: str = "", link_text: str = "") -> Response:
    return await render("notice.html", "partials/notice.html", title=title, message=message,
                        link=link, link_text=link_text)
