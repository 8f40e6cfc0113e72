"""The signed-in account's page: profile, live sessions, API tokens, password change (SPEC A4,
A7, B3).

Session and token buttons post with htmx and get their section's fragment back; without
JavaScript the same forms post and redirect. A created token is answered with the page (or
fragment) that shows it once, never through a redirect: a flashed message would carry it in
the session cookie. A refused password change answers 200 with the page and its messages,
like a refused log-in, so a wrong current password's count commits (see electro.web.auth).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Blueprint, Response, flash, redirect, request
from quart_rate_limiter import rate_limit

from electro import clock
from electro.errors import InvalidInput
from electro.services import accounts, api_tokens, newsletters, recommendations, sessions
from electro.services.sessions import SignedIn
from electro.web import client_ip, db, is_htmx, origin, render, runtime
from electro.web.guards import login_required, signed_in

bp = Blueprint("account", __name__)
PICKS_SHOWN = 6  # "Recommended for you"


async def _page(
    account: SignedIn, fragment: str = "partials/account_sessions.html", **extra: Any
) -> Response:
    live = await sessions.live_sessions(db(), runtime().settings, account.user)
    tokens = await api_tokens.owned(db(), account.user)
    # Only the whole page shows them: the page's own forms answer with their section alone.
    picks = [] if is_htmx() else await recommendations.for_shopper(
        db(), account.user.id, PICKS_SHOWN, secret_key=runtime().settings.secret_key)
    context = {"user": account.user, "sessions": live, "current_id": account.session.id,
               "errors": {}, "tokens": tokens, "now": clock.now(), "token_errors": {},
               "token_form": {}, "picks": picks, **extra}
    return await render("account.html", fragment, **context)


async def _done(account: SignedIn, section: str, notice: str, message: str) -> Response:
    """A change made on /account: htmx gets the section with ``message`` in its ``notice``
    slot, a plain form the page again with the message flashed."""
    if is_htmx():
        return await _page(account, section, **{notice: message})
    await flash(message)
    return redirect("/account")  # type: ignore[return-value]


@bp.get("/account")
@login_required
async def page() -> Response:
    return await _page(await signed_in())


@bp.post("/account/sessions/<int:session_id>/end")
@login_required
async def end_session(session_id: int) -> Response:
    account = await signed_in()
    await accounts.end_own_session(db(), account.user, session_id, client_ip())
    return await _after_session_change(account, "The session was ended.")


@bp.post("/account/sessions/end-others")
@login_required
async def end_other_sessions() -> Response:
    account = await signed_in()
    ended = await accounts.end_other_sessions(db(), account.user, account.session, client_ip())
    return await _after_session_change(account, f"Signed out of {ended} other session(s).")


async def _after_session_change(account: SignedIn, message: str) -> Response:
    if is_htmx():
        return await _page(account, notice=message)
    await flash(message)
    return redirect("/account")  # type: ignore[return-value]


TOKENS = "partials/account_tokens.html"
NEWSLETTER = "partials/account_newsletter.html"


@bp.post("/account/tokens")
@rate_limit(10, timedelta(minutes=1))
@login_required
async def create_token() -> Response:
    account = await signed_in()
    form = await request.form
    try:
        created = await api_tokens.create(
            db(), runtime().settings, account.user, form.get("name", ""),
            form.get("expires_days", ""), origin())
    except InvalidInput as refused:
        response = await _page(account, TOKENS, token_errors=refused.errors, token_form=form)
        response.status_code = 422  # nothing was made; htmx swaps the form with its messages
        return response
    return await _page(account, TOKENS, created=created)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
async def revoke_token(token_id: int) -> Response:
    account = await signed_in()
    await api_tokens.revoke(db(), account.user, token_id, origin())
    return await _done(account, TOKENS, "revoked_notice", "The token was revoked.")


@bp.post("/account/newsletter")
@rate_limit(10, timedelta(minutes=1))
@login_required
async def newsletter_consent() -> Response:
    """The newsletter checkbox: ticked subscribes, unticked unsubscribes (an event either way)."""
    account = await signed_in()
    wanted = newsletters.consents((await request.form).get("newsletter"))
    await newsletters.set_consent(db(), account.user, wanted, origin())
    message = ("You get the newsletter." if wanted else "You do not get the newsletter.")
    return await _done(account, NEWSLETTER, "newsletter_notice", message)


@bp.post("/account/password")
@rate_limit(10, timedelta(minutes=1))
@login_required
async def change_password() -> Response:
    account = await signed_in()
    form = await request.form
    rt = runtime()
    try:
        ended = await accounts.change_password(
            db(), rt.passwords, rt.settings, account.user, account.session,
            form.get("current_password", ""), form.get("password", ""),
            form.get("password_confirm", ""), client_ip(),
        )
    except InvalidInput as refused:
        return await _page(account, errors=refused.errors)
    await flash(f"Your password was changed; {ended} other session(s) were signed out.")
    return redirect("/account")  # type: ignore[return-value]
