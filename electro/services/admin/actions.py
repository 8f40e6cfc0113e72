"""The group actions a table can offer. Each is one ``Action`` naming what it runs and the
inputs it reads; a table lists the ones it offers. Every action is set-based: one or a few
statements however many rows are ticked. Actions on accounts call ``accounts``, which holds
them to the lock-out rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Column, Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.db import Base, Identified, among
from electro.errors import DomainError, FieldError, InvalidInput
from electro.models import AccountBlock, IpBlock, User, UserSession
from electro.services import backups, blocking, orders, two_factor
from electro.services.admin import accounts
from electro.services.admin.fields import parse_when, plural, show
from electro.services.admin.registry import (
    Action,
    ActionContext,
    ActionFn,
    ActionInput,
    ActionResult,
)
from electro.services.mail import send_mail_to_users
from electro.services.sessions import end_sessions, in_force

# ---------------------------------------------------------------- any table


async def delete_rows(db: AsyncSession, model: type[Identified], ids: Sequence[int]) -> int:
    """One DELETE. Rows still referred to by a RESTRICT foreign key (a category with products)
    are refused with a message naming the referring table, before anything is deleted."""
    for referring, fk_column in _restricting_keys(model):
        used = await db.scalar(
            select(func.count()).select_from(referring).where(among(db, fk_column, ids)))
        if used:
            raise InvalidInput(
                f"Cannot delete: {plural(used, 'row')} of {referring.name} still refer to "
                f"{'it' if len(ids) == 1 else 'them'}.")
    try:
        async with db.begin_nested():  # a failed statement must not spoil the request's session
            result = await db.execute(
                delete(model).where(among(db, model.id, ids))
                .execution_options(synchronize_session=False))
    except IntegrityError:  # a referring row arrived after the check above
        raise InvalidInput("Cannot delete: other rows still refer to these.") from None
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _restricting_keys(model: type[Identified]) -> Iterable[tuple[Table, Column[object]]]:
    """(table, column) pairs whose foreign key to ``model`` neither cascades nor nulls."""
    for other in Base.metadata.tables.values():
        for fk in other.foreign_keys:
            if fk.column.table is model.__table__ and fk.ondelete not in ("CASCADE", "SET NULL"):
                yield other, fk.parent


async def _delete(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await delete_rows(db, ctx.table.model, ids)
    return ActionResult(f"Deleted {plural(n, 'row')}.", n)


async def _lift(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    """Account or IP blocks in force: lifted now. Blocks already over keep their own end as
    history (the lift job dates them at their ``until``)."""
    model = AccountBlock if ctx.table.model is AccountBlock else IpBlock
    now = clock.now()
    result = await db.execute(
        update(model).where(among(db, model.id, ids), in_force(model, now))
        .values(lifted_at=now).execution_options(synchronize_session=False))
    n = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return ActionResult(f"Lifted {plural(n, 'block')}.", n)


async def _end_sessions(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await end_sessions(db, among(db, UserSession.id, ids), "ended_by_admin")
    return ActionResult(f"Ended {plural(n, 'session')}.", n)


DELETE = Action("delete", "Delete rows", _delete, deletes_rows=True)
LIFT = Action("lift", "Lift blocks", _lift)
END_SESSIONS = Action("end", "End sessions", _end_sessions)


# ---------------------------------------------------------------- accounts


async def _activate(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await accounts.activate(db, ids)
    return ActionResult(f"Activated {plural(n, 'account')}.", n)


async def _deactivate(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n, ended = await accounts.deactivate(db, ids, ctx.actor)
    return ActionResult(
        f"Deactivated {plural(n, 'account')}; ended {plural(ended, 'session')}.", n)


async def _delete_accounts(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await accounts.delete_accounts(db, ids, ctx.actor)
    return ActionResult(f"Deleted {plural(n, 'row')}.", n)


async def _delete_inactive(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    if not ctx.confirmed:
        n = await accounts.count_inactive(db, ids)
        return ActionResult(
            f"{n} of the {len(ids)} ticked accounts are inactive and will be deleted.",
            n, confirm=f"Yes, delete {n}" if n else "", ids=ids)
    n = await accounts.delete_inactive(db, ids)
    return ActionResult(f"Deleted {plural(n, 'inactive account')}.", n)


async def _send_test_mail(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await send_mail_to_users(db, ctx.settings, "test", among(db, User.id, ids))
    return ActionResult(f"Queued {plural(n, 'test e-mail')}.", n)


async def _make_admin(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await accounts.make_admin(db, ids)
    return ActionResult(f"Made {plural(n, 'account')} admin.", n)


async def _remove_admin(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    n = await accounts.remove_admin(db, ids, ctx.actor)
    return ActionResult(f"Removed admin rights from {plural(n, 'account')}.", n)


async def _block_accounts(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
    try:
        until = parse_when(ctx.inputs["until"])
        n = await blocking.block_accounts(db, ctx.settings, ids, until, ctx.inputs["reason"],
                                          ctx.actor)
    except FieldError as exc:
        raise InvalidInput(errors={"until": str(exc)}) from None
    return ActionResult(
        f"Blocked {plural(n, 'account')} until {show(until)} UTC; their sessions ended.", n)


async def _lift_account_blocks(
    db: AsyncSession, ctx: ActionContext, ids: list[int]
) -> ActionResult:
    n = await blocking.lift_account_blocks(db, ids, ctx.actor)
    return ActionResult(f"Lifted {plural(n, 'block')}.", n)


async def _reset_two_factor(
    db: AsyncSession, ctx: ActionContext, ids: list[int]
) -> ActionResult:
    n = await two_factor.reset(db, ctx.settings, ids, ctx.actor)
    return ActionResult(f"Reset two-factor of {plural(n, 'account')}; they set it up again.", n)


ACTIVATE = Action("activate", "Activate", _activate)
DEACTIVATE = Action("deactivate", "Deactivate (ends their sessions)", _deactivate)
DELETE_ACCOUNTS = Action("delete", "Delete rows", _delete_accounts, deletes_rows=True)
DELETE_INACTIVE = Action("delete_inactive", "Delete inactive accounts", _delete_inactive)
SEND_TEST_MAIL = Action("send_test_mail", "Send a test e-mail", _send_test_mail)
MAKE_ADMIN = Action("make_admin", "Make admin", _make_admin)
REMOVE_ADMIN = Action("remove_admin", "Remove admin", _remove_admin)
# The blocking service records admin_block_accounts / admin_lift_account_blocks itself.
BLOCK_ACCOUNTS = Action(
    "block_accounts", "Block until the date below (ends their sessions)", _block_accounts,
    inputs=(ActionInput("until", "Until", type="datetime-local"),
            ActionInput("reason", "Reason", max_length=blocking.MAX_REASON)),
    records_event=False)
# The two-factor service records two_factor_reset itself (and mails each owner).
RESET_TWO_FACTOR = Action("reset_two_factor", "Reset two-factor (a lost phone)",
                          _reset_two_factor, records_event=False)
LIFT_ACCOUNT_BLOCKS = Action("lift_account_blocks", "Lift their blocks", _lift_account_blocks,
                             records_event=False)


# ---------------------------------------------------------------- backups


async def _make_backup(_db: AsyncSession, ctx: ActionContext, _ids: list[int]) -> ActionResult:
    if ctx.own_connections is None:
        raise DomainError("A backup works on connections of its own; none were offered.")
    try:
        backup = await backups.create_backup(await ctx.own_connections(), ctx.settings,
                                             actor=ctx.actor)
    except backups.BackupError as exc:
        raise DomainError(f"The backup failed: {exc}") from None
    return ActionResult(f"Backup {backup.filename} taken ({backup.size_bytes:,} bytes).", 1)


async def _ask_to_restore(db: AsyncSession, _ctx: ActionContext, ids: list[int]) -> ActionResult:
    """Only asks: the restore itself is the backups page's, with its typed confirmation and
    its refusal events (one path, the safer one)."""
    if len(ids) != 1:
        raise InvalidInput("Tick exactly one backup to restore.")
    backup = await backups.get_backup(db, ids[0])
    return ActionResult(
        f"Restoring {backup.filename} replaces every table with the data of "
        f"{show(backup.created_at)} UTC; everyone, you too, signs in again.",
        1, confirm="Restore", ids=ids)


# The backups service records its own events (backup_created, backup_restored...).
MAKE_BACKUP = Action("make_backup", "Make a backup now", _make_backup, records_event=False,
                     needs_rows=False)
RESTORE = Action("restore", "Restore the ticked backup", _ask_to_restore, records_event=False,
                 confirmation="partials/admin_restore_form.html")


# ---------------------------------------------------------------- orders


def _to_status(status: str, done: str) -> ActionFn:
    """An action moving the ticked orders to ``status`` (the orders service mails each shopper
    and records the event; a move the state machine forbids refuses the whole action)."""

    async def run(db: AsyncSession, ctx: ActionContext, ids: list[int]) -> ActionResult:
        n = await orders.change_status(db, ctx.settings, ids, status, ctx.actor)
        return ActionResult(f"{done} {plural(n, 'order')}; each shopper was mailed.", n)

    return run


MARK_PAID = Action("mark_paid", "Mark paid", _to_status(orders.PAID, "Marked paid"),
                   records_event=False)
MARK_SHIPPED = Action("mark_shipped", "Mark shipped",
                      _to_status(orders.SHIPPED, "Marked shipped"), records_event=False)
CANCEL_ORDERS = Action("cancel", "Cancel (gives the stock back)",
                       _to_status(orders.CANCELLED, "Cancelled"), records_event=False)
