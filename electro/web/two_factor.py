"""Two-factor on the account (SPEC B4): /account/two-factor shows where it stands; setting up
draws the QR code on the server (SVG, no script, CSP-clean) beside the secret as text; the first
right ``code`` turns it on and shows the ten recovery codes once; turning it off takes the
password and a code. The log-in's second step is electro.web.auth's.

Refusals that counted a guess (a wrong password or code when turning it off) answer 200 with
the page and its messages, like the password change, so the count commits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import segno
from markupsafe import Markup
from quart import Blueprint, Response, flash, redirect, request
from quart_rate_limiter import rate_limit

from electro.errors import InvalidInput
from electro.services import two_factor
from electro.services.sessions import SignedIn
from electro.web import db, render, runtime
from electro.web.guards import acting, local_path, login_required, signed_in

bp = Blueprint("two_factor", __name__)
PAGE = "/account/two-factor"
# Guessing a six-digit code is what these forms could be used for: a tight limit per client.
CODE_LIMIT = rate_limit(10, timedelta(minutes=1))


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code. Markup: segno writes only paths of our own
    making, and the label is ours too (no user text reaches it unescaped)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, light="#fff",
                                                  svgclass="qr-code")
    return Markup(svg.replace(  # noqa: S704 - see the docstring
        "<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1))


async def _page(account: SignedIn, status: int = 200, **extra: Any) -> Response:
    state = await two_factor.status(db(), runtime().settings, account.user)
    context: dict[str, Any] = {
        "state": state, "errors": {}, "recovery_codes": None,
        "qr": qr_svg(state.uri) if state.uri else None,
        "next": local_path(request.args.get("next"), ""), **extra}
    return await render("two_factor.html", "partials/two_factor.html", status, **context)


@bp.get(PAGE)
@login_required
async def page() -> Response:
    return await _page(await signed_in())


@bp.post(PAGE + "/setup")
@CODE_LIMIT
@login_required
async def setup() -> Response:
    account = await signed_in()
    await two_factor.start_enrolment(db(), runtime().settings, account.user, await acting())
    return redirect(PAGE + _next_query())  # type: ignore[return-value]


@bp.post(PAGE)
@CODE_LIMIT
@login_required
async def confirm() -> Response:
    account = await signed_in()
    form = await request.form
    try:
        codes = await two_factor.confirm_enrolment(db(), runtime().settings, account.user,
                                                   form.get("code", ""), await acting())
    except InvalidInput as refused:
        return await _page(account, 422, errors=refused.errors)
    return await _page(account, recovery_codes=codes)


@bp.post(PAGE + "/disable")
@CODE_LIMIT
@login_required
async def disable() -> Response:
    account = await signed_in()
    form = await request.form
    rt = runtime()
    try:
        await two_factor.disable(db(), rt.passwords, rt.settings, account.user,
                                 form.get("current_password", ""), form.get("code", ""),
                                 await acting())
    except InvalidInput as refused:
        return await _page(account, errors=refused.errors)
    await flash("Two-factor sign-in is off. A log-in now asks for your password only.")
    return redirect(PAGE)  # type: ignore[return-value]


def _next_query() -> str:
    target = local_path(request.args.get("next"), "")
    return "?" + urlencode({"next": target}) if target else ""
