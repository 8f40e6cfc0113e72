"""Every table of the admin panel, declared once (SPEC D1, D2).

``TABLES`` is the registry: per table its listed columns (SQL expressions, so a secret column is
never even selected), which of them are searchable and sortable, the allow-list of editable
fields with their converters, whether rows can be added or deleted, the default sort and the
group actions. The web layer has one set of routes and templates for all of them: a new table is
one ``Table(...)`` entry.

Every change is set-based (one or a few statements however many rows are ticked), refuses what
would lock the acting admin out, and records one ``admin_*`` event.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    String,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.db import Base, among
from electro.models import (
    AccountBlock,
    Backup,
    Category,
    Event,
    IpBlock,
    OneTimeKey,
    OutboxMail,
    Product,
    SearchRecord,
    User,
    UserSession,
)
from electro.services import backups, blocking, users
from electro.services.backups import BackupError
from electro.services.blocking import BlockError
from electro.services.events import Actor
from electro.services.mail import send_mail_to_users
from electro.services.paging import clamp, page_number
from electro.services.sessions import end_sessions, in_force

MAX_IDS = 10_000  # ticked rows per group action; the form and the IN list stay bounded
PER_PAGE = 25
MAX_PER_PAGE = 200
STALE = "This row was changed by someone else; reload it."


# ---------------------------------------------------------------- errors and results


class AdminError(Exception):
    """A refusal with a message for the admin (nothing was changed). A form shows ``problems``
    above its fields and ``errors`` beside them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.errors: dict[str, str] = {}
        self.problems: list[str] = [message]


class NotFound(AdminError):
    pass


class StaleRow(AdminError):
    def __init__(self) -> None:
        super().__init__(STALE)


class InvalidInput(AdminError):
    """Per-field messages (``errors``) and messages about the form as a whole (``problems``)."""

    def __init__(self, errors: dict[str, str], problems: list[str]) -> None:
        super().__init__(" ".join([*problems, *errors.values()]))
        self.errors, self.problems = errors, problems


class FieldError(ValueError):
    """Raised by a converter: the value is refused with this message."""


@dataclass
class ActionResult:
    message: str
    count: int = 0
    # Set when the action wants a second, confirmed post (it says what it would do), with the
    # label of the button that confirms.
    confirm: str = ""
    ids: list[int] = field(default_factory=list)
    action: str = ""


# ---------------------------------------------------------------- display and converters


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def show_money(cents: int | None) -> str:
    """1234 -> "12.34", exactly (integer arithmetic, no float)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def show_short(value: Any) -> str:
    text = show(value)
    return text if len(text) <= 60 else text[:59] + "…"


Parser = Callable[[AsyncSession, str], Awaitable[Any]]
_MONEY = re.compile(r"\d{1,7}(\.\d{1,2})?")  # fits a 32-bit integer of cents


def text(max_len: int, required: bool = True) -> Parser:
    async def parse(_db: AsyncSession, raw: str) -> str:
        value = raw.strip()
        if required and not value:
            raise FieldError("This field is required")
        if len(value) > max_len:
            raise FieldError(f"At most {max_len} characters")
        return value

    return parse


def money(required: bool = True) -> Parser:
    async def parse(_db: AsyncSession, raw: str) -> int | None:
        value = raw.strip()
        if not value and not required:
            return None
        if not _MONEY.fullmatch(value):
            raise FieldError("Enter a price like 12.99")
        return int(Decimal(value) * 100)  # Decimal: "0.29" is 29 cents, never 28.999…

    return parse


async def count(_db: AsyncSession, raw: str) -> int:
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise FieldError("Enter a whole number, 0 or more")
    return int(value)


async def yes_no(_db: AsyncSession, raw: str) -> bool:
    if raw not in ("yes", "no"):
        raise FieldError("Choose yes or no")
    return raw == "yes"


async def username(_db: AsyncSession, raw: str) -> str:
    try:
        return users.check_username(raw.strip())
    except users.UserError as exc:
        raise FieldError(str(exc)) from None


async def email(_db: AsyncSession, raw: str) -> str:
    try:
        return users.normalise_email(raw.strip())
    except users.UserError as exc:
        raise FieldError(str(exc)) from None


def parse_when(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        raise FieldError("Enter a date and time like 2026-12-31T18:00") from None
    return clock.naive_utc(moment).replace(microsecond=0)


async def block_end(_db: AsyncSession, raw: str) -> datetime:
    """A block's end: a date and time in the future (to end a block now, lift it)."""
    try:
        return blocking.check_until(parse_when(raw))
    except BlockError as exc:
        raise FieldError(str(exc)) from None


