"""Unsubscribing from the newsletter by the link in every newsletter (SPEC B2, RFC 8058).

The link's signed token is the credential, so the POST needs no log-in and no CSRF token
(electro.web.csrf exempts ONE_CLICK_PREFIX alone): a mail client's one-click POST carries neither. A
GET only shows a confirm button, since mail scanners follow links. A wrong or expired link is
the service's UnsubscribeLinkRefused, answered by the one error handler with its message."""

from __future__ import annotations

from quart import Blueprint, Response

from electro.services import newsletters
from electro.web import db, origin, render, runtime

bp = Blueprint("newsletter", __name__)


@bp.get("/newsletter/unsubscribe/<token>")
async def unsubscribe_page(token: str) -> Response:
    user = await newsletters.link_owner(db(), runtime().settings, token)
    return await render("unsubscribe.html", "partials/unsubscribe.html", token=token,
                        email=user.email, done=False)


@bp.post("/newsletter/unsubscribe/<token>")
async def unsubscribe(token: str) -> Response:
    user = await newsletters.unsubscribe(db(), runtime().settings, token, origin())
    return await render("unsubscribe.html", "partials/unsubscribe.html", token=token,
                        email=user.email, done=True)
