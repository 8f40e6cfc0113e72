"""What an admin does to accounts, and the one rule every such change goes through.

The rule (README, SPEC D2): an admin never deactivates, demotes, blocks or deletes their own
account, and one active admin always remains. ``keep_an_admin`` is that rule; the group actions,
the inline edit (``check_edit``), the blocking service and any script call it before they
change anything. Every change here is set-based: one or a few statements however many ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro.db import among
from electro.errors import InvalidInput
from electro.models import User, UserSession
from electro.services.events import Actor
from electro.services.sessions import end_sessions


class LockOut(InvalidInput):
    """A change refused because it would lock the acting admin out or leave no active admin."""


async def keep_an_admin(
    db: AsyncSession, actor: Actor, user_ids: Sequence[int], verb: str
) -> None:
    """Refuse to ``verb`` (deactivate, delete, block, remove admin rights from) these accounts
    when the actor's own is among them, or when they hold the last active admins. An actor that
    is no account (a script) is held to the second half."""
    if actor.id is not None and actor.id in user_ids:
        raise LockOut(f"You cannot {verb} your own account.")
    ticked = among(db, User.id, user_ids)
    affected, remaining = (await db.execute(
        select(func.count().filter(ticked), func.count().filter(~ticked))
        .where(User.is_admin.is_(True), User.is_active.is_(True))
    )).one()
    if affected and not remaining:
        raise LockOut("That would leave no active admin; make someone else admin first.")


async def check_edit(
    db: AsyncSession, actor: Actor, user_id: int, values: Mapping[str, object]
) -> None:
    """An inline edit of an account is held to the rule like every other path."""
    if values.get("is_active") is False:
        await keep_an_admin(db, actor, [user_id], "deactivate")


async def _set(
    db: AsyncSession, ids: Sequence[int], where: ColumnElement[bool], **values: bool
) -> int:
    result = await db.execute(
        update(User).where(among(db, User.id, ids), where)
        .values(version=User.version + 1, **values)  # open editors of these rows go stale
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def activate(db: AsyncSession, ids: Sequence[int]) -> int:
    return await _set(db, ids, User.is_active.is_(False), is_active=True)


async def deactivate(db: AsyncSession, ids: Sequence[int], actor: Actor) -> tuple[int, int]:
    """Returns (accounts deactivated, sessions ended): their sessions end at once."""
    await keep_an_admin(db, actor, ids, "deactivate")
    n = await _set(db, ids, User.is_active.is_(True), is_active=False)
    ended = await end_sessions(db, among(db, UserSession.user_id, ids), "deactivated")
    return n, ended


async def make_admin(db: AsyncSession, ids: Sequence[int]) -> int:
    return await _set(db, ids, User.is_admin.is_(False), is_admin=True)


async def remove_admin(db: AsyncSession, ids: Sequence[int], actor: Actor) -> int:
    await keep_an_admin(db, actor, ids, "remove admin rights from")
    return await _set(db, ids, User.is_admin.is_(True), is_admin=False)


async def delete_accounts(db: AsyncSession, ids: Sequence[int], actor: Actor) -> int:
    """Every key to users cascades or nulls: sessions, keys and blocks go along."""
    await keep_an_admin(db, actor, ids, "delete")
    return await _delete(db, among(db, User.id, ids))


async def count_inactive(db: AsyncSession, ids: Sequence[int]) -> int:
    return int(await db.scalar(
        select(func.count()).select_from(User).where(among(db, User.id, ids),
                                                     User.is_active.is_(False))
    ) or 0)


async def delete_inactive(db: AsyncSession, ids: Sequence[int]) -> int:
    """Only inactive accounts: never an active admin, so the rule holds by itself."""
    return await _delete(db, among(db, User.id, ids), User.is_active.is_(False))


async def _delete(db: AsyncSession, *where: ColumnElement[bool]) -> int:
    result = await db.execute(
        delete(User).where(*where).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
