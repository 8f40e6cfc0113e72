"""Making, listing and restoring backups: the files in ``settings.backup_folder``, their rows in the
``backups`` table, their events, and the safety backup every restore takes first.

Both work on connections of their own (``engine``), never on a request's session: a web route
ends its request's transaction first (``web.end_request_transaction``), because its locks would
block the restore's.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from electro import clock, errors, models
from electro.config import Settings
from electro.migrate import current_revision, head_revision
from electro.services.backups import dump, fileformat, load
from electro.services.backups.databases import Database, database_for
from electro.services.backups.fileformat import BackupError, Manifest
from electro.services.backups.progress import Progress, summed
from electro.services.events import NOBODY, Actor

_T = TypeVar("_T")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class BackupNotFound(BackupError, errors.NotFound):
    """No backup has that id: a 404, and still a ``BackupError`` for the callers that catch
    every refusal of a backup alike."""


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    safety_backup: models.Backup  # what the database held just before the restore


# ---------------------------------------------------------------- listing and files


async def list_backups(db: AsyncSession) -> list[models.Backup]:
    """Newest first."""
    rows = await db.scalars(
        select(models.Backup).order_by(models.Backup.created_at.desc(), models.Backup.id.desc())
    )
    return list(rows)


async def get_backup(db: AsyncSession, backup_id: int) -> models.Backup:
    backup = await db.get(models.Backup, backup_id)
    if backup is None:
        raise BackupNotFound(f"there is no backup #{backup_id}")
    return backup


def backup_path(settings: Settings, backup: models.Backup) -> Path:
    """The file of ``backup`` inside the backup folder; a name that could leave it is refused."""
    name = backup.filename
    folder = settings.backup_folder.resolve()
    path = (folder / name).resolve()
    if not _SAFE_NAME.fullmatch(name) or path.parent != folder:
        raise BackupError(f"backup file name {name!r} is not a plain file name")
    return path


async def backup_file(settings: Settings, backup: models.Backup) -> Path:
    """``backup_path``, refused with a clear message when the file is not reachable from this
    node: the rows are shared (the database), the files only where the folder is shared."""
    path = backup_path(settings, backup)
    if not await asyncio.to_thread(path.is_file):
        raise BackupNotFound(
            f"backup #{backup.id} is listed, but its file {backup.filename} is not in this "
            f"node's backup folder ({settings.backup_folder}); when several nodes serve the "
            "shop, ELECTRO_BACKUP_DIR must be storage they all reach")
    return path


async def verify_backup(path: Path, max_bytes: int | None = None) -> Manifest:
    """Check a backup file completely before anything is touched (see ``fileformat.verify``):
    it must hold this schema's tables and columns at the revision this version of E-lectro
    migrates to."""

    def verify() -> Manifest:
        layout = [(t.name, [c.name for c in t.columns]) for t in dump.snapshot_tables()]
        return fileformat.verify(path, layout=layout, schema_revision=head_revision(),
                                 max_bytes=max_bytes)

    return await asyncio.to_thread(verify)


# ---------------------------------------------------------------- making a backup


async def create_backup(
    engine: AsyncEngine,
    settings: Settings,
    *,
    actor: Actor = NOBODY,
    progress: Progress | None = None,
) -> models.Backup:
    """Write a snapshot of every table to ``settings.backup_folder`` and record it (row + event)."""
    made = await _write_file(engine, database_for(engine.dialect), settings, "backup", progress)
    async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
        return await _record(db, made, actor)


@dataclass(frozen=True)
class _File:
    """A finished backup file, not yet recorded."""

    filename: str
    label: str  # "backup", or "safety" for the one a restore takes
    manifest: Manifest
    size: int
    sha256: str


async def _write_file(
    engine: AsyncEngine,
    database: Database,
    settings: Settings,
    label: str,
    progress: Progress | None,
) -> _File:
    folder = settings.backup_folder
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    filename = f"electro-{label}-{clock.now():%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}.zip"
    final = folder / filename
    partial = folder / (filename + ".partial")  # renamed once complete: never half a file listed
    try:
        manifest = await dump.write_snapshot(engine, database, partial, label, progress)
        size, digest = await asyncio.to_thread(fileformat.seal, partial, final)
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    return _File(filename, label, manifest, size, digest)


async def _record(db: AsyncSession, made: _File, actor: Actor) -> models.Backup:
    backup = models.Backup(
        filename=made.filename,
        created_at=made.manifest.created_at,
        size_bytes=made.size,
        sha256=made.sha256,
        row_counts=made.manifest.row_counts,
        schema_revision=made.manifest.schema_revision,
        created_by_id=actor.id,
    )
    db.add(backup)
    await actor.record(db, "backup_created", filename=made.filename, kind=made.label,
                       rows=made.manifest.total_rows, size_bytes=made.size)
    await db.flush()
    return backup


# ---------------------------------------------------------------- restoring


async def restore_backup(
    engine: AsyncEngine,
    settings: Settings,
    path: Path,
    *,
    actor: Actor = NOBODY,
    progress: Progress | None = None,
    max_bytes: int | None = None,
) -> Restored:
    """Verify ``path`` (see ``verify_backup``), take a safety backup, then replace every table
    in one transaction (see ``load``).

    The safety backup is a snapshot of the data the restore replaces, and the restore commits
    only once that file is complete. Whether it is written before the load or while the indexes
    are rebuilt after it depends on the database (``Database.safety_backup_first``).

    On any failure the transaction rolls back, the database is as it was, a
    ``backup_restore_failed`` event is recorded and ``BackupError`` is raised."""
    manifest = await verify_backup(path, max_bytes)
    revision = await current_revision(engine)
    if revision != manifest.schema_revision:
        raise BackupError(
            f"the database is at schema revision {revision}, the backup at "
            f"{manifest.schema_revision}: run `electro init-db` first"
        )
    database = database_for(engine.dialect)
    report = summed(progress)
    safety: asyncio.Future[_File] | None = None

    def safety_backup() -> asyncio.Future[_File]:
        """Started on the first call (before or after the load, see above)."""
        nonlocal safety
        if safety is None:
            safety = asyncio.ensure_future(
                _write_file(engine, database, settings, "safety", report)
            )
        return safety

    try:
        async with database.restoring(engine) as conn:
            if database.safety_backup_first:
                await safety_backup()
            rows = await load.replace_all(conn, database, dump.snapshot_tables(), path,
                                          manifest, report, rows_loaded=safety_backup)
            made = await safety_backup()
            async with AsyncSession(bind=conn, expire_on_commit=False) as db:  # this transaction
                backup = await _record(db, made, actor)
                await actor.record(db, "backup_restored", filename=path.name, rows=rows,
                                   safety_backup=made.filename)
                await db.flush()
    except Exception as exc:
        # The first line only: a driver error goes on with the SQL and its parameters (hashes).
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        made_anyway = await _outcome(safety)
        async with AsyncSession(engine) as db, db.begin():
            if made_anyway is not None:  # a good snapshot of the unchanged data: keep it listed
                await _record(db, made_anyway, actor)
            await actor.record(db, "backup_restore_failed", filename=path.name, error=reason)
        kept = f"; safety backup {made_anyway.filename}" if made_anyway else ""
        raise BackupError(f"the restore failed and nothing was changed ({reason}){kept}") from exc
    except BaseException:  # cancelled: no half-written safety file is left behind
        if safety is not None:
            safety.cancel()
            await _outcome(safety)
        raise
    return Restored(manifest, backup)


async def _outcome(task: asyncio.Future[_T] | None) -> _T | None:
    """The result of ``task`` once it has ended, or None if it failed (or never started)."""
    if task is None:
        return None
    await asyncio.gather(task, return_exceptions=True)
    return None if task.cancelled() or task.exception() else task.result()
