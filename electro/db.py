"""Engine, session factory and declarative base; one AsyncSession per request lives on ``g``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ARRAY, Integer, MetaData, any_, bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Identified(Base):
    """A table whose rows are named by an integer ``id`` (every table but ``search_daily``), so
    code that works on any such table (the admin registry) knows ``model.id`` by its type."""

    __abstract__ = True
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)  # first, as in the DDL


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; busy_timeout waits instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    return engine


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine for the length of a block (a CLI command, the app's serving life)."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def among(db: AsyncSession, column: Any, ids: Sequence[int]) -> Any:
    """``column IN ids``. PostgreSQL gets one array parameter (``= ANY``) instead: binding and
    planning 10,000 separate parameters costs it about 0.1 s per statement."""
    if db.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def among_bound(dialect: str, column: Any, name: str) -> Any:
    """``column IN :name``, the list bound at execution, for a statement built once: like
    ``among``, one array parameter on PostgreSQL."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(Integer)))
    return column.in_(bindparam(name, expanding=True))


def upsert_insert(db: AsyncSession) -> Any:
    """The dialect's ``insert`` construct, which has ``on_conflict_do_update``/``_nothing``
    (SQLite and PostgreSQL spell the same upsert)."""
    return sqlite.insert if db.get_bind().dialect.name == "sqlite" else postgresql.insert


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


WRITES = "electro_writes"  # Session.info key: this session's transactions will write


@asynccontextmanager
async def writing(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session and transaction that will write (see WRITES), committed when the block ends."""
    async with sessions(info={WRITES: True}) as session, session.begin():
        yield session


@event.listens_for(Session, "after_begin")
def _take_the_write_lock_first(session: Session, transaction: Any, connection: Any) -> None:
    """SQLite: a session that will write takes the write lock when its transaction begins
    (BEGIN IMMEDIATE, which waits busy_timeout for it). A transaction that has read first and
    writes later cannot wait: if another writer holds the lock it fails at once with "database
    is locked", as 20 parallel admin edits did. PostgreSQL locks rows and needs nothing."""
    if (session.info.get(WRITES) and not transaction.nested
            and connection.dialect.name == "sqlite"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
