"""Backups (SPEC D3): a portable snapshot of every table, and a restore that is all or nothing.

File format, version 1: a zip archive whose members are stored as they are (not re-compressed):

- ``<table>.jsonl.gz`` for every table in ``Base.metadata``: gzip-compressed JSON lines, one JSON
  array per row, values in the manifest's column order. Datetimes and dates are ISO 8601 text,
  JSON columns are JSON, everything else is a JSON number, string, boolean or null, so a backup
  of the embedded SQLite database restores into PostgreSQL (and back). Datetimes are written
  ``2026-11-25 14:05:54.000123`` (SQLite's own text, as stored, which has this form).
- ``manifest.json``, written last: format name and version, the schema (alembic) revision, the
  time, and per table its columns, row count and the SHA-256 of its member.

Zip rather than tar because a zip member can be streamed without knowing its size first, so
rows go from the database cursor through zlib to the file without a temporary copy.

A backup reads every table in one read transaction (PostgreSQL: REPEATABLE READ, READ ONLY;
SQLite: one transaction on one connection, whose WAL snapshot starts at its first read), so it is
consistent while the shop keeps writing. The database encodes every row as its JSON line; memory
stays flat: lines are streamed in batches and compression and file work run in a worker thread.

A restore verifies the file, takes a safety backup, then empties and refills every table inside
one transaction, with indexes and foreign keys set aside during the load and rebuilt and checked
once at its end (``bulk.loading``). The ``backups`` table is the exception: it describes the
files on disk, which a restore does not touch, so the current rows are kept (the snapshot's rows
stay in the file only).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import zipfile
import zlib
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Table,
    Text,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from electro import clock, models
from electro.config import Settings
from electro.db import Base
from electro.migrate import current_revision, head_revision
from electro.models import OneTimeKey, OutboxMail, UserSession
from electro.services import bulk, search
from electro.services.events import NOBODY, Actor

FORMAT = "electro-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BATCH_ROWS = 5000  # rows per fetch, per compressed chunk and per executemany
GZIP_LEVEL = 3  # most of level 6's ratio at about twice its speed
_READ_CHUNK = 1 << 18
_T = TypeVar("_T")
_PROBE = datetime(2001, 2, 3, 4, 5, 6, 7)  # every field distinct, microseconds not zero
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")

Progress = Callable[[str, int, int], None]
"""``progress(step, rows_done, rows_total)``; ``step`` names the phase and table."""


class BackupError(Exception):
    """A backup cannot be made, read or restored; the message says why, for the admin."""


@dataclass(frozen=True)
class TableEntry:
    name: str
    columns: list[str]
    rows: int
    sha256: str

    @property
    def member(self) -> str:
        return f"{self.name}.jsonl.gz"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    schema_revision: str
    created_at: datetime
    tables: list[TableEntry]  # in dependency order

    @property
    def row_counts(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT,
            "format_version": self.format_version,
            "schema_revision": self.schema_revision,
            "created_at": self.created_at.isoformat(),
            "tables": [
                {"name": t.name, "columns": t.columns, "rows": t.rows, "sha256": t.sha256}
                for t in self.tables
            ],
        }, indent=1).encode()


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    safety_backup: models.Backup  # what the database held just before the restore


# Columns a backup does not keep (written empty): a queued mail's body may hold a clear one-time
# key, and backups never hold a clear key. A restore spends every key anyway (_after_restore).
NOT_KEPT = {"outbox": frozenset({"body"})}


def snapshot_tables() -> list[Table]:
    """Every table of the domain, parents before children (alembic's own table is not in it)."""
    return list(Base.metadata.sorted_tables)


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
        raise BackupError(f"there is no backup #{backup_id}")
    return backup


def backup_path(settings: Settings, backup: models.Backup) -> Path:
    """The file of ``backup`` inside the backup folder; a name that could leave it is refused."""
    name = backup.filename
    folder = settings.backup_dir.resolve()
    path = (folder / name).resolve()
    if not _SAFE_NAME.fullmatch(name) or path.parent != folder:
        raise BackupError(f"backup file name {name!r} is not a plain file name")
    return path


# ---------------------------------------------------------------- making a backup


async def create_backup(
    engine: AsyncEngine,
    settings: Settings,
    *,
    actor: Actor = NOBODY,
    progress: Progress | None = None,
) -> models.Backup:
    """Write a snapshot of every table to ``settings.backup_dir`` and record it (row + event)."""
    made = await _write_file(engine, settings, "backup", progress)
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
    engine: AsyncEngine, settings: Settings, label: str, progress: Progress | None
) -> _File:
    folder = settings.backup_dir
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    filename = f"electro-{label}-{clock.now():%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}.zip"
    final = folder / filename
    partial = folder / (filename + ".partial")  # renamed once complete: never half a file listed
    try:
        manifest = await _write_snapshot(engine, partial, label, progress)
        size, digest = await asyncio.to_thread(_seal, partial, final)
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


