"""Server-side sessions (SPEC A4, A5).

quart-auth's signed ``auth_id`` is a random session id; only its SHA-256 is stored, so a leaked
database cannot be replayed as cookies, and ending the row ends the session wherever the
cookie is. Every request of a signed-in user re-checks the session and its account here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Exists,
    String,
    and_,
    bindparam,
    exists,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from electro import clock
from electro.config import Settings
from electro.models import AccountBlock, IpBlock, User, UserSession
from electro.security.keys import hash_key, new_key
from electro.services import events
from electro.services.events import Origin

# last_seen is written at most this often, so browsing does not cost a write per request;
# an idle session may therefore end up to this much early, never late.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SignedIn:
    """A live session and its account, as checked for this request."""

    session: UserSession
    user: User


@dataclass(frozen=True)
class Refused:
    """Why a presented session id does not sign anybody in; ``end_refused`` ends it."""

    reason: str
    user_id: int | None = None
    session_id: int | None = None


Moment = datetime | ColumnElement[datetime]  # a value, or a parameter bound at execution


def in_force(block: type[AccountBlock] | type[IpBlock], now: Moment) -> ColumnElement[bool]:
    """SQL condition: the block (account or IP) is in force. The date decides; the lift job
    only tidies up, so nothing depends on it having run."""
    return and_(block.lifted_at.is_(None), block.until > now)


def account_blocked(
    user_id: ColumnElement[int] | InstrumentedAttribute[int] | int, now: Moment
) -> Exists:
    """SQL condition: the account has a block in force."""
    return exists().where(AccountBlock.user_id == user_id, in_force(AccountBlock, now))


def ip_blocked(ip: str | ColumnElement[str], now: Moment) -> Exists:
    return exists().where(IpBlock.ip == ip, in_force(IpBlock, now))


# The check every signed-in request runs, built once: building it per call (and SQLAlchemy
# computing its cache key) cost about a fifth of a signed-in page answered from the page cache.
_NOW = bindparam("now", type_=DateTime)
_RESOLVE = (
    select(UserSession, User, account_blocked(User.id, _NOW),
           ip_blocked(bindparam("ip", type_=String), _NOW))
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash", type_=String))
)


def max_age(settings: Settings, user: User) -> timedelta:
    """Absolute lifetime: shorter for admins, whose sessions are worth more to an attacker."""
    if user.is_admin:
        return timedelta(hours=settings.admin_session_max_hours)
    return timedelta(days=settings.session_max_days)


def longest_lifetime(settings: Settings) -> timedelta:
    """The longest any session may live (an admin's may be shorter, and is refused at use)."""
    return max(timedelta(days=settings.session_max_days),
               timedelta(hours=settings.admin_session_max_hours))


def live(settings: Settings, now: datetime, lifetime: timedelta) -> ColumnElement[bool]:
    """A session that would still sign in: not ended, not idle, younger than ``lifetime``."""
    return and_(UserSession.ended_at.is_(None),
                UserSession.last_seen_at >= now - timedelta(minutes=settings.session_idle_minutes),
                UserSession.created_at >= now - lifetime)


async def start_session(
    db: AsyncSession, settings: Settings, user: User, ip: str, user_agent: str
) -> str:
    """A new session for ``user``; returns the clear id (for the cookie only). Beyond the
    per-account maximum, the oldest live sessions end."""
    token = new_key()
    now = clock.now()
    db.add(UserSession(token_hash=hash_key(token), user_id=user.id, ip=ip[:45],
                       user_agent=user_agent[:255], created_at=now, last_seen_at=now))
    await db.flush()
    newest = (
        select(UserSession.id)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .order_by(UserSession.created_at.desc(), UserSession.id.desc())
        .limit(settings.max_sessions_per_user)
    )
    await db.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None),
               UserSession.id.not_in(newest.scalar_subquery()))
        .values(ended_at=now, end_reason="replaced")
        .execution_options(synchronize_session=False)
    )
    return token


async def resolve(
    db: AsyncSession, settings: Settings, token: str, origin: Origin
) -> SignedIn | Refused:
    """Check a presented session id and its account in one query (read only: a refused session
    is ended by ``end_refused``, which the caller runs where it must stick)."""
    now, ip = clock.now(), origin["ip"]
    row = (await db.execute(
        _RESOLVE, {"now": now, "ip": ip, "token_hash": hash_key(token)})).first()
    if row is None:
        return Refused("unknown")
    session, user, blocked, ip_is_blocked = row
    if session.ended_at is not None:
        return Refused("ended", user.id, session.id)
    reason = None
    if now - session.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        reason = "idle"
    elif now - session.created_at > max_age(settings, user):
        reason = "expired"
    elif not user.is_active:
        reason = "inactive"
    elif blocked:
        reason = "blocked"
    elif ip_is_blocked:
        reason = "ip_blocked"
    elif ip != session.ip and settings.session_ip_policy == "strict":
        reason = "ip_changed"
    if reason is not None:
        return Refused(reason, user.id, session.id)
    if ip != session.ip:  # the "log" policy: recorded once, as the session now uses this address
        await events.record(db, "session_ip_changed", actor_id=user.id, actor=user.username,
                            **origin, previous_ip=session.ip)
        session.ip = ip
    if now - session.last_seen_at >= TOUCH_EVERY:
        session.last_seen_at = now
    return SignedIn(session, user)


async def end_refused(db: AsyncSession, refused: Refused, origin: Origin) -> None:
    """End a refused session (if still live) and record why."""
    if refused.session_id is not None:
        await end_sessions(db, UserSession.id == refused.session_id, refused.reason)
    await events.record(db, "session_refused", actor_id=refused.user_id, **origin,
                        reason=refused.reason)


async def end_sessions(db: AsyncSession, where: object, reason: str) -> int:
    """End every live session matching ``where`` (a SQL condition); returns how many."""
    result = await db.execute(
        update(UserSession)
        .where(and_(UserSession.ended_at.is_(None), where))  # type: ignore[arg-type]
        .values(ended_at=clock.now(), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def end_session_by_token(db: AsyncSession, token: str, reason: str) -> int:
    return await end_sessions(db, UserSession.token_hash == hash_key(token), reason)


async def end_user_sessions(
    db: AsyncSession, user_id: int, reason: str, *, keep_session_id: int | None = None
) -> int:
    """End all of an account's sessions (password change or reset, block, deactivation),
    except optionally the one making the request."""
    where = UserSession.user_id == user_id
    if keep_session_id is not None:
        where = and_(where, UserSession.id != keep_session_id)
    return await end_sessions(db, where, reason)


async def end_own_session(db: AsyncSession, user_id: int, session_id: int) -> int:
    """The account page's "end this session": only a session of the asking account ends."""
    return await end_sessions(
        db, and_(UserSession.id == session_id, UserSession.user_id == user_id), "ended_by_user"
    )


async def live_sessions(db: AsyncSession, settings: Settings, user: User) -> list[UserSession]:
    """The account's sessions that would still sign in now, newest first."""
    rows = await db.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, live(settings, clock.now(), max_age(settings, user)))
        .order_by(UserSession.last_seen_at.desc())
    )
    return list(rows)


async def purge_expired(db: AsyncSession, settings: Settings) -> int:
    """Tidy-up job: mark sessions ended that expired without being seen again. Correctness
    never depends on it (resolve() checks the times itself)."""
    return await end_sessions(
        db, ~live(settings, clock.now(), longest_lifetime(settings)), "expired")
