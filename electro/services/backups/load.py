"""Replacing every table with a backup file's rows, inside the restore's transaction.

Tables are emptied, then refilled in batches with indexes and foreign keys set aside
(``Database.loading``) and the search index paused, then rebuilt and checked once. The
``backups`` table is the exception: it describes the files on disk, which a restore does not
touch, so the current rows are kept (the snapshot's rows stay in the file only).
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Date, DateTime, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from electro import clock, models
from electro.models import OneTimeKey, OutboxMail, UserSession
from electro.services import search
from electro.services.backups import fileformat
from electro.services.backups.databases import Database, Row
from electro.services.backups.fileformat import Manifest, TableEntry
from electro.services.backups.progress import Progress

_T = TypeVar("_T")


async def replace_all(
    conn: AsyncConnection,
    database: Database,
    tables: Sequence[Table],
    path: Path,
    manifest: Manifest,
    progress: Progress | None,
    *,
    rows_loaded: Callable[[], object],
) -> int:
    """Every one of ``tables`` but ``backups`` replaced by the file's rows, then made safe to
    serve. ``rows_loaded`` is called once the rows are in, before indexes and the search index
    are rebuilt. Returns the number of rows restored."""
    backups = models.Backup.__table__
    restored = [t for t in tables if t is not backups]
    entries = {e.name: e for e in manifest.tables}
    total = sum(entries[t.name].rows for t in restored)
    kept = [dict(r) for r in (await conn.execute(select(backups))).mappings()]
    async with search.index_paused(conn), database.loading(conn, [t.name for t in restored]):
        await database.empty(conn, tables)
        await _insert_all(conn, database, restored, entries, path, total, progress)
        rows_loaded()
    await _keep_backup_rows(conn, kept)
    await database.reset_sequences(conn, tables)
    await _after_restore(conn)
    await database.check_foreign_keys(conn)  # a crafted file may hold rows that refer to nothing
    return total


async def _insert_all(
    conn: AsyncConnection,
    database: Database,
    restored: list[Table],
    entries: dict[str, TableEntry],
    path: Path,
    total: int,
    progress: Progress | None,
) -> None:
    """Fill the restored tables from the archive, in batches."""
    done = 0
    reader = await asyncio.to_thread(zipfile.ZipFile, path)
    try:
        for table in restored:
            convert = _Converter(table, database)
            # Converted in the reading thread; map() keeps no decoded batch alive meanwhile.
            rows = map(convert.rows, fileformat.read_rows(reader, entries[table.name]))
            async with aclosing(_prefetched(rows)) as batches:
                async for batch in batches:
                    await database.insert_rows(conn, table, batch)
                    done += len(batch)
                    if progress:
                        progress(f"restore: {table.name}", done, total)
    finally:
        await asyncio.to_thread(reader.close)


class _Converter:
    """Per column of one table, the conversion from the portable value to what this database's
    driver takes (the type's own bind processor). It runs in the reading thread; the event loop
    only hands finished tuples to the driver."""

    def __init__(self, table: Table, database: Database) -> None:
        dialect = database.dialect
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, column in enumerate(table.columns):
            bind = column.type.dialect_impl(dialect).bind_processor(dialect)
            if database.stored_as_text(column):
                continue
            if isinstance(column.type, Date | DateTime):
                parse = datetime.fromisoformat if isinstance(column.type, DateTime) \
                    else date.fromisoformat
                self.converters.append((index, _parsing(parse, bind)))
            elif bind is not None:
                self.converters.append((index, bind))

    def rows(self, decoded: list[list[Any]]) -> list[Row]:
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
    await conn.execute(  # their bodies were not kept (dump.NOT_KEPT), and their keys are spent
        update(OutboxMail).where(OutboxMail.status == "pending")
        .values(status="failed", last_error="not sent: restored from a backup")
    )