async def _write_snapshot(
    engine: AsyncEngine, path: Path, label: str, progress: Progress | None
) -> Manifest:
    tables = snapshot_tables()
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        async with conn.begin():
            if conn.dialect.name == "sqlite":
                # The driver only opens a transaction before a write; without this BEGIN every
                # SELECT would be its own snapshot.
                await conn.exec_driver_sql("BEGIN")
            # The first read fixes the snapshot; it also gives the progress total.
            counts = (await conn.execute(
                select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
            )).one()
            taken = clock.now()  # the moment the data is from
            total = sum(counts)
            done = 0

            def advance(step: str, rows: int) -> None:
                nonlocal done
                done += rows
                if progress:
                    progress(step, done, total)

            revision = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
            if revision is None:
                raise BackupError("the database has no schema yet: run `electro init-db`")
            archive = await asyncio.to_thread(
                zipfile.ZipFile, path, "w", compression=zipfile.ZIP_STORED
            )
            try:
                entries: list[TableEntry] = []
                for table in tables:
                    step = f"{label}: {table.name}"
                    entries.append(await _dump_table(conn, archive, table, step, advance))
                manifest = Manifest(FORMAT_VERSION, revision, taken, entries)
                await asyncio.to_thread(archive.writestr, MANIFEST, manifest.to_json())
            finally:
                await asyncio.to_thread(archive.close)
    return manifest


async def _dump_table(
    conn: AsyncConnection,
    archive: zipfile.ZipFile,
    table: Table,
    step: str,
    advance: Callable[[str, int], None],
) -> TableEntry:
    """Stream one table into its member: the database encodes each row as a JSON line (see
    ``_json_value``), and the next batch is fetched while a thread compresses the current one."""
    writer = await asyncio.to_thread(_MemberWriter, archive, f"{table.name}.jsonl.gz")
    not_kept = NOT_KEPT.get(table.name, frozenset())
    values = [literal("") if c.name in not_kept else _json_value(c, conn.dialect)
              for c in table.columns]
    array = func.json_build_array if conn.dialect.name == "postgresql" else func.json_array
    rows = 0
    writing: asyncio.Future[None] | None = None
    try:
        result = await conn.stream_scalars(
            # As text: the driver would decode PostgreSQL's json type into Python objects.
            select(cast(array(*values), Text)).order_by(*table.primary_key.columns),
            execution_options={"yield_per": BATCH_ROWS},
        )
        async for batch in result.partitions():
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(asyncio.to_thread(writer.write_rows, batch))
            rows += len(batch)
            advance(step, len(batch))
        if writing is not None:
            await writing
    finally:
        if writing is not None:  # the thread cannot be interrupted: let it finish first
            await asyncio.gather(writing, return_exceptions=True)
        digest = await asyncio.to_thread(writer.close)
    return TableEntry(table.name, [c.name for c in table.columns], rows, digest)


def _stored_as_text(column: Column[Any], dialect: Dialect) -> bool:
    """Does the database keep this date or datetime column as exactly the portable text (SQLite
    does)? Then it is read and written as that text, skipping a parse and a format per value."""
    if not isinstance(column.type, Date | DateTime):
        return False
    if isinstance(column.type, DateTime):
        probe: date = _PROBE
        portable = _PROBE.isoformat(sep=" ", timespec="microseconds")
    else:
        probe = _PROBE.date()
        portable = probe.isoformat()
    bind = column.type.dialect_impl(dialect).bind_processor(dialect)
    return bind is not None and bind(probe) == portable


