"""Log in and log out (SPEC A3).

A refused log-in answers 200 with the form and one generic message: the request transaction
commits, so the failed-attempt counter, the lock, the owner's notice mail and the events stick
(an error status would roll them back). The password change on /account answers the same way.
"""

from __future__ import annotations

from datetime import timedelta

from quart import Blueprint, Response, redirect, request
from quart_rate_limiter import RateLimit, rate_limit

from electro.services import accounts, basket
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
        session_id = await accounts.log_in(
            db(), rt.passwords, rt.settings, form.get("login", ""), form.get("password", ""),
            client_ip(), request.headers.get("User-Agent", ""),
            replaces=previous.session.id if previous else None,
        )
    except accounts.AuthFailed as failure:
        # The typed login is not echoed back: an unknown name and a wrong password must
        # produce byte-identical pages.
        return await render("login.html", "partials/login_form.html",
                            next=target, error=str(failure))
    anonymous_basket = request.cookies.get(basket.COOKIE)
    if anonymous_basket:  # the visitor's basket joins the account's (quantities add)
        await basket.merge_on_log_in(db(), anonymous_basket, session_id)
    sign_in(session_id)
    response: Response = redirect(target or "/")  # type: ignore[assignment]
    if anonymous_basket:
        response.delete_cookie(basket.COOKIE)
    return response


@bp.post("/logout")
async def logout() -> Response:
    await sign_out()
    response: Response = redirect("/")  # type: ignore[assignment]
    # Whatever this browser kept of the signed-in pages goes too (A13).
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response
