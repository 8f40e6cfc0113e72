"""Admin operations pages: dashboard (SPEC D4), events viewer and export (P1), backups (D3).
The live tables live in their own blueprint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from quart import Blueprint, Response, request
from quart_rate_limiter import rate_limit

from electro.security.auth import admin_required, current_account
from electro.services import charts, dashboard, events
from electro.web import client_ip, db, render, runtime

bp = Blueprint("admin", __name__, url_prefix="/admin")

PER_PAGE = 50


async def _record(type_: str, **details: object) -> None:
    """An admin action event in the request's transaction (commits with the response)."""
    account = await current_account()
    assert account is not None  # noqa: S101 - admin_required ran first
    await events.record(db(), type_, actor_id=account.user.id, actor=account.user.username,
                        ip=client_ip(), path=request.path, **details)


@bp.get("")
@admin_required
async def dashboard_page() -> Response:
    session = db()
    counts = await dashboard.counts(session, runtime().settings)
    series = await dashboard.daily_series(session, days=30)
    chart_list = [(s.title, charts.bar_chart(s.title, s.points), sum(v for _, v in s.points))
                  for s in series]
    return await render("admin/dashboard.html", "partials/admin_dashboard.html",
                        counts=counts, charts=chart_list)


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 9 else 1


@bp.get("/events")
@admin_required
async def events_page() -> Response:
    session = db()
    types = await events.event_types(session)
    try:
        f = events.parse_filter(request.args)
    except events.FilterError as exc:
        return await render("admin/events.html", "partials/admin_events_table.html", status=422,
                            f=events.EventFilter(), args=request.args, result=None,
                            error=str(exc), types=types)
    result = await events.query(session, f, _page_number(), PER_PAGE)
    return await render("admin/events.html", "partials/admin_events_table.html",
                        f=f, args=request.args, result=result, error="", types=types)


@bp.get("/events/export")
@rate_limit(10, timedelta(minutes=1))
@admin_required
async def events_export() -> Response:
    """Streamed, not capped: the JSON array is written as the rows arrive, from its own session
    (the request's is committed and closed before the body is sent)."""
    try:
        f = events.parse_filter(request.args)
    except events.FilterError as exc:
        return Response(str(exc), 422, mimetype="text/plain")
    # Flat details (nested values are stored as text); prefixed: actor and ip name the admin.
    await _record("admin_events_export",
                  **{f"filter_{name}": value for name, value in f.as_query().items()})
    sessions = runtime().sessions
    assert sessions is not None  # noqa: S101 - serving

    async def body() -> AsyncIterator[bytes]:
        async with sessions() as export_db:
            async for chunk in events.export_json(export_db, f):
                yield chunk.encode()

    return Response(body(), mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="events.json"'})
