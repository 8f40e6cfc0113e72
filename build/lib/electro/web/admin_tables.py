"""Admin tables (SPEC D1, D2): one set of routes for every table of the registry.

Each view parses, calls one service function and renders. htmx gets fragments (the table, a
row, the editor, a result); without JavaScript the same URLs answer with whole pages and
redirects (P5). An unknown table or row is ``errors.NotFound`` from the service, answered by
the one error handler; a view catches a refusal only to show it beside the form it concerns.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from electro import errors
from electro.services.admin import crud
from electro.services.admin.listing import Listing, list_rows, one_row, table_counts
from electro.services.admin.registry import Table
from electro.services.admin.tables import TABLES, get_table
from electro.web import db, is_htmx, own_connections, render, runtime
from electro.web.guards import acting, admin_required

bp = Blueprint("admin_tables", __name__, url_prefix="/admin/tables")
PAGE = "admin/table.html"
RESULT = "partials/admin_result.html"
CHANGED = {"HX-Trigger": "admin-changed"}  # the table listens for it and reloads itself


async def _listing(spec: Table, args: MultiDict[str, str]) -> Listing:
    return await list_rows(db(), spec, args.get("q", ""), args.get("sort"),
                           args.get("dir"), args.get("page"))


def _typed(spec: Table, form: dict[str, str]) -> dict[str, str]:
    """What the admin typed into the editable fields, shown again with the messages."""
    return {f.name: form.get(f.name, "") for f in spec.editable}


def _to_list(spec: Table) -> Response:
    return redirect(url_for("admin_tables.table_view", table=spec.name), 303)  # type: ignore[return-value]


async def _answer(
    spec: Table, fragment: str, status: int = 200, args: MultiDict[str, str] | None = None,
    **context: Any,
) -> Response:
    """htmx: the fragment; otherwise the whole table page (at the place in the list that
    ``args`` name) with whatever the request produced."""
    if is_htmx():
        return await render(PAGE, fragment, status, spec=spec, **context)
    listing = await _listing(spec, request.args if args is None else args)
    return await render(PAGE, PAGE, status, spec=spec, listing=listing, **context)


@bp.get("")
@admin_required
async def index() -> Response:
    counts = await table_counts(db())
    return await render("admin/tables.html", "admin/tables.html", tables=TABLES, counts=counts)


@bp.get("/<table>")
@admin_required
async def table_view(table: str) -> Response:
    spec = get_table(table)
    listing = await _listing(spec, request.args)
    return await render(PAGE, "partials/admin_table.html", spec=spec, listing=listing)


@bp.get("/<table>/<int:row_id>")
@admin_required
async def row(table: str, row_id: int) -> Response:
    spec = get_table(table)
    listing = await one_row(db(), spec, row_id)
    return await render(PAGE, "partials/admin_row.html", spec=spec, listing=listing,
                        row=listing.rows[0])


async def _editor(spec: Table, listing: Listing, status: int, **context: Any) -> Response:
    context = {"errors": {}, "problems": [], **context}
    return await render(PAGE, "partials/admin_row_edit.html", status, spec=spec, listing=listing,
                        row=listing.rows[0], editing=listing.rows[0]["id"], **context)


@bp.get("/<table>/<int:row_id>/edit")
@admin_required
async def edit_form(table: str, row_id: int) -> Response:
    editor = await crud.open_editor(db(), get_table(table), row_id)
    return await _editor(editor.listing.table, editor.listing, 200, values=editor.values,
                         version=editor.version)


@bp.post("/<table>/<int:row_id>/edit")
@admin_required
async def edit(table: str, row_id: int) -> Response:
    spec = get_table(table)
    form = (await request.form).to_dict()
    version = form.get("version", "")
    try:
        saved = await crud.update_row(db(), spec, row_id, form, version, actor=await acting())
    except (errors.InvalidInput, errors.Conflict) as exc:  # the editor again, with the messages
        listing = await one_row(db(), spec, row_id)
        return await _editor(spec, listing, exc.status, values=_typed(spec, form),
                             version=version, errors=exc.errors, problems=exc.problems)
    if not is_htmx():
        return _to_list(spec)
    return await render(PAGE, "partials/admin_row.html", spec=spec, row=saved)


@bp.post("/<table>/<int:row_id>/delete")
@admin_required
async def delete(table: str, row_id: int) -> Response:
    spec = get_table(table)
    try:
        result = await crud.delete_row(db(), runtime().settings, spec, row_id,
                                       actor=await acting())
    except (errors.InvalidInput, errors.Conflict) as exc:  # the row again, with the message
        row_now = (await one_row(db(), spec, row_id)).rows[0]
        return await _answer(spec, "partials/admin_row.html", 409, row=row_now,
                             row_message=exc.message, error=exc.message)
    if not is_htmx():
        return await _answer(spec, PAGE, result=result)
    return Response("", 200)  # htmx swaps the row out (it fades while .htmx-swapping)


@bp.post("/<table>/add")
@admin_required
async def add(table: str) -> Response:
    spec = get_table(table)
    form = (await request.form).to_dict()
    try:
        added = await crud.add_row(db(), spec, form, actor=await acting())
    except errors.InvalidInput as exc:  # the add form again, with the messages
        return await _answer(spec, "partials/admin_add.html", 422, add_values=_typed(spec, form),
                             add_errors=exc.errors, add_problems=exc.problems)
    if not is_htmx():
        return _to_list(spec)
    response = await _answer(spec, "partials/admin_add.html",
                             add_message=f"Added row {added['id']}.")
    response.headers.update(CHANGED)
    return response


@bp.post("/<table>/actions")
@admin_required
async def actions(table: str) -> Response:
    spec = get_table(table)
    form = await request.form
    try:
        result = await crud.run_action(
            db(), runtime().settings, spec, form.get("action", ""), form.getlist("ids"),
            form.to_dict(), actor=await acting(), confirmed=form.get("confirmed") == "1",
            own_connections=own_connections,
        )
    except errors.DomainError as exc:  # the actions form stays; the refusal is its result
        return await _answer(spec, RESULT, 422, form, error=exc.message)
    response = await _answer(spec, RESULT, 200, form, result=result)
    if not result.confirm:
        response.headers.update(CHANGED)
    return response