def _json_value(column: Column[Any], dialect: Dialect) -> ColumnElement[Any]:
    """The column as the database writes it into the row's JSON array: the database encodes
    (in C, about twice as fast as Python's encoder on these rows), Python only compresses.
    Datetimes become ``2026-11-25 14:05:54.000123``, dates ``2026-11-25``: SQLite stores exactly
    that text, PostgreSQL formats it."""
    if isinstance(column.type, Date | DateTime):
        if dialect.name == "postgresql":
            form = "YYYY-MM-DD HH24:MI:SS.US" if isinstance(column.type, DateTime) \
                else "YYYY-MM-DD"
            return func.to_char(column, form)
        if not _stored_as_text(column, dialect):
            raise BackupError(f"{column.table.name}.{column.name}: unexpected date storage")
    elif dialect.name == "sqlite" and isinstance(column.type, Boolean):  # stored as 0 or 1
        return case((column, func.json("true")), (~column, func.json("false")))
    elif dialect.name == "sqlite" and isinstance(column.type, JSON):  # stored as JSON text
        return func.json(column)
    return column


class _MemberWriter:
    """One table's gzip member inside the zip; used from one worker thread at a time."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        # force_zip64: the size is unknown when the header is written and may pass 2 GiB.
        self._member = archive.open(name, "w", force_zip64=True)
        self._zlib = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
        self._hash = hashlib.sha256()

    def write_rows(self, lines: Sequence[str]) -> None:
        self._emit(self._zlib.compress(("\n".join(lines) + "\n").encode()))

    def close(self) -> str:
        """Finish the member; returns its SHA-256."""
        self._emit(self._zlib.flush())
        self._member.close()
        return self._hash.hexdigest()

    def _emit(self, data: bytes) -> None:
        if data:
            self._hash.update(data)
            self._member.write(data)


def _seal(partial: Path, final: Path) -> tuple[int, str]:
    """fsync, hash and move the finished file into place; returns (size, SHA-256)."""
    digest = hashlib.sha256()
    with partial.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
        os.fsync(fh.fileno())
    os.replace(partial, final)
    return final.stat().st_size, digest.hexdigest()


# ---------------------------------------------------------------- verifying a file


async def verify_backup(path: Path, max_bytes: int | None = None) -> Manifest:
    """Check a backup file completely before anything is touched: no larger than ``max_bytes``
    (an upload's limit), a zip of ours, of this format version and schema revision, with
    exactly the expected tables and columns, and every member matches its SHA-256, decompresses
    to the end and holds the announced number of rows."""
    return await asyncio.to_thread(_verify, path, max_bytes)


def _verify(path: Path, max_bytes: int | None) -> Manifest:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise BackupError(
                f"the file is {size:,} bytes; uploads are limited to {max_bytes:,} bytes"
            )
        head = head_revision()
        with zipfile.ZipFile(path) as zf:
            manifest = _read_manifest(zf)
            if manifest.schema_revision != head:
                raise BackupError(
                    f"this backup has schema revision {manifest.schema_revision}, but this "
                    f"version of E-lectro is at {head}: restore it with the version that made it"
                )
            for entry in manifest.tables:
                _check_member(zf, entry)
            return manifest
    except FileNotFoundError:
        raise BackupError(f"there is no file {path.name!r}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise BackupError(f"the file is damaged or truncated ({exc})") from None


def _read_manifest(zf: zipfile.ZipFile) -> Manifest:
    try:
        raw = json.loads(zf.read(MANIFEST))
        if raw.get("format") != FORMAT:
            raise KeyError("format")
        version = raw["format_version"]
        if version != FORMAT_VERSION:
            raise BackupError(
                f"backup format version {version} is not supported (this version reads "
                f"{FORMAT_VERSION})"
            )
        entries = [TableEntry(t["name"], list(t["columns"]), int(t["rows"]), str(t["sha256"]))
                   for t in raw["tables"]]
        manifest = Manifest(version, str(raw["schema_revision"]),
                            datetime.fromisoformat(raw["created_at"]), entries)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BackupError("this is not an E-lectro backup (no valid manifest)") from None
    expected = [(t.name, [c.name for c in t.columns]) for t in snapshot_tables()]
    if [(t.name, t.columns) for t in manifest.tables] != expected:
        raise BackupError("the backup's tables or columns do not match this schema")
    return manifest


def _check_member(zf: zipfile.ZipFile, entry: TableEntry) -> None:
    digest = hashlib.sha256()
    inflate = zlib.decompressobj(31)
    lines = 0
    try:
        member = zf.open(entry.member)
    except KeyError:
        raise BackupError(f"the backup has no data for table {entry.name}") from None
    with member:
        while chunk := member.read(_READ_CHUNK):
            digest.update(chunk)
            # Bounded output per step: an uploaded file may inflate a thousandfold.
            while chunk:
                lines += inflate.decompress(chunk, _READ_CHUNK).count(b"\n")
                chunk = inflate.unconsumed_tail
    if digest.hexdigest() != entry.sha256:
        raise BackupError(f"table {entry.name}: checksum mismatch, the file is damaged")
    if not inflate.eof or inflate.unused_data or lines != entry.rows:
        raise BackupError(f"table {entry.name}: the data is incomplete or does not match")


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
    in one transaction.

    The safety backup is a snapshot of the data the restore replaces, and the restore commits
    only once that file is complete. On SQLite the restore holds the write lock from its start,
    so nothing can change before it commits, and WAL lets the snapshot read the old rows while
    the new ones are in: the safety backup is written while SQLite rebuilds the indexes after
    the load (its own C work, beside Python's): 3.4 s became about 2.7 s for 200,000 rows.
    On PostgreSQL it is written first, because the load drops and rebuilds indexes, which waits
    for every reader of those tables.

    On any failure the transaction rolls back, the database is as it was, a
    ``backup_restore_failed`` event is recorded and ``BackupError`` is raised."""
    manifest = await verify_backup(path, max_bytes)
    revision = await current_revision(engine)
    if revision != manifest.schema_revision:
        raise BackupError(
            f"the database is at schema revision {revision}, the backup at "
            f"{manifest.schema_revision}: run `electro init-db` first"
        )
    report = _summed(progress)
    safety: asyncio.Future[_File] | None = None

    def safety_backup() -> asyncio.Future[_File]:
        """Started on the first call (before the load on PostgreSQL, after it on SQLite)."""
        nonlocal safety
        if safety is None:
            safety = asyncio.ensure_future(_write_file(engine, settings, "safety", report))
        return safety

    try:
        async with engine.connect() as conn, bulk.foreign_keys_off(conn), conn.begin():
            if conn.dialect.name == "sqlite":
                # The write lock now: the snapshot and the rows kept see the data replaced.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await safety_backup()
            rows = await _replace_all(conn, path, manifest, report, rows_loaded=safety_backup)
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


async def create_in_request(
    db: AsyncSession, settings: Settings, *, actor: Actor
) -> models.Backup:
    """``create_backup`` from a request that holds ``db`` (see ``_leave_request``)."""
    return await create_backup(await _leave_request(db), settings, actor=actor)


async def restore_in_request(
    db: AsyncSession, settings: Settings, path: Path, *, actor: Actor,
    max_bytes: int | None = None,
) -> Restored:
    """``restore_backup`` from a request that holds ``db`` (see ``_leave_request``)."""
    return await restore_backup(await _leave_request(db), settings, path, actor=actor,
                                max_bytes=max_bytes)


async def _leave_request(db: AsyncSession) -> AsyncEngine:
    """The engine the backup works on (its own connections), once the request's transaction
    has ended: its locks would block the restore's (on PostgreSQL even a read keeps a lock that
    replacing a table waits for; SQLite allows one writer)."""
    engine = db.bind
    if not isinstance(engine, AsyncEngine):
        raise TypeError("the request's session must be bound to the app's engine")
    await db.commit()
    return engine


async def _outcome(task: asyncio.Future[_T] | None) -> _T | None:
    """The result of ``task`` once it has ended, or None if it failed (or never started)."""
    if task is None:
        return None
    await asyncio.gather(task, return_exceptions=True)
    return None if task.cancelled() or task.exception() else task.result()


def _summed(progress: Progress | None) -> Progress | None:
    """One progress for phases that may run at the same time (safety backup and restore): the
    rows done and to do of every phase so far, added up."""
    if progress is None:
        return None
    done: dict[str, int] = {}
    totals: dict[str, int] = {}

    def report(step: str, rows_done: int, rows_total: int) -> None:
        phase = step.split(":", 1)[0]
        done[phase], totals[phase] = rows_done, rows_total
        progress(step, sum(done.values()), sum(totals.values()))

    return report


async def _replace_all(
    conn: AsyncConnection,
    path: Path,
    manifest: Manifest,
    progress: Progress | None,
    *,
    rows_loaded: Callable[[], object],
) -> int:
    """Inside the restore's transaction: every table but ``backups`` replaced by the file's
    rows, then made safe to serve. ``rows_loaded`` is called once the rows are in, before
    indexes and the search index are rebuilt. Returns the number of rows restored."""
    tables = snapshot_tables()
    backups = models.Backup.__table__
    restored = [t for t in tables if t is not backups]
    entries = {e.name: e for e in manifest.tables}
    total = sum(entries[t.name].rows for t in restored)
    kept = [dict(r) for r in (await conn.execute(select(backups))).mappings()]
    async with search.index_paused(conn), bulk.loading(conn, [t.name for t in restored]):
        await _replace_rows(conn, tables, restored, entries, path, total, progress)
        rows_loaded()
    await _keep_backup_rows(conn, kept)
    if conn.dialect.name == "postgresql":
        await _reset_sequences(conn, tables)
    await _after_restore(conn)
    await bulk.check_foreign_keys(conn)  # a crafted file may hold rows that refer to nothing
    return total


async def _replace_rows(
    conn: AsyncConnection,
    tables: list[Table],
    restored: list[Table],
    entries: dict[str, TableEntry],
    path: Path,
    total: int,
    progress: Progress | None,
) -> None:
    """Empty every table and refill the restored ones from the archive, in batches."""
    if conn.dialect.name == "postgresql":
        names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in tables)
        # CASCADE empties what is derived from these tables too (the search index, rebuilt
        # by index_paused).
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(tables):  # children first: foreign keys stay satisfied
            await conn.execute(table.delete())
    done = 0
    reader = await asyncio.to_thread(zipfile.ZipFile, path)
    try:
        for table in restored:
            load = _Load(table, conn.dialect)
            rows = _read_batches(reader, entries[table.name], load)
            async with aclosing(_prefetched(rows)) as batches:
                async for batch in batches:
                    await _insert_rows(conn, load, batch)
                    done += len(batch)
                    if progress:
                        progress(f"restore: {table.name}", done, total)
    finally:
        await asyncio.to_thread(reader.close)


