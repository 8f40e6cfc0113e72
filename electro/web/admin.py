"""Admin operations pages: dashboard (SPEC D4), events viewer and export (P1), backups (D3).
The live tables live in their own blueprint."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from quart import Blueprint, Response, request, send_file
from quart_rate_limiter import rate_limit
from werkzeug.datastructures import FileStorage

from electro.services import backups, dashboard, events
from electro.services.paging import page_number
from electro.web import db, own_connections, own_transaction, render, runtime
from electro.web.bodies import takes_upload
from electro.web.guards import acting, admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")

UNCONFIRMED = "Type RESTORE in the confirmation field to restore."


@bp.get("")
@admin_required
async def dashboard_page() -> Response:
    shown = await dashboard.overview(db(), runtime().settings)
    return await render("admin/dashboard.html", "partials/admin_dashboard.html",
                        counts=shown.counts, charts=shown.charts)


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
    result = await events.query(session, f, page_number(request.args.get("page", 1)))
    return await render("admin/events.html", "partials/admin_events_table.html",
                        f=f, args=request.args, result=result, error="", types=types)


@bp.get("/events/export")
@rate_limit(10, timedelta(minutes=1))
@admin_required
async def events_export() -> Response:
    """Streamed, not capped: the JSON array is written as the rows arrive."""
    try:
        f = events.parse_filter(request.args)
    except events.FilterError as exc:
        return Response(str(exc), 422, mimetype="text/plain")
    # Flat details (nested values are stored as text); prefixed: actor and ip name the admin.
    await (await acting()).record(
        db(), "admin_events_export",
        **{f"filter_{name}": value for name, value in f.as_query().items()})
    # Its own transaction: the request's is committed and closed before the body is sent.
    # Taken here, in the request, since the body runs after it has ended. Only reads: it
    # must not hold SQLite's write lock while the file streams.
    exporting = own_transaction(writes=False)

    async def body() -> AsyncIterator[bytes]:
        async with exporting as export_db:
            async for chunk in events.export_json(export_db, f):
                yield chunk.encode()

    return Response(body(), mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="events.json"'})


async def _backups_page(status: int = 200, message: str = "", error: str = "") -> Response:
    """The list with a result; a refusal is also an event."""
    if error:
        # Its own transaction: the request's is rolled back for the 422 that says so.
        async with own_transaction() as own:
            await (await acting()).record(own, "admin_backup_refused", error=error)
    listed = await backups.list_backups(db())
    return await render("admin/backups.html", "partials/admin_backups.html", status=status,
                        backups=listed, message=message, error=error,
                        upload_limit=runtime().settings.max_content_length)


async def _confirmed() -> bool:
    return str((await request.form).get("confirm", "")).strip() == "RESTORE"


async def _restore(path: Path, max_bytes: int | None = None) -> Response:
    """Restore ``path`` (verified by the service before anything is touched)."""
    actor = await acting()
    try:
        restored = await backups.restore_backup(
            await own_connections(), runtime().settings, path, actor=actor, max_bytes=max_bytes)
    except backups.BackupError as exc:
        return await _backups_page(422, error=f"Nothing was restored: {exc}")
    return await _backups_page(message=(
        f"Restored {restored.manifest.total_rows} rows from the backup of "
        f"{restored.manifest.created_at:%Y-%m-%d %H:%M} UTC; the database as it was just before "
        f"is kept as {restored.safety_backup.filename}."))


@bp.get("/backups")
@admin_required
async def backups_page() -> Response:
    return await _backups_page()


@bp.post("/backups/create")
@rate_limit(6, timedelta(minutes=1))
@admin_required
async def backups_create() -> Response:
    actor = await acting()
    try:
        backup = await backups.create_backup(await own_connections(), runtime().settings,
                                             actor=actor)
    except backups.BackupError as exc:
        return await _backups_page(422, error=f"No backup was made: {exc}")
    return await _backups_page(message=f"Backup {backup.filename} created.")


@bp.get("/backups/<int:backup_id>/download")
@rate_limit(20, timedelta(minutes=1))
@admin_required
async def backups_download(backup_id: int) -> Response:
    """The file is found through the backup's row (the service checks the name stays inside the
    backup folder), never from a path the client sent; sent in chunks by quart's file body."""
    backup = await backups.get_backup(db(), backup_id)  # an unknown id is a NotFound
    path = await backups.backup_file(runtime().settings, backup)  # and so is a missing file
    return await send_file(path, mimetype="application/zip", as_attachment=True,
                           attachment_filename=backup.filename)


@bp.post("/backups/<int:backup_id>/restore")
@rate_limit(5, timedelta(minutes=1))
@admin_required
async def backups_restore(backup_id: int) -> Response:
    if not await _confirmed():
        return await _backups_page(422, error=UNCONFIRMED)
    try:
        backup = await backups.get_backup(db(), backup_id)
        path = await backups.backup_file(runtime().settings, backup)
    except backups.BackupError as exc:
        return await _backups_page(422, error=f"Nothing was restored: {exc}")
    return await _restore(path)


@bp.post("/backups/upload")
@takes_upload
@rate_limit(5, timedelta(minutes=1))
@admin_required
async def backups_upload() -> Response:
    """The body limit is the app's MAX_CONTENT_LENGTH (larger bodies get 413 before this runs);
    the service checks the saved file's size again and verifies it fully before the restore."""
    if not await _confirmed():
        return await _backups_page(422, error=UNCONFIRMED)
    upload = (await request.files).get("file")
    if upload is None or not upload.filename:
        return await _backups_page(422, error="Choose a backup file to upload.")
    path = await asyncio.to_thread(_save_upload, upload)
    try:
        return await _restore(path, max_bytes=runtime().settings.max_content_length)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def _save_upload(upload: FileStorage) -> Path:
    """Copy the uploaded part to a private temporary file (runs in a worker thread)."""
    fd, name = tempfile.mkstemp(prefix="electro-upload-", suffix=".zip")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(upload.stream, out, 1 << 20)
    return Path(name)
