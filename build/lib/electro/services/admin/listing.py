"""Listing a declared table: a page of rows containing a search, sorted by a listed column
(two queries, count and page), one row, and the row count of every table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro.errors import NotFound
from electro.services.admin.registry import Table
from electro.services.admin.tables import TABLES
from electro.services.paging import clamp, page_number

PER_PAGE = 25
MAX_PER_PAGE = 200

Row = Mapping[str, Any]  # id and the listed columns, by name


@dataclass
class Listing:
    table: Table
    rows: list[Row]
    total: int
    page: int
    per_page: int
    pages: int
    q: str
    sort: str
    direction: str

    def query(self, **change: object) -> dict[str, object]:
        """The list's URL parameters, with some changed (for links)."""
        args: dict[str, object] = {"q": self.q, "sort": self.sort, "dir": self.direction,
                                   "page": self.page}
        args.update(change)
        return {k: v for k, v in args.items() if v not in ("", None)}


def _select_rows(table: Table) -> Select[*tuple[Any, ...]]:
    return select(table.model.id.label("id"), *(c.expr.label(c.name) for c in table.columns))


def _search(table: Table, q: str) -> ColumnElement[bool]:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(
        func.lower(cast(table.column(name).expr, String)).like(pattern, escape="\\")
        for name in table.searchable
    ))


async def list_rows(
    db: AsyncSession, table: Table, q: str = "", sort: str | None = None,
    direction: str | None = None, page: object = 1, per_page: int = PER_PAGE,
) -> Listing:
    """One page of rows containing ``q``, sorted; two queries (count, page)."""
    q = (q or "").strip()[:200]
    if sort not in table.sortable:
        sort, direction = table.default_sort
    direction = direction if direction in ("asc", "desc") else "asc"
    per_page = min(max(1, per_page), MAX_PER_PAGE)
    query = _select_rows(table)
    counting = select(func.count()).select_from(table.model)
    if q:
        query, counting = query.where(_search(table, q)), counting.where(_search(table, q))
    total = int(await db.scalar(counting) or 0)
    page, pages = clamp(page_number(page), total, per_page)
    expr, row_id = table.column(sort).expr, table.model.id
    order = (expr.asc(), row_id.asc()) if direction == "asc" else (expr.desc(), row_id.desc())
    rows = (await db.execute(
        query.order_by(*order).limit(per_page).offset((page - 1) * per_page)
    )).mappings().all()
    return Listing(table, [dict(r) for r in rows], total, page, per_page, pages, q, sort,
                   direction)


async def get_row(db: AsyncSession, table: Table, row_id: int) -> Row:
    found = (await db.execute(_select_rows(table).where(table.model.id == row_id))).mappings()
    row = found.first()
    if row is None:
        raise NotFound(f"Row {row_id} of {table.title} does not exist (any more).")
    return dict(row)


async def one_row(db: AsyncSession, table: Table, row_id: int) -> Listing:
    """A listing of one row: the edit page without JavaScript shows just that row."""
    sort, direction = table.default_sort
    return Listing(table, [await get_row(db, table, row_id)], 1, 1, PER_PAGE, 1, "", sort,
                   direction)


async def table_counts(db: AsyncSession) -> dict[str, int]:
    """Rows per table, in one query."""
    counts = select(*(
        select(func.count()).select_from(t.model).scalar_subquery().label(name)
        for name, t in TABLES.items()
    ))
    return dict((await db.execute(counts)).mappings().one())