async def ip_address(_db: AsyncSession, raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise FieldError("Enter an IP address like 203.0.113.7") from None


async def category_by_name(db: AsyncSession, raw: str) -> int:
    name = raw.strip()
    found = await db.scalar(select(Category.id).where(func.lower(Category.name) == name.lower()))
    if found is None:
        raise FieldError(f"There is no category named {name!r}")
    return int(found)


# ---------------------------------------------------------------- the registry shape


@dataclass(frozen=True)
class Column:
    """A listed column: ``expr`` is what is selected (a model column or a correlated
    subquery such as the user's name), ``fmt`` how a cell shows it."""

    name: str
    label: str
    expr: Any
    fmt: Callable[[Any], str] = show


@dataclass(frozen=True)
class Field:
    """An editable field: posted as ``name`` (a listed column), written to ``column``."""

    name: str
    column: str
    parse: Parser
    input: str = "text"  # text | number | textarea | yes-no
    unique: bool = False  # ignoring case, among the other rows
    to_text: Callable[[Any], str] | None = None  # editor value, when it differs from the cell


GuardFn = Callable[[AsyncSession, "Actor", Sequence[int], str], Awaitable[None]]
ActionFn = Callable[[AsyncSession, "ActionContext", list[int]], Awaitable[ActionResult]]


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    run: ActionFn
    fields: tuple[str, ...] = ()  # extra inputs it reads: "until", "reason"
    records_event: bool = True  # False: the service it calls records the one admin_* event
    needs_rows: bool = True  # False: acts on the table as a whole (make a backup)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    model: type[Base]
    columns: tuple[Column, ...]
    searchable: tuple[str, ...]
    sortable: tuple[str, ...]
    default_sort: tuple[str, str]
    editable: tuple[Field, ...] = ()
    can_add: bool = False
    actions: tuple[Action, ...] = ()
    guard: GuardFn | None = None  # refuses actions that would lock the actor out

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.editable if f.name == name), None)

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    @property
    def can_delete(self) -> bool:
        """Rows have a Delete button exactly when the table offers the delete action."""
        return self.action(DELETE.name) is not None

    @property
    def action_fields(self) -> set[str]:
        return {name for action in self.actions for name in action.fields}


@dataclass
class ActionContext:
    settings: Settings
    table: Table
    actor: Actor
    form: Mapping[str, str]
    confirmed: bool


# ---------------------------------------------------------------- group actions


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


