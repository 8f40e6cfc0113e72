"""The signed-in account's page: profile, live sessions, password change (SPEC A4, A7).

Session buttons post with htmx and get the list fragment back; without JavaScript the same
forms post and redirect. A refused password change answers 200 with the page and its messages,
like a refused log-in, so a wrong current password's count commits (see electro.web.auth).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from quart import Blueprint, Response, flash, redirect, request
from quart_rate_limiter import rate_limit

from electro.errors import InvalidInput
from electro.services import accounts, sessions
from electro.services.sessions import SignedIn
from electro.web import client_ip, db, is_htmx, render, runtime
from electro.web.guards import login_required, signed_in

bp = Blueprint("account", __name__)


async def _page(account: SignedIn, **extra: Any) -> Response:
    live = await sessions.live_sessions(db(), runtime().settings, account.user)
    context = {"user": account.user, "sessions": live, "current_id": account.session.id,
               "errors": {}, **extra}
    return await render("account.html", "partials/account_sessions.html", **context)


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
