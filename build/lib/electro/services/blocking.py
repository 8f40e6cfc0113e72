"""Blocking accounts and IP addresses until a date (SPEC A9).

A block is in force while ``lifted_at IS NULL AND until > now``: the date decides, at every
use (sessions.resolve, log-in). ``lift_due_blocks`` only tidies up the history afterwards.
Everything here is set-based, so blocking 10,000 accounts is a handful of statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.db import among
from electro.errors import FieldError
from electro.models import AccountBlock, IpBlock, User, UserSession
from electro.services import events, sessions
from electro.services.admin import accounts
from electro.services.events import Actor
from electro.services.mail import send_mail_to_users

MAX_REASON = 500


def check_until(until: datetime) -> datetime:
    """``until`` as naive UTC (the database's convention), refused unless in the future: the
    rule for every block's end (the admin tables' ``block_end`` field uses it too)."""
    until = clock.naive_utc(until)
    if until <= clock.now():
        raise FieldError("The block must end in the future; pick a later date and time (UTC).")
    return until


async def block_accounts(
    db: AsyncSession, settings: Settings, user_ids: Sequence[int], until: datetime,
    reason: str, actor: Actor,
) -> int:
    """Block the accounts until ``until`` (naive UTC): their live sessions end at once and
    each owner is mailed the date and reason. Returns how many accounts were blocked (ids of
    accounts that do not exist are skipped). Held to the lock-out rule, like every change of
    an account by an admin."""
    until = check_until(until)
    ids = sorted(set(user_ids))
    await accounts.keep_an_admin(db, actor, ids, "block")
    reason = reason.strip()[:MAX_REASON]
    found = list(await db.scalars(
        select(User.id).where(among(db, User.id, ids)).order_by(User.id)))
    if not found:
        return 0
    now = clock.now()
    await db.execute(insert(AccountBlock), [
        {"user_id": user_id, "until": until, "reason": reason, "created_by_id": actor.id,
         "created_at": now}
        for user_id in found
    ])
    ended = await sessions.end_sessions(db, among(db, UserSession.user_id, found), "blocked")
    await send_mail_to_users(db, settings, "account_blocked", among(db, User.id, found),
                             until=until.strftime("%Y-%m-%d %H:%M UTC"), reason=reason)
    await actor.record(db, "admin_block_accounts", ids=found,
                        until=until.isoformat(), reason=reason, ended=ended)
    return len(found)


async def lift_account_blocks(
    db: AsyncSession, user_ids: Sequence[int], actor: Actor
) -> int:
    """Lift the blocks in force on these accounts now; returns how many blocks were lifted."""
    now = clock.now()
    ids = sorted(set(user_ids))
    result = await db.execute(
        update(AccountBlock)
        .where(among(db, AccountBlock.user_id, ids), sessions.in_force(AccountBlock, now))
        .values(lifted_at=now)
        .execution_options(synchronize_session=False)
    )
    lifted = int(result.rowcount or 0)  # type: ignore[attr-defined]
    await actor.record(db, "admin_lift_account_blocks", ids=ids,
                        lifted=lifted)
    return lifted


async def lift_due_blocks(db: AsyncSession, settings: Settings) -> int:
    """Tidy-up job: blocks whose date has passed are marked lifted at that date. Returns how
    many (accounts and IPs); one event per run that lifted any."""
    now = clock.now()
    counts = []
    for model in (AccountBlock, IpBlock):
        result = await db.execute(
            update(model)
            .where(model.lifted_at.is_(None), model.until <= now)
            .values(lifted_at=model.until)
            .execution_options(synchronize_session=False)
        )
        counts.append(int(result.rowcount or 0))  # type: ignore[attr-defined]
    accounts, ips = counts
    if accounts or ips:
        await events.record(db, "blocks_lifted", actor="system", accounts=accounts, ips=ips)
    return accounts + ips
