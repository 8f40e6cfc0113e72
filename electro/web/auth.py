"""Log in and log out (SPEC A3).

A refused log-in answers 200 with the form and one generic message: the request transaction
commits, so the failed-attempt counter, the lock, the owner's notice mail and the events stick
(an error status would roll them back). The password change on /account answers the same way.
"""

from __future__ import annotations

from datetime import timedelta

from quart import Blueprint, Response, redirect, request
from quart_rate_limiter import RateLimit, rate_limit

from electro.errors import InvalidInput
from electro.services import accounts, basket, two_factor
from electro.web import client_ip, db, render, runtime
from electro.web.guards import current_account, local_path, sign_in, sign_out

bp = Blueprint("auth", __name__)

# Tight per-IP limits on guessing (A10); the per-account lock covers distributed guessing.
LOGIN_LIMITS = [RateLimit(10, timedelta(minutes=1)), RateLimit(100, timedelta(hours=1))]


@bp.get("/login")
async def login_form() -> Response:
    return await render("login.html", "partials/login_form.html",
                        next=local_path(request.args.get("next"), ""), error=None)


@bp.post("/login")
@rate_limit(limits=LOGIN_LIMITS)
async def login() -> Response:
    form = await request.form
    target = local_path(form.get("next"), "")
    rt = runtime()
    previous = await current_account()
    try:
        outcome = await accounts.log_in(
            db(), rt.passwords, rt.settings, form.get("login", ""), form.get("password", ""),
            client_ip(), request.headers.get("User-Agent", ""),
            replaces=previous.session.id if previous else None,
        )
    except accounts.AuthFailed as failure:
        # The typed login is not echoed back: an unknown name and a wrong password must
        # produce byte-identical pages.
        return await render("login.html", "partials/login_form.html",
                            next=target, error=str(failure))
    if isinstance(outcome, accounts.SecondStep):
        return await _code_form(outcome.pending, target, error=None)
    return await _signed_in(outcome, target)


async def _signed_in(session_id: str, target: str) -> Response:
    """After either step: the visitor's anonymous basket joins the account's (quantities add),
    the cookie is written, and on to where they were going."""
    anonymous_basket = request.cookies.get(basket.COOKIE)
    if anonymous_basket:
        await basket.merge_on_log_in(db(), anonymous_basket, session_id)
    sign_in(session_id)
    response: Response = redirect(target or "/")  # type: ignore[assignment]
    if anonymous_basket:
        response.delete_cookie(basket.COOKIE)
    return response


async def _code_form(pending: str, target: str, error: str | None) -> Response:
    return await render("login_code.html", "partials/login_code_form.html",
                        pending=pending, next=target, error=error)


@bp.post("/login/code")
@rate_limit(limits=LOGIN_LIMITS)
async def login_code() -> Response:
    """The second step (two-factor). Refusals answer 200 so their counts commit."""
    form = await request.form
    target = local_path(form.get("next"), "")
    pending = form.get("pending", "")
    previous = await current_account()
    try:
        session_id = await two_factor.finish_log_in(
            db(), runtime().settings, pending, form.get("code", ""), client_ip(),
            request.headers.get("User-Agent", ""),
            replaces=previous.session.id if previous else None,
        )
    except two_factor.PendingExpired as expired:
        return await render("login.html", "partials/login_form.html",
                            next=target, error=str(expired))
    except InvalidInput as refused:
        return await _code_form(pending, target, error=refused.errors.get("code"))
    return await _signed_in(session_id, target)


@bp.post("/logout")
async def logout() -> Response:
    await sign_out()
    response: Response = redirect("/")  # type: ignore[assignment]
    # Whatever this browser kept of the signed-in pages goes too (A13).
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response
