"""Admin newsletters (SPEC B2): write one, preview it as a chosen shopper gets it, mail a test
to yourself, send it to every subscriber and watch the progress (htmx polling that stops when
nothing is left pending)."""

from __future__ import annotations

from datetime import timedelta

from quart import Blueprint, Response, flash, redirect, request
from quart_rate_limiter import rate_limit

from electro.errors import InvalidInput
from electro.models import Newsletter
from electro.services import newsletters
from electro.services.newsletters import Rendered
from electro.web import db, render, runtime
from electro.web.guards import acting, admin_required, signed_in

bp = Blueprint("admin_newsletters", __name__, url_prefix="/admin/newsletters")

PROGRESS = "partials/newsletter_progress.html"


async def _list_page(status: int = 200, form: dict[str, str] | None = None,
                     errors: dict[str, str] | None = None) -> Response:
    listed = await newsletters.recent(db())
    return await render("admin/newsletters.html", "partials/newsletter_form.html",
                        status=status, listed=listed, form=form or {"picks": "4"},
                        errors=errors or {}, max_picks=newsletters.MAX_PICKS)


@bp.get("")
@admin_required
async def list_page() -> Response:
    return await _list_page()


@bp.post("")
@rate_limit(20, timedelta(minutes=1))
@admin_required
async def write() -> Response:
    form = await request.form
    values = {name: form.get(name, "") for name in ("subject", "body", "picks")}
    try:
        newsletter = await newsletters.write(db(), values["subject"], values["body"],
                                             values["picks"], await acting())
    except InvalidInput as refused:
        return await _list_page(422, values, refused.errors)
    return redirect(f"/admin/newsletters/{newsletter.id}")  # type: ignore[return-value]


async def _detail(newsletter: Newsletter, status: int = 200, shopper: str = "",
                  preview: Rendered | None = None, errors: dict[str, str] | None = None
                  ) -> Response:
    shown = await newsletters.progress(db(), newsletter.id)
    return await render("admin/newsletter.html", PROGRESS, status=status, newsletter=newsletter,
                        progress=shown, shopper=shopper, preview=preview, errors=errors or {})


@bp.get("/<int:newsletter_id>")
@admin_required
async def detail(newsletter_id: int) -> Response:
    """With ``?shopper=`` (a username or e-mail), the newsletter as that shopper gets it."""
    session = db()
    newsletter = await newsletters.get(session, newsletter_id)
    shopper = request.args.get("shopper", "")
    if not shopper:
        return await _detail(newsletter)
    try:
        user = await newsletters.find_shopper(session, shopper)
    except InvalidInput as refused:
        return await _detail(newsletter, 422, shopper, errors=refused.errors)
    preview = await newsletters.render_for(session, runtime().settings, newsletter, user)
    return await _detail(newsletter, shopper=shopper, preview=preview)


@bp.get("/<int:newsletter_id>/progress")
@admin_required
async def progress(newsletter_id: int) -> Response:
    """The progress fragment that the detail page polls (without htmx: the page)."""
    return await _detail(await newsletters.get(db(), newsletter_id))


@bp.post("/<int:newsletter_id>/test")
@rate_limit(6, timedelta(minutes=1))
@admin_required
async def send_test(newsletter_id: int) -> Response:
    session = db()
    newsletter = await newsletters.get(session, newsletter_id)
    admin = (await signed_in()).user
    await newsletters.send_test(session, runtime().settings, newsletter, admin, await acting())
    await flash(f"A test was sent to {admin.email}.")
    return redirect(f"/admin/newsletters/{newsletter_id}")  # type: ignore[return-value]


@bp.post("/<int:newsletter_id>/send")
@rate_limit(6, timedelta(minutes=1))
@admin_required
async def send(newsletter_id: int) -> Response:
    recipients = await newsletters.start_sending(db(), newsletter_id, await acting())
    await flash(f"Sending to {recipients} subscriber(s) has started.")
    return redirect(f"/admin/newsletters/{newsletter_id}")  # type: ignore[return-value]
