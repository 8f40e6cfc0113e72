"""The shape of an admin table declaration, read like configuration (as sqladmin's ``ModelView``
or Django's ``ModelAdmin``): a ``Table`` names its model, the columns it lists (SQL expressions,
so a secret column is never even selected), which of them are searchable and sortable, the
fields an admin may edit, and the group actions it offers, each with the inputs it reads.

The web layer has one set of routes and templates for every table, and renders everything from
these declarations: adding a table or an action is one declaration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import SQLColumnExpression
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from electro.config import Settings
from electro.db import Identified
from electro.services.admin.fields import Parser, show
from electro.services.events import Actor

Cell = Callable[[Any], str]  # a stored value as a cell shows it
OwnConnections = Callable[[], Awaitable[AsyncEngine]]


@dataclass(frozen=True)
class Column:
    """A listed column: ``expr`` is what is selected (a model column or a correlated subquery
    such as the user's name), ``fmt`` how a cell shows it."""

    name: str
    label: str
    expr: SQLColumnExpression[Any]
    fmt: Cell = show


@dataclass(frozen=True)
class Field:
    """An editable field: posted as ``name`` (a listed column), written to ``column`` (an
    attribute of the table's model)."""

    name: str
    column: str
    parse: Parser
    input: str = "text"  # text | number | textarea | yes-no
    unique: bool = False  # ignoring case, among the other rows
    to_text: Cell | None = None  # editor value, when it differs from the cell


@dataclass(frozen=True)
class ActionInput:
    """An input a group action reads besides the ticked rows; the actions form renders it."""

    name: str
    label: str
    type: str = "text"  # the <input type>
    max_length: int | None = None


@dataclass
class ActionResult:
    message: str
    count: int = 0
    # Set when the action wants a second, confirmed post (it says what it would do), with the
    # label of the button that confirms.
    confirm: str = ""
    ids: list[int] = field(default_factory=list)
    action: str = ""


@dataclass
class ActionContext:
    settings: Settings
    table: Table
    actor: Actor
    inputs: Mapping[str, str]  # the values of the action's declared inputs, those only
    confirmed: bool
    # For work on connections of its own (a backup): ends the caller's transaction, so it
    # holds no lock that work would wait for, and gives the engine. None: the caller offers
    # none (a script with a session of its own), and such an action refuses.
    own_connections: OwnConnections | None = None


ActionFn = Callable[[AsyncSession, ActionContext, list[int]], Awaitable[ActionResult]]
EditCheck = Callable[[AsyncSession, Actor, int, Mapping[str, object]], Awaitable[None]]


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    run: ActionFn
    inputs: tuple[ActionInput, ...] = ()
    records_event: bool = True  # False: the service it calls records the one admin_* event
    needs_rows: bool = True  # False: acts on the table as a whole (make a backup)
    deletes_rows: bool = False  # True: each row's own Delete button runs it on that row
    # The template of its confirmation, when that is not a button posting the action again
    # (restore: the backups page's typed-RESTORE form).
    confirmation: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    model: type[Identified]
    columns: tuple[Column, ...]
    searchable: tuple[str, ...]
    sortable: tuple[str, ...]
    default_sort: tuple[str, str]
    editable: tuple[Field, ...] = ()
    can_add: bool = False
    actions: tuple[Action, ...] = ()
    # Refuses an inline edit that the table's own rules forbid (users: the lock-out rule).
    check_edit: EditCheck | None = None

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.editable if f.name == name), None)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    @property
    def delete_action(self) -> Action | None:
        """What a row's Delete button runs; rows have the button exactly when there is one."""
        return next((a for a in self.actions if a.deletes_rows), None)

    @property
    def can_delete(self) -> bool:
        return self.delete_action is not None

    @property
    def action_inputs(self) -> list[ActionInput]:
        """The inputs of every action, each name once (actions may share one)."""
        inputs: dict[str, ActionInput] = {}
        for action in self.actions:
            for one in action.inputs:
                inputs.setdefault(one.name, one)
        return list(inputs.values())

