"""Edit, add, delete and run a group action, for any table declared in ``tables``.

Every change is one compare-and-set or set-based statement, refuses what the table's rules
forbid, and records one ``admin_*`` event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from electro.config import Settings
from electro.db import among
from electro.errors import Conflict, FieldError, InvalidInput, NotFound
from electro.services.admin.listing import Listing, Row, get_row, one_row
from electro.services.admin.registry import (
    ActionContext,
    ActionResult,
    Field,
    OwnConnections,
    Table,
)
from electro.services.events import Actor

MAX_IDS = 10_000  # ticked rows per group action; the form and the IN list stay bounded
STALE = "This row was changed by someone else; reload it."
TAKEN_MEANWHILE = "That value was just taken by another row."
FORM_META = ("csrf_token", "version")  # posted by every editor, not row data


class StaleRow(Conflict):
    """The row changed since its editor opened: nothing was saved."""

    def __init__(self) -> None:
        super().__init__(STALE)


# ---------------------------------------------------------------- edit and add


@dataclass
class Editor:
    """An open editor: the row, what its inputs start with, the token its save carries."""

    listing: Listing
    values: dict[str, str]
    version: str


async def open_editor(db: AsyncSession, table: Table, row_id: int) -> Editor:
    if not table.editable:
        raise NotFound(f"Rows of {table.title} are not editable.")
    listing = await one_row(db, table, row_id)
    row = listing.rows[0]
    values = {f.name: (f.to_text or table.column(f.name).fmt)(row[f.name])
              for f in table.editable}
    return Editor(listing, values, await _row_version(db, table, row_id))


async def _row_version(db: AsyncSession, table: Table, row_id: int) -> str:
    """Users and products have a version column; other tables get a hash of the stored
    editable values, so an edit made meanwhile is noticed all the same."""
    version_col = _version_column(table)
    if version_col is not None:
        current = await db.scalar(select(version_col).where(table.model.id == row_id))
        return "" if current is None else str(current)
    row = await _edit_values(db, table, row_id)
    return "" if row is None else _hash_values(row)


def _version_column(table: Table) -> Column[int] | None:
    version = table.model.__mapper__.version_id_col
    return version if isinstance(version, Column) else None


async def _edit_values(db: AsyncSession, table: Table, row_id: int) -> tuple[object, ...] | None:
    """The stored values of the editable columns (what a version hash covers)."""
    query = select(*_edit_columns(table)).where(table.model.id == row_id)
    row = (await db.execute(query)).first()
    return None if row is None else tuple(row)


def _edit_columns(table: Table) -> list[InstrumentedAttribute[object]]:
    return [_attribute(table, f) for f in table.editable]


def _attribute(table: Table, f: Field) -> InstrumentedAttribute[object]:
    attribute: InstrumentedAttribute[object] = getattr(table.model, f.column)
    return attribute


def _hash_values(values: tuple[object, ...]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


async def _convert(
    db: AsyncSession, table: Table, form: Mapping[str, str], row_id: int | None,
    ignore: Iterable[str], require_all: bool,
) -> dict[str, object]:
    """Allow-listed fields only: anything else posted is refused by name, and nothing changes."""
    errors: dict[str, str] = {}
    problems = [f"Field {name} cannot be edited." for name in form
                if name not in ignore and table.field(name) is None]
    values: dict[str, object] = {}
    for f in table.editable:
        if f.name not in form and not require_all:
            continue  # a partial save leaves the other fields as they are
        try:
            value = await f.parse(db, form.get(f.name, ""))
        except FieldError as exc:
            errors[f.name] = str(exc)
            continue
        if f.unique and value is not None and await _taken(db, table, f, value, row_id):
            errors[f.name] = f"{value} is already taken"
            continue
        values[f.column] = value
    if errors or problems:
        raise InvalidInput(errors=errors, problems=problems)
    return values


async def _taken(db: AsyncSession, table: Table, f: Field, value: object, row_id: int | None
                 ) -> bool:
    query = select(table.model.id).where(
        func.lower(_attribute(table, f)) == str(value).lower())
    if row_id is not None:
        query = query.where(table.model.id != row_id)
    return await db.scalar(query.limit(1)) is not None


async def update_row(
    db: AsyncSession, table: Table, row_id: int, form: Mapping[str, str], version: str,
    *, actor: Actor,
) -> Row:
    """Save an inline edit; one compare-and-set UPDATE, so a row changed since the editor
    opened is refused with StaleRow, never silently overwritten."""
    if not table.editable:
        raise NotFound(f"Rows of {table.title} are not editable.")
    unchanged = await get_row(db, table, row_id)  # NotFound before any other message
    values = await _convert(db, table, form, row_id, FORM_META, require_all=False)
    if not values:
        return unchanged
    if table.check_edit is not None:
        await table.check_edit(db, actor, row_id, values)
    where = [table.model.id == row_id, *await _unchanged_since(db, table, row_id, version)]
    version_col = _version_column(table)
    if version_col is not None:
        values[version_col.key] = version_col + 1
    try:
        async with db.begin_nested():
            result = await db.execute(
                update(table.model).where(*where).values(**values)
                .execution_options(synchronize_session=False))
    except IntegrityError:  # a unique value taken by a concurrent save
        raise InvalidInput(TAKEN_MEANWHILE) from None
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleRow()
    await actor.record(db, "admin_update", table=table.name, ids=[row_id],
                       fields=sorted(f.name for f in table.editable if f.column in values))
    return await get_row(db, table, row_id)


async def _unchanged_since(
    db: AsyncSession, table: Table, row_id: int, version: str
) -> list[ColumnElement[bool]]:
    """The conditions under which the row is still as the editor saw it (``version``)."""
    version_col = _version_column(table)
    if version_col is not None:
        if not (version.isascii() and version.isdigit() and len(version) <= 9):
            raise StaleRow()
        return [version_col == int(version)]
    row = await _edit_values(db, table, row_id)
    if row is None or _hash_values(row) != version:
        raise StaleRow()
    return [col.is_not_distinct_from(old)
            for col, old in zip(_edit_columns(table), row, strict=True)]


async def add_row(
    db: AsyncSession, table: Table, form: Mapping[str, str], *, actor: Actor
) -> Row:
    if not table.can_add:
        raise NotFound(f"Rows cannot be added to {table.title} here.")
    values = await _convert(db, table, form, None, ("csrf_token",), require_all=True)
    if hasattr(table.model, "created_by_id"):
        values["created_by_id"] = actor.id
    try:
        async with db.begin_nested():
            row_id = (await db.execute(
                insert(table.model).values(**values).returning(table.model.id))).scalar_one()
    except IntegrityError:
        raise InvalidInput(TAKEN_MEANWHILE) from None
    await actor.record(db, "admin_add", table=table.name, ids=[row_id])
    return await get_row(db, table, row_id)


# ---------------------------------------------------------------- group actions


def parse_ids(raw: Iterable[str]) -> list[int]:
    """Distinct positive ids; junk is dropped; more than MAX_IDS is refused."""
    ids = sorted({int(v) for v in raw if v.isascii() and v.isdigit() and len(v) <= 18})
    if len(ids) > MAX_IDS:
        raise InvalidInput(f"At most {MAX_IDS:,} rows at a time; {len(ids):,} were ticked.")
    return ids


async def run_action(
    db: AsyncSession, settings: Settings, table: Table, action_name: str, raw_ids: Iterable[str],
    form: Mapping[str, str], *, actor: Actor, confirmed: bool = False,
    own_connections: OwnConnections | None = None,
) -> ActionResult:
    """Re-read the ticked ids through the table, run, and record one event."""
    action = table.action(action_name)
    if action is None:
        raise InvalidInput("Choose an action.")
    ids = parse_ids(raw_ids)
    if ids:
        ids = list((await db.scalars(
            select(table.model.id).where(among(db, table.model.id, ids)).order_by(table.model.id)
        )).all())
    if not ids and action.needs_rows:
        raise InvalidInput("Tick at least one row.")
    inputs = {wanted.name: form.get(wanted.name, "") for wanted in action.inputs}
    context = ActionContext(settings, table, actor, inputs, confirmed, own_connections)
    result = await action.run(db, context, ids)
    result.action = action.name
    if action.records_event and not result.confirm:
        await actor.record(db, f"admin_{action.name}", table=table.name, ids=ids,
                           count=result.count)
    return result


async def delete_row(
    db: AsyncSession, settings: Settings, table: Table, row_id: int, *, actor: Actor
) -> ActionResult:
    """The row's own Delete button: the table's delete action on one row."""
    action = table.delete_action
    if action is None:
        raise InvalidInput(f"Rows of {table.title} cannot be deleted here.")
    await get_row(db, table, row_id)
    return await run_action(db, settings, table, action.name, [str(row_id)], {}, actor=actor)
