"""Writing a snapshot of every table into a backup file.

A backup reads every table in one read transaction (``Database.reading``), so it is consistent
while the shop keeps writing. The database encodes every row as its JSON line; memory stays
flat: lines are streamed in batches and compression and file work run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from electro import clock
from electro.db import Base
from electro.services.backups.databases import Database
from electro.services.backups.fileformat import (
    BATCH_ROWS,
    FORMAT_VERSION,
    ArchiveWriter,
    BackupError,
    Manifest,
    TableEntry,
)
from electro.services.backups.progress import Progress

# Columns a backup does not keep (written empty): a queued mail's body may hold a clear one-time
# key, and backups never hold a clear key. A restore spends every key anyway (load.py).
NOT_KEPT = {"outbox": frozenset({"body"})}


def snapshot_tables() -> list[Table]:
    """Every table of the domain, parents before children (alembic's own table is not in it)."""
    return list(Base.metadata.sorted_tables)


async def write_snapshot(
    engine: AsyncEngine, database: Database, path: Path, label: str, progress: Progress | None
) -> Manifest:
    """Every table into a new backup file at ``path``; ``label`` names the phase in progress
    reports."""
    tables = snapshot_tables()
    async with database.reading(engine) as conn:
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
        archive = await asyncio.to_thread(ArchiveWriter, path)
        try:
            entries: list[TableEntry] = []
            for table in tables:
                entries.append(await dump_table(
                    conn, database, archive, table, f"{label}: {table.name}", advance
                ))
            manifest = Manifest(FORMAT_VERSION, revision, taken, entries)
            await asyncio.to_thread(archive.write_manifest, manifest)
        finally:
            await asyncio.to_thread(archive.close)
    return manifest


async def dump_table(
    conn: AsyncConnection,
    database: Database,
    archive: ArchiveWriter,
    table: Table,
    step: str,
    advance: Callable[[str, int], None],
) -> TableEntry:
    """Stream one table into its member: the database encodes each row as a JSON line, and the
    next batch is fetched while a thread compresses the current one."""
    writer = await asyncio.to_thread(archive.table, table.name)
    line = database.json_line(table, NOT_KEPT.get(table.name, frozenset()))
    rows = 0
    writing: asyncio.Future[None] | None = None
    try:
        result = await conn.stream_scalars(
            select(line).order_by(*table.primary_key.columns),
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
