"""Schema migrations (alembic) run on the app's async engine."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
# Search-index objects (FTS5 table and its shadow tables on SQLite, tsvector side table on
# PostgreSQL, the catalogue version row) are dialect-specific DDL with no ORM model.
SEARCH_INDEX_PREFIX = "products_fts"


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic filter: leave the search-index objects out of model comparisons."""
    return not (type_ in ("table", "index") and (name or "").startswith(SEARCH_INDEX_PREFIX))


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )


@functools.cache  # reads every migration file; the head cannot change while the app runs
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head