class _Load:
    """How one table's rows go in: the compiled INSERT and, per column, the conversion from the
    portable value to what this database's driver takes (the type's own bind processor). That is
    done in the reading thread; the event loop only hands finished tuples to the driver (COPY on
    PostgreSQL, executemany otherwise)."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        names = [c.name for c in table.columns]
        compiled = insert(table).compile(dialect=dialect, column_keys=names)
        if compiled.positiontup != names:  # rows are handed over in the manifest's column order
            raise BackupError(f"table {table.name}: unexpected parameter order")
        self.table = table
        self.sql = compiled.string
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, column in enumerate(table.columns):
            bind = column.type.dialect_impl(dialect).bind_processor(dialect)
            if _stored_as_text(column, dialect):
                continue
            if isinstance(column.type, Date | DateTime):
                parse = datetime.fromisoformat if isinstance(column.type, DateTime) \
                    else date.fromisoformat
                self.converters.append((index, _parsing(parse, bind)))
            elif bind is not None:
                self.converters.append((index, bind))

    def rows(self, decoded: list[list[Any]]) -> list[tuple[Any, ...]]:
        for row in decoded:
            for index, convert in self.converters:
                row[index] = convert(row[index])
        return list(map(tuple, decoded))


def _parsing(
    parse: Callable[[str], Any], bind: Callable[[Any], Any] | None
) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        return bind(parse(value)) if bind else parse(value)

    return convert


async def _prefetched(items: Iterator[_T]) -> AsyncGenerator[_T, None]:
    """Items of a blocking iterator, the next one computed in a thread while the caller works
    on the current one."""
    pending = asyncio.ensure_future(asyncio.to_thread(next, items, None))
    try:
        while (item := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(next, items, None))
            yield item
    finally:
        # A thread cannot be interrupted: let it finish before the file under it is closed.
        await asyncio.gather(pending, return_exceptions=True)


async def _insert_rows(conn: AsyncConnection, load: _Load, rows: list[tuple[Any, ...]]) -> None:
    """A batch in one go: PostgreSQL's COPY (binary, in this transaction), else executemany."""
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            load.table.name, records=rows, columns=[c.name for c in load.table.columns]
        )
    else:
        await conn.exec_driver_sql(load.sql, rows)


