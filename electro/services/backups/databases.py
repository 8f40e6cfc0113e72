"""What differs between SQLite and PostgreSQL when a backup is read or a restore loads rows: one
strategy class per database, chosen once per engine by ``database_for``.

Bulk loading is done the way pg_restore does it: secondary indexes and foreign keys are set aside
while the rows go in, then built once from the loaded rows and checked in one pass (``loading``).
Upkeep per row is what makes a bulk load slow: every inserted row updates every index of its
table in place and runs one lookup per foreign key. Building an index from finished rows sorts
them once, and a foreign-key check over a whole table is one join. Restoring 190,000 products
this way took 0.75 s on PostgreSQL instead of 1.8 s, and on SQLite emptying the table went from
0.45 s to 0.03 s (bench/bench_backup.py). Everything happens inside the caller's transaction
(DDL is transactional on both databases), so a failure puts every index and constraint back
with the rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, datetime
from typing import Any, ClassVar

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
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from electro.services.backups.fileformat import BackupError

Row = tuple[Any, ...]
_PROBE = datetime(2001, 2, 3, 4, 5, 6, 7)  # every field distinct, microseconds not zero


class ForeignKeyViolation(BackupError):
    """Loaded rows refer to rows that do not exist."""


class Database(ABC):
    """How one kind of database takes part in backups: the snapshot a backup reads, the JSON
    the database writes per row, and the transaction, bulk load and checks of a restore."""

    safety_backup_first: ClassVar[bool]
    """Is the restore's safety backup written before the load (else while indexes rebuild)?"""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    # ------------------------------------------------------------ reading a snapshot

    @abstractmethod
    def reading(self, engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in one read transaction: every table read in it is the same snapshot,
        however the shop writes meanwhile."""

    def json_line(self, table: Table, blank: frozenset[str]) -> ColumnElement[str]:
        """Each row of ``table`` as its JSON line, written by the database (in C, about twice as
        fast as Python's encoder on these rows); columns named in ``blank`` are written empty."""
        values = [literal("") if c.name in blank else self._json_value(c) for c in table.columns]
        # As text: the driver would decode PostgreSQL's json type into Python objects.
        return cast(self._json_array(*values), Text)

    @abstractmethod
    def _json_array(self, *values: ColumnElement[Any]) -> ColumnElement[Any]: ...

    @abstractmethod
    def _json_value(self, column: Column[Any]) -> ColumnElement[Any]:
        """The column as it goes into the row's JSON array, in the portable form: datetimes
        ``2026-11-25 14:05:54.000123``, dates ``2026-11-25``."""

    def stored_as_text(self, column: Column[Any]) -> bool:
        """Does the database keep this date or datetime column as exactly the portable text
        (SQLite does)? Then it is read and written as that text, skipping a parse and a format
        per value."""
        if not isinstance(column.type, Date | DateTime):
            return False
        if isinstance(column.type, DateTime):
            probe: date = _PROBE
            portable = _PROBE.isoformat(sep=" ", timespec="microseconds")
        else:
            probe = _PROBE.date()
            portable = probe.isoformat()
        bind = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return bind is not None and bind(probe) == portable

    # ------------------------------------------------------------ restoring

    @abstractmethod
    def restoring(self, engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in the restore's transaction, committed when the block ends (rolled
        back if it raises). Foreign keys may be off inside: call ``check_foreign_keys``."""

    @abstractmethod
    async def empty(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        """Delete every row of ``tables`` (given parents first)."""

    @abstractmethod
    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[Row]) -> None:
        """A batch of driver-ready rows, in the table's column order, in one go."""

    @abstractmethod
    async def reset_sequences(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        """Rows came back with their ids: make the next generated id follow the largest one."""

    @asynccontextmanager
    async def loading(self, conn: AsyncConnection, tables: Sequence[str]) -> AsyncIterator[None]:
        """Inside the caller's transaction: set aside the secondary indexes of ``tables`` (and
        what else slows a bulk load, see ``_set_aside``), let the caller load rows, then create
        them again. Primary keys and unique constraints stay: they are what a row is. A unique
        index that is not a constraint (``lower(email)``) is rebuilt, which checks it, so a
        duplicate still fails the load."""
        set_aside = await self._set_aside(conn, list(tables))
        for drop, _create in set_aside:
            await conn.exec_driver_sql(drop)
        yield
        for _drop, create in reversed(set_aside):  # indexes first: a key check uses them
            await conn.exec_driver_sql(create)

    @abstractmethod
    async def _set_aside(self, conn: AsyncConnection, tables: list[str]) -> list[tuple[str, str]]:
        """(drop, create) statements for what ``loading`` sets aside, in the order to drop
        them."""

    @abstractmethod
    async def check_foreign_keys(self, conn: AsyncConnection) -> None:
        """Before the restore commits: every loaded row refers to rows that exist, or
        ``ForeignKeyViolation`` (or the driver's integrity error)."""


class SQLite(Database):
    """The embedded database: one writer at a time, WAL readers, types kept as text."""

    safety_backup_first = False
    """The restore holds the write lock from its start, so nothing can change before it
    commits, and WAL lets the snapshot read the old rows while the new ones are in: the safety
    backup is written while SQLite rebuilds the indexes after the load (its own C work, beside
    Python's): 3.4 s became about 2.7 s for 200,000 rows."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        self._inserts: dict[str, str] = {}

    @asynccontextmanager
    async def reading(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn, conn.begin():
            # The driver only opens a transaction before a write; without this BEGIN every
            # SELECT would be its own snapshot (this one starts at the first read).
            await conn.exec_driver_sql("BEGIN")
            yield conn

    def _json_array(self, *values: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.json_array(*values)

    def _json_value(self, column: Column[Any]) -> ColumnElement[Any]:
        if isinstance(column.type, Date | DateTime):
            if not self.stored_as_text(column):
                raise BackupError(f"{column.table.name}.{column.name}: unexpected date storage")
        elif isinstance(column.type, Boolean):  # stored as 0 or 1
            return case((column, func.json("true")), (~column, func.json("false")))
        elif isinstance(column.type, JSON):  # stored as JSON text
            return func.json(column)
        return column

    @asynccontextmanager
    async def restoring(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn, _foreign_keys_off(conn), conn.begin():
            # The write lock now: the safety backup and the rows kept see the data replaced.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    async def empty(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        for table in reversed(tables):  # children first: foreign keys stay satisfied
            await conn.execute(table.delete())

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[Row]) -> None:
        await conn.exec_driver_sql(self._insert_sql(table), rows)

    def _insert_sql(self, table: Table) -> str:
        """The table's INSERT, compiled once, taking values in the table's column order."""
        if table.name not in self._inserts:
            names = [c.name for c in table.columns]
            compiled = insert(table).compile(dialect=self.dialect, column_keys=names)
            if compiled.positiontup != names:
                raise BackupError(f"table {table.name}: unexpected parameter order")
            self._inserts[table.name] = compiled.string
        return self._inserts[table.name]

    async def reset_sequences(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        """Nothing to do: a rowid follows the largest id by itself."""

    async def _set_aside(self, conn: AsyncConnection, tables: list[str]) -> list[tuple[str, str]]:
        """The secondary indexes (foreign keys are off for the whole restore, see
        ``_foreign_keys_off``)."""
        indexes = await conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                 "AND tbl_name IN :tables").bindparams(bindparam("tables", expanding=True)),
            {"tables": tables},
        )
        return [(f'DROP INDEX "{name}"', sql) for name, sql in indexes]

    async def check_foreign_keys(self, conn: AsyncConnection) -> None:
        """One pass over every table's foreign keys."""
        broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first()
        if broken is not None:
            raise ForeignKeyViolation(
                f"row {broken.rowid} of {broken.table} refers to a row of {broken.parent} "
                "that does not exist"
            )


@asynccontextmanager
async def _foreign_keys_off(conn: AsyncConnection) -> AsyncIterator[None]:
    """Foreign keys are not enforced on ``conn`` for the transactions run inside. SQLite only
    reads this setting outside a transaction, hence a block around the transaction rather than
    inside it. Always turned on again: if that fails, the connection is invalidated, so the pool
    never hands out one without foreign keys."""
    await _set_foreign_keys(conn, "OFF")
    try:
        yield
    finally:
        try:
            await _set_foreign_keys(conn, "ON")
        except BaseException:
            await conn.invalidate()
            raise


async def _set_foreign_keys(conn: AsyncConnection, value: str) -> None:
    await conn.exec_driver_sql(f"PRAGMA foreign_keys={value}")
    await conn.commit()  # ends the autobegun (empty) transaction, so the caller can begin


class PostgreSQL(Database):
    """The server database: MVCC snapshots, COPY, sequences, constraints that can be dropped."""

    safety_backup_first = True
    """The load's ``DROP INDEX`` needs an ACCESS EXCLUSIVE lock, which would wait for (and
    deadlock with) the safety backup's ACCESS SHARE locks if both ran at once."""

    @asynccontextmanager
    async def reading(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn:
            snapshot = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with snapshot.begin():
                yield snapshot

    def _json_array(self, *values: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.json_build_array(*values)

    def _json_value(self, column: Column[Any]) -> ColumnElement[Any]:
        if isinstance(column.type, DateTime):
            return func.to_char(column, "YYYY-MM-DD HH24:MI:SS.US")
        if isinstance(column.type, Date):
            return func.to_char(column, "YYYY-MM-DD")
        return column

    @asynccontextmanager
    async def restoring(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn, conn.begin():
            yield conn

    async def empty(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        names = ", ".join(self.dialect.identifier_preparer.format_table(t) for t in tables)
        # CASCADE empties what is derived from these tables too (the search index, rebuilt
        # by search.index_paused).
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[Row]) -> None:
        """COPY, binary, in this transaction."""
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=rows, columns=[c.name for c in table.columns]
        )

    async def reset_sequences(self, conn: AsyncConnection, tables: Sequence[Table]) -> None:
        quote = self.dialect.identifier_preparer
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

    async def _set_aside(self, conn: AsyncConnection, tables: list[str]) -> list[tuple[str, str]]:
        """The foreign keys of ``tables`` (each checked in one pass when it is added back),
        then their secondary indexes; definitions as the catalogue gives them."""
        foreign_keys = await conn.execute(text(
            """SELECT c.conrelid::regclass::text, quote_ident(c.conname),
                      pg_get_constraintdef(c.oid)
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
               WHERE c.contype = 'f' AND t.relname = ANY(:tables)
                 AND t.relnamespace = current_schema()::regnamespace"""
        ), {"tables": tables})
        set_aside = [(f"ALTER TABLE {table} DROP CONSTRAINT {name}",
                      f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
                     for table, name, definition in foreign_keys]
        indexes = await conn.execute(text(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
               WHERE t.relname = ANY(:tables) AND t.relnamespace = current_schema()::regnamespace
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                 WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)"""
        ), {"tables": tables})
        return set_aside + [(f"DROP INDEX {index}", definition) for index, definition in indexes]

    async def check_foreign_keys(self, conn: AsyncConnection) -> None:
        """Nothing left to do: foreign keys stay enforced, and those set aside by ``loading``
        were checked when they were added back."""


_DATABASES: dict[str, type[Database]] = {"sqlite": SQLite, "postgresql": PostgreSQL}


def database_for(dialect: Dialect) -> Database:
    """The strategy for the database behind ``dialect``."""
    try:
        return _DATABASES[dialect.name](dialect)
    except KeyError:
        raise BackupError(f"backups do not support {dialect.name} databases") from None
