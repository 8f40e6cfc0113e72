"""CSRF: neither Quart nor quart-auth has any. One token per browser session, checked on
every unsafe request (form field ``csrf_token`` or header ``X-CSRF-Token``, which htmx sends)."""

from __future__ import annotations

from markupsafe import Markup
from quart import request, session
from werkzeug.exceptions import Forbidden

from electro.security.csrf import new_token, tokens_match
from electro.web import ONE_CLICK_PREFIX, SAFE_METHODS, Explained, is_api_path

SESSION_KEY = "csrf"
# Stands for the asker's token in a render cached for everyone (electro.web.shared puts the
# token in). Markup, so it reaches the HTML as it is, and an HTML comment, which escaped user
# text can never contain.
CSRF_SLOT = Markup("<!--csrf-token-->")


def csrf_token() -> str:
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = new_token()
    return str(token)


def rotate_csrf_token() -> None:
    """A new token at log-in and log-out, so a token seen before cannot be replayed."""
    session[SESSION_KEY] = new_token()


class CsrfError(Explained, Forbidden):
    description = "The form expired or came from another site. Reload the page and try again."


async def check_csrf() -> None:
    # The API authenticates by Bearer token only and never reads a cookie (electro.web.guards
    # sees no account there), so a forged cross-site request carries no credential to abuse.
    if request.method in SAFE_METHODS or is_api_path(request.path):
        return
    # An unsubscribe link's signed token is its credential (electro.web.newsletter): a forged
    # request without the token does nothing, and one with it does what the link is for.
    if request.path.startswith(ONE_CLICK_PREFIX):
        return
    # Browsers label cross-site requests; refuse them before reading any body.
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise CsrfError()
    # Without a token in the session nothing can match: refused before reading any body. A
    # token in the header (htmx) is checked without reading the body either.
    expected = session.get(SESSION_KEY)
    if not expected:
        raise CsrfError()
    sent = request.headers.get("X-CSRF-Token")
    if sent is None:
        sent = (await request.form).get("csrf_token")  # a bounded body (electro.web.bodies)
    if not tokens_match(sent, expected):
        raise CsrfError()