def _read_batches(
    zf: zipfile.ZipFile, entry: TableEntry, load: _Load
) -> Iterator[list[tuple[Any, ...]]]:
    """Driver-ready rows of one member, BATCH_ROWS at a time (runs in a worker thread)."""
    with zf.open(entry.member) as member, io.TextIOWrapper(
        gzip.GzipFile(fileobj=member, mode="rb"), encoding="utf-8"
    ) as lines:
        while chunk := [line for _, line in zip(range(BATCH_ROWS), lines, strict=False)]:
            yield load.rows(json.loads("[" + ",".join(chunk) + "]"))  # one parse per batch


async def _keep_backup_rows(conn: AsyncConnection, kept: list[dict[str, Any]]) -> None:
    """Put back the rows describing the backup files; an author who no longer exists in the
    restored users becomes NULL (what ON DELETE SET NULL would have done)."""
    if not kept:
        return
    authors = {r["created_by_id"] for r in kept} - {None}
    users = models.User.__table__
    present = set((await conn.scalars(select(users.c.id).where(users.c.id.in_(authors)))).all())
    for row in kept:
        if row["created_by_id"] not in present:
            row["created_by_id"] = None
    await conn.execute(insert(models.Backup), kept)


async def _reset_sequences(conn: AsyncConnection, tables: list[Table]) -> None:
    """Rows came back with their ids; the next id must follow the largest one."""
    quote = conn.dialect.identifier_preparer
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        name, column = quote.format_table(table), quote.quote(pk[0].name)
        await conn.execute(
            text(f"SELECT setval(pg_get_serial_sequence(:table, :column), "  # noqa: S608
                 f"COALESCE(MAX({column}), 0) + 1, false) FROM {name}"),
            {"table": table.name, "column": pk[0].name},
        )


async def _after_restore(conn: AsyncConnection) -> None:
    """Make the restored rows safe and consistent to serve.

    Sessions and one-time keys are credentials: a snapshot holds some that were ended or used
    after it was taken, and restoring them must not bring them back to life. So every restored
    session ends (everyone signs in again, the restoring admin too), every unused key is spent
    (keys in flight are asked for again) and mail still queued in the snapshot is not sent (its
    body was not kept)."""
    now = clock.now()
    await conn.execute(
        update(UserSession).where(UserSession.ended_at.is_(None))
        .values(ended_at=now, end_reason="restore")
    )
    await conn.execute(
        update(OneTimeKey).where(OneTimeKey.used_at.is_(None)).values(used_at=now)
    )
    await conn.execute(  # their bodies were not kept (NOT_KEPT), and their keys are spent
        update(OutboxMail).where(OutboxMail.status == "pending")
        .values(status="failed", last_error="not sent: restored from a backup")
    )