async def delete_rows(db: AsyncSession, table: Table, ids: Sequence[int]) -> int:
    """One DELETE. Rows still referred to by a RESTRICT foreign key (a category with products)
    are refused with a message naming the referring table, before anything is deleted."""
    for referring, fk_column in _restricting_keys(table.model):
        used = await db.scalar(
            select(func.count()).select_from(referring).where(among(db, fk_column, ids))
        )
        if used:
            raise AdminError(
                f"Cannot delete: {_plural(int(used), 'row')} of {referring.name} still "
                f"refer to {'it' if len(ids) == 1 else 'them'}."
            )
    try:
        async with db.begin_nested():  # a failed statement must not spoil the request's session
            result = await db.execute(
                delete(table.model).where(among(db, table.model.id, ids))  # type: ignore[attr-defined]
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:  # a referring row arrived after the check above
        raise AdminError("Cannot delete: other rows still refer to these.") from None
    return _rowcount(result)


def _restricting_keys(model: type[Base]) -> Iterable[tuple[Any, Any]]:
    """(table, column) pairs whose foreign key to ``model`` neither cascades nor nulls."""
    for other in Base.metadata.tables.values():
        for fk in other.foreign_keys:
            if fk.column.table is model.__table__ and fk.ondelete not in ("CASCADE", "SET NULL"):
                yield other, fk.parent


async def _delete(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await delete_rows(db, ctx.table, ids)
    return ActionResult(f"Deleted {_plural(n, 'row')}.", n)


async def _set_users(db: AsyncSession, ids: list[int], where: Any, **values: Any) -> int:
    result = await db.execute(
        update(User).where(among(db, User.id, ids), where)
        .values(version=User.version + 1, **values)  # open editors of these rows go stale
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def _activate(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await _set_users(db, ids, User.is_active.is_(False), is_active=True)
    return ActionResult(f"Activated {_plural(n, 'account')}.", n)


async def _deactivate(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await _set_users(db, ids, User.is_active.is_(True), is_active=False)
    ended = await end_sessions(db, among(db, UserSession.user_id, ids), "deactivated")
    return ActionResult(
        f"Deactivated {_plural(n, 'account')}; ended {_plural(ended, 'session')}.", n
    )


async def _delete_inactive(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    inactive = User.is_active.is_(False)
    if not ctx.confirmed:
        n = int(await db.scalar(
            select(func.count()).select_from(User).where(among(db, User.id, ids), inactive)
        ) or 0)
        return ActionResult(
            f"{n} of the {len(ids)} ticked accounts are inactive and will be deleted.",
            n, confirm=f"Yes, delete {n}" if n else "", ids=ids,
        )
    result = await db.execute(
        delete(User).where(among(db, User.id, ids), inactive)
        .execution_options(synchronize_session=False)
    )
    n = _rowcount(result)
    return ActionResult(f"Deleted {_plural(n, 'inactive account')}.", n)


# Rendered once with this mark where the username goes; the database fills in each name.
async def _send_test_mail(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await send_mail_to_users(db, ctx.settings, "test", among(db, User.id, ids))
    return ActionResult(f"Queued {_plural(n, 'test e-mail')}.", n)


async def _make_admin(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await _set_users(db, ids, User.is_admin.is_(False), is_admin=True)
    return ActionResult(f"Made {_plural(n, 'account')} admin.", n)


async def _remove_admin(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await _set_users(db, ids, User.is_admin.is_(True), is_admin=False)
    return ActionResult(f"Removed admin rights from {_plural(n, 'account')}.", n)


async def _lift(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    """Account or IP blocks in force: lifted now. Blocks already over keep their own end as
    history (the lift job dates them at their ``until``)."""
    model: Any = ctx.table.model
    now = clock.now()
    result = await db.execute(
        update(model).where(among(db, model.id, ids), in_force(model, now))
        .values(lifted_at=now).execution_options(synchronize_session=False)
    )
    n = _rowcount(result)
    return ActionResult(f"Lifted {_plural(n, 'block')}.", n)


async def _end_sessions(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await end_sessions(db, among(db, UserSession.id, ids), "ended_by_admin")
    return ActionResult(f"Ended {_plural(n, 'session')}.", n)


async def _block_accounts(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    try:
        until = parse_when(ctx.form.get("until", ""))
        n = await blocking.block_accounts(db, ctx.settings, ids, until, ctx.form.get("reason", ""),
                                          ctx.actor)
    except (FieldError, BlockError) as exc:
        raise AdminError(str(exc)) from None
    return ActionResult(
        f"Blocked {_plural(n, 'account')} until {show(until)} UTC; their sessions ended.", n)


async def _lift_account_blocks(
    db: AsyncSession, ctx: ActionContext, ids: list[int]
) -> ActionResult:
    n = await blocking.lift_account_blocks(db, ids, ctx.actor)
    return ActionResult(f"Lifted {_plural(n, 'block')}.", n)


async def _make_backup(db: AsyncSession, ctx: ActionContext, _ids: list[int]) -> ActionResult:
    try:
        backup = await backups.create_in_request(db, ctx.settings, actor=ctx.actor)
    except BackupError as exc:
        raise AdminError(f"The backup failed: {exc}") from None
    return ActionResult(f"Backup {backup.filename} taken ({backup.size_bytes:,} bytes).", 1)


async def _restore(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    """Replaces every table and signs everyone out: asked once more, on the server."""
    if len(ids) != 1:
        raise AdminError("Tick exactly one backup to restore.")
    try:
        backup = await backups.get_backup(db, ids[0])
        if not ctx.confirmed:
            return ActionResult(
                f"Restoring {backup.filename} replaces every table with the data of "
                f"{show(backup.created_at)} UTC; everyone, you too, signs in again.",
                1, confirm="Yes, restore it", ids=ids,
            )
        restored = await backups.restore_in_request(
            db, ctx.settings, backups.backup_path(ctx.settings, backup), actor=ctx.actor
        )
    except BackupError as exc:
        raise AdminError(f"Nothing was restored: {exc}") from None
    return ActionResult(
        f"Restored {backup.filename} ({restored.manifest.total_rows:,} rows); the database as "
        f"it was just before is in {restored.safety_backup.filename}.", 1)


# Actions that would lock the acting admin out if their own account were among the rows, and
# the verb that says so.
LOCKING_OUT = {"deactivate": "deactivate", "delete": "delete", "block_accounts": "block",
               "remove_admin": "remove admin rights from"}


async def guard_users(db: AsyncSession, actor: Actor, ids: Sequence[int], action: str) -> None:
    """Never lock the acting admin out, and always leave one active admin."""
    if action not in LOCKING_OUT:
        return
    if actor.id in ids:
        raise AdminError(f"You cannot {LOCKING_OUT[action]} your own account.")
    remaining = await db.scalar(
        select(func.count()).select_from(User)
        .where(User.is_admin.is_(True), User.is_active.is_(True),
               ~among(db, User.id, ids))
    )
    if not remaining:
        raise AdminError("That would leave no active admin; make someone else admin first.")


DELETE = Action("delete", "Delete rows", _delete)
LIFT = Action("lift", "Lift blocks", _lift)


def _user_name(user_id: Any) -> Any:
    """The username for a user id column, as a correlated subquery (listable, searchable)."""
    return select(User.username).where(User.id == user_id).scalar_subquery()


# ---------------------------------------------------------------- the tables

_users = Table(
    name="users", title="Users", model=User,
    columns=(
        Column("username", "Username", User.username),
        Column("email", "E-mail", User.email),
        Column("is_active", "Active", User.is_active),
        Column("is_admin", "Admin", User.is_admin),
        Column("failed_logins", "Failed log-ins", User.failed_logins),
        Column("locked_until", "Locked until", User.locked_until),
        Column("last_login_at", "Last log-in", User.last_login_at),
        Column("created_at", "Created", User.created_at),
    ),
    searchable=("username", "email"),
    sortable=("username", "email", "is_active", "is_admin", "failed_logins", "locked_until",
              "last_login_at", "created_at"),
    default_sort=("created_at", "desc"),
    editable=(
        Field("username", "username", username, unique=True),
        Field("email", "email", email, unique=True),
        Field("is_active", "is_active", yes_no, input="yes-no"),
    ),
    actions=(
        Action("activate", "Activate", _activate),
        Action("deactivate", "Deactivate (ends their sessions)", _deactivate),
        DELETE,
        Action("delete_inactive", "Delete inactive accounts", _delete_inactive),
        Action("send_test_mail", "Send a test e-mail", _send_test_mail),
        Action("make_admin", "Make admin", _make_admin),
        Action("remove_admin", "Remove admin", _remove_admin),
        # The blocking service records admin_block_accounts / admin_lift_account_blocks itself.
        Action("block_accounts", "Block until the date below (ends their sessions)",
               _block_accounts, fields=("until", "reason"), records_event=False),
        Action("lift_account_blocks", "Lift their blocks", _lift_account_blocks,
               records_event=False),
    ),
    guard=guard_users,
)

_category_name = (
    select(Category.name).where(Category.id == Product.category_id).scalar_subquery()
)
_products = Table(
    name="products", title="Products", model=Product,
    columns=(
        Column("name", "Name", Product.name),
        Column("company", "Company", Product.company),
        Column("category", "Category", _category_name),
        Column("price", "Price", Product.price_cents, show_money),
        Column("old_price", "Old price", Product.old_price_cents, show_money),
        Column("stock", "Stock", Product.stock),
        Column("description", "Description", Product.description, show_short),
        Column("updated_at", "Updated", Product.updated_at),
    ),
    searchable=("name", "company", "category", "description"),
    sortable=("name", "company", "category", "price", "old_price", "stock", "updated_at"),
    default_sort=("name", "asc"),
    editable=(
        Field("name", "name", text(200)),
        Field("company", "company", text(120, required=False)),
        Field("category", "category_id", category_by_name),
        Field("price", "price_cents", money(), input="number"),
        Field("old_price", "old_price_cents", money(required=False), input="number"),
        Field("stock", "stock", count, input="number"),
        Field("description", "description", text(5000, required=False), input="textarea",
              to_text=show),
    ),
    can_add=True,
    actions=(DELETE,),
)

_categories = Table(
    name="categories", title="Categories", model=Category,
    columns=(Column("name", "Name", Category.name),
             Column("created_at", "Created", Category.created_at)),
    searchable=("name",), sortable=("name", "created_at"), default_sort=("name", "asc"),
    editable=(Field("name", "name", text(80), unique=True),),
    can_add=True, actions=(DELETE,),
)

_account_blocks = Table(
    name="account_blocks", title="Account blocks", model=AccountBlock,
    columns=(
        Column("user", "Account", _user_name(AccountBlock.user_id)),
        Column("until", "Until", AccountBlock.until),
        Column("reason", "Reason", AccountBlock.reason),
        Column("created_by", "By", _user_name(AccountBlock.created_by_id)),
        Column("created_at", "Created", AccountBlock.created_at),
        Column("lifted_at", "Lifted", AccountBlock.lifted_at),
    ),
    searchable=("user", "reason", "created_by"),
    sortable=("user", "until", "reason", "created_by", "created_at", "lifted_at"),
    default_sort=("created_at", "desc"),
    editable=(Field("until", "until", block_end), Field("reason", "reason", text(500, False))),
    actions=(LIFT, DELETE),
)

_ip_blocks = Table(
    name="ip_blocks", title="IP blocks", model=IpBlock,
    columns=(
        Column("ip", "IP address", IpBlock.ip),
        Column("until", "Until", IpBlock.until),
        Column("reason", "Reason", IpBlock.reason),
        Column("created_by", "By", _user_name(IpBlock.created_by_id)),
        Column("created_at", "Created", IpBlock.created_at),
        Column("lifted_at", "Lifted", IpBlock.lifted_at),
    ),
    searchable=("ip", "reason", "created_by"),
    sortable=("ip", "until", "reason", "created_by", "created_at", "lifted_at"),
    default_sort=("created_at", "desc"),
    editable=(Field("ip", "ip", ip_address), Field("until", "until", block_end),
              Field("reason", "reason", text(500, False))),
    can_add=True, actions=(LIFT, DELETE),
)

_sessions = Table(
    name="sessions", title="Sessions", model=UserSession,
    columns=(
        Column("user", "Account", _user_name(UserSession.user_id)),
        Column("ip", "IP address", UserSession.ip),
        Column("user_agent", "Device", UserSession.user_agent, show_short),
        Column("created_at", "Started", UserSession.created_at),
        Column("last_seen_at", "Last seen", UserSession.last_seen_at),
        Column("ended_at", "Ended", UserSession.ended_at),
        Column("end_reason", "Why", UserSession.end_reason),
    ),
    searchable=("user", "ip", "user_agent", "end_reason"),
    sortable=("user", "ip", "created_at", "last_seen_at", "ended_at", "end_reason"),
    default_sort=("last_seen_at", "desc"),
    actions=(Action("end", "End sessions", _end_sessions), DELETE),
)

_one_time_keys = Table(
    name="one_time_keys", title="One-time keys", model=OneTimeKey,
    columns=(  # metadata only: never key_hash nor a pending registration's password_hash
        Column("purpose", "Purpose", OneTimeKey.purpose),
        Column("user", "Account", func.coalesce(_user_name(OneTimeKey.user_id),
                                                 OneTimeKey.username)),
        Column("email", "E-mail", OneTimeKey.email),
        Column("attempts", "Attempts", OneTimeKey.attempts),
        Column("expires_at", "Expires", OneTimeKey.expires_at),
        Column("created_at", "Created", OneTimeKey.created_at),
        Column("used_at", "Used", OneTimeKey.used_at),
    ),
    searchable=("purpose", "user", "email"),
    sortable=("purpose", "user", "email", "attempts", "expires_at", "created_at", "used_at"),
    default_sort=("created_at", "desc"),
    actions=(DELETE,),
)

_searches = Table(
    name="searches", title="Searches", model=SearchRecord,
    columns=(  # not client_hash: it identifies a client
        Column("query", "Query", SearchRecord.query),
        Column("results", "Results", SearchRecord.results),
        Column("hour_start", "Hour", SearchRecord.hour_start),
        Column("created_at", "Time", SearchRecord.created_at),
    ),
    searchable=("query",), sortable=("query", "results", "hour_start", "created_at"),
    default_sort=("created_at", "desc"),
    actions=(DELETE,),
)

_events = Table(
    name="events", title="Events", model=Event,
    columns=(
        Column("created_at", "Time", Event.created_at),
        Column("type", "Type", Event.type),
        Column("actor", "Actor", Event.actor),
        Column("actor_id", "Actor id", Event.actor_id),
        Column("ip", "IP address", Event.ip),
        Column("path", "Path", Event.path),
        Column("details", "Details", Event.details, show_short),
    ),
    searchable=("type", "actor", "ip", "path"),
    sortable=("created_at", "type", "actor", "actor_id", "ip", "path"),
    default_sort=("created_at", "desc"),
    # No delete: the audit trail; only the retention job deletes events.
)

_outbox = Table(
    name="outbox", title="Outbox", model=OutboxMail,
    columns=(  # not the body: a queued mail may carry a clear one-time key
        Column("to_addr", "To", OutboxMail.to_addr),
        Column("subject", "Subject", OutboxMail.subject),
        Column("template", "Template", OutboxMail.template),
        Column("status", "Status", OutboxMail.status),
        Column("attempts", "Attempts", OutboxMail.attempts),
        Column("next_attempt_at", "Next attempt", OutboxMail.next_attempt_at),
        Column("last_error", "Last error", OutboxMail.last_error, show_short),
        Column("created_at", "Queued", OutboxMail.created_at),
        Column("sent_at", "Sent", OutboxMail.sent_at),
    ),
    searchable=("to_addr", "subject", "template", "status"),
    sortable=("to_addr", "subject", "template", "status", "attempts", "next_attempt_at",
              "created_at", "sent_at"),
    default_sort=("created_at", "desc"),
    actions=(DELETE,),
)

_backups = Table(
    name="backups", title="Backups", model=Backup,
    columns=(
        Column("filename", "File", Backup.filename),
        Column("created_at", "Taken", Backup.created_at),
        Column("size_bytes", "Bytes", Backup.size_bytes),
        Column("sha256", "SHA-256", Backup.sha256),
        Column("schema_revision", "Schema", Backup.schema_revision),
        Column("row_counts", "Rows", Backup.row_counts, show_short),
    ),
    searchable=("filename", "sha256"), sortable=("filename", "created_at", "size_bytes"),
    default_sort=("created_at", "desc"),
    # No delete: a backup row and its file go together; the backups service owns both.
    # The backups service records its own events (backup_created, backup_restored...).
    actions=(Action("make_backup", "Make a backup now", _make_backup, records_event=False,
                    needs_rows=False),
             Action("restore", "Restore the ticked backup", _restore, records_event=False)),
)

TABLES: dict[str, Table] = {t.name: t for t in (
    _users, _products, _categories, _account_blocks, _ip_blocks, _sessions, _one_time_keys,
    _searches, _events, _outbox, _backups,
)}


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise NotFound(f"There is no table {name!r}.") from None


# ---------------------------------------------------------------- listing


@dataclass
class Listing:
    table: Table
    rows: list[Mapping[str, Any]]
    total: int
    page: int
    per_page: int
    pages: int
    q: str
    sort: str
    direction: str

    def query(self, **change: Any) -> dict[str, Any]:
        """The list's URL parameters, with some changed (for links)."""
        args = {"q": self.q, "sort": self.sort, "dir": self.direction, "page": self.page}
        args.update(change)
        return {k: v for k, v in args.items() if v not in ("", None)}


def _select_rows(table: Table) -> Any:
    model: Any = table.model
    return select(model.id.label("id"), *(c.expr.label(c.name) for c in table.columns))


def _search(table: Table, q: str) -> Any:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(
        func.lower(cast(table.column(name).expr, String)).like(pattern, escape="\\")
        for name in table.searchable
    ))


async def list_rows(
    db: AsyncSession, table: Table, q: str = "", sort: str | None = None,
    direction: str | None = None, page: Any = 1, per_page: int = PER_PAGE,
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
    expr = table.column(sort).expr
    model: Any = table.model
    order = (expr.asc(), model.id.asc()) if direction == "asc" else (expr.desc(), model.id.desc())
    rows = (await db.execute(
        query.order_by(*order).limit(per_page).offset((page - 1) * per_page)
    )).mappings().all()
    return Listing(table, [dict(r) for r in rows], total, page, per_page, pages, q, sort,
                   direction)


async def get_row(db: AsyncSession, table: Table, row_id: int) -> Mapping[str, Any]:
    model: Any = table.model
    row = (await db.execute(_select_rows(table).where(model.id == row_id))).mappings().first()
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


# ---------------------------------------------------------------- edit and add


def editor_values(table: Table, row: Mapping[str, Any]) -> dict[str, str]:
    """What the editor's inputs start with."""
    return {f.name: (f.to_text or table.column(f.name).fmt)(row[f.name]) for f in table.editable}


def _versioned(table: Table) -> Any:
    return table.model.__mapper__.version_id_col  # type: ignore[attr-defined]


async def row_version(db: AsyncSession, table: Table, row_id: int) -> str:
    """The token an editor carries. Users and products have a version column; other tables get
    a hash of the stored editable values, so an edit made meanwhile is noticed all the same."""
    model: Any = table.model
    version_col = _versioned(table)
    if version_col is not None:
        current = await db.scalar(select(version_col).where(model.id == row_id))
        return "" if current is None else str(current)
    row = await _edit_values(db, table, row_id)
    return "" if row is None else _hash_values(row)


async def _edit_values(db: AsyncSession, table: Table, row_id: int) -> tuple[Any, ...] | None:
    """The stored values of the editable columns (what a version hash covers)."""
    model: Any = table.model
    row = (await db.execute(select(*_edit_columns(table)).where(model.id == row_id))).first()
    return None if row is None else tuple(row)


def _edit_columns(table: Table) -> list[Any]:
    return [getattr(table.model, f.column) for f in table.editable]


def _hash_values(values: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


async def _convert(
    db: AsyncSession, table: Table, form: Mapping[str, str], row_id: int | None,
    ignore: Iterable[str], require_all: bool,
) -> dict[str, Any]:
    """Allow-listed fields only: anything else posted is refused by name, and nothing changes."""
    errors: dict[str, str] = {}
    problems = [f"Field {name} cannot be edited." for name in form
                if name not in ignore and table.field(name) is None]
    values: dict[str, Any] = {}
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
        raise InvalidInput(errors, problems)
    return values


async def _taken(db: AsyncSession, table: Table, f: Field, value: Any, row_id: int | None) -> bool:
    model: Any = table.model
    column = getattr(model, f.column)
    query = select(model.id).where(func.lower(column) == str(value).lower())
    if row_id is not None:
        query = query.where(model.id != row_id)
    return await db.scalar(query.limit(1)) is not None


FORM_META = ("csrf_token", "version")  # posted by every editor, not row data


async def update_row(
    db: AsyncSession, table: Table, row_id: int, form: Mapping[str, str], version: str,
    *, actor: Actor,
) -> Mapping[str, Any]:
    """Save an inline edit; one compare-and-set UPDATE, so a row changed since the editor
    opened is refused with StaleRow, never silently overwritten."""
    if not table.editable:
        raise AdminError(f"Rows of {table.title} are not editable.")
    model: Any = table.model
    unchanged = await get_row(db, table, row_id)  # NotFound before any other message
    values = await _convert(db, table, form, row_id, FORM_META, require_all=False)
    if not values:
        return unchanged
    version_col = _versioned(table)
    where = [model.id == row_id]
    if version_col is not None:
        if not version.isdigit():
            raise StaleRow()
        where.append(version_col == int(version))
        values[version_col.key] = version_col + 1
    else:
        row = await _edit_values(db, table, row_id)
        if row is None or _hash_values(row) != version:
            raise StaleRow()
        where += [col.is_not_distinct_from(old) for col, old in zip(
            _edit_columns(table), row, strict=True)]
    try:
        async with db.begin_nested():
            result = await db.execute(
                update(model).where(and_(*where)).values(**values)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:  # a unique value taken by a concurrent save
        raise AdminError("That value was just taken by another row.") from None
    if _rowcount(result) != 1:
        raise StaleRow()
    await actor.record(db, "admin_update", table=table.name, ids=[row_id],
                        fields=sorted(f.name for f in table.editable if f.column in values))
    return await get_row(db, table, row_id)


async def add_row(
    db: AsyncSession, table: Table, form: Mapping[str, str], *, actor: Actor
) -> Mapping[str, Any]:
    if not table.can_add:
        raise AdminError(f"Rows cannot be added to {table.title} here.")
    values = await _convert(db, table, form, None, ("csrf_token",), require_all=True)
    if hasattr(table.model, "created_by_id"):
        values["created_by_id"] = actor.id
    model: Any = table.model
    try:
        async with db.begin_nested():
            row_id = (await db.execute(
                insert(model).values(**values).returning(model.id))).scalar_one()
    except IntegrityError:
        raise AdminError("That value was just taken by another row.") from None
    await actor.record(db, "admin_add", table=table.name, ids=[row_id])
    return await get_row(db, table, row_id)


# ---------------------------------------------------------------- running a group action


def parse_ids(raw: Iterable[str]) -> list[int]:
    """Distinct positive ids; junk is dropped; more than MAX_IDS is refused."""
    ids = sorted({int(v) for v in raw if v.isascii() and v.isdigit() and len(v) <= 18})
    if len(ids) > MAX_IDS:
        raise AdminError(f"At most {MAX_IDS:,} rows at a time; {len(ids):,} were ticked.")
    return ids


async def run_action(
    db: AsyncSession, settings: Settings, table: Table, action_name: str, raw_ids: Iterable[str],
    form: Mapping[str, str], *, actor: Actor, confirmed: bool = False,
) -> ActionResult:
    """Re-read the ticked ids through the table, guard, run, and record one event."""
    action = table.action(action_name)
    if action is None:
        raise AdminError("Choose an action.")
    ids = parse_ids(raw_ids)
    model: Any = table.model
    if ids:
        ids = list((await db.scalars(
            select(model.id).where(among(db, model.id, ids)).order_by(model.id)
        )).all())
    if not ids and action.needs_rows:
        raise AdminError("Tick at least one row.")
    if table.guard is not None:
        await table.guard(db, actor, ids, action.name)
    result = await action.run(db, ActionContext(settings, table, actor, form, confirmed), ids)
    result.action = action.name
    if action.records_event and not result.confirm:
        await actor.record(db, f"admin_{action.name}", table=table.name, ids=ids,
                            count=result.count)
    return result


async def delete_row(
    db: AsyncSession, settings: Settings, table: Table, row_id: int, *, actor: Actor
) -> ActionResult:
    """The row's own Delete button: the "delete" group action on one row."""
    if not table.can_delete:
        raise AdminError(f"Rows of {table.title} cannot be deleted here.")
    await get_row(db, table, row_id)
    return await run_action(db, settings, table, DELETE.name, [str(row_id)], {}, actor=actor)
