"""Log-in, the failed-attempt lock and the signed-in account's own actions (SPEC A3, A4, A7).

Every log-in failure looks the same from outside (one message, one status, one hash
verification's worth of time); only the account's owner learns by e-mail that the account is
locked, blocked or inactive, and only when the right password was given.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from electro import clock
from electro.config import Settings
from electro.errors import DomainError, InvalidInput, NotFound
from electro.models import AccountBlock, Event, User, UserSession
from electro.security.passwords import Passwords
from electro.services import events, sessions
from electro.services.events import clean_text
from electro.services.forms import new_password_problems
from electro.services.mail import send_mail

GENERIC_FAILURE = "The log-in name or password is not right, or the account cannot sign in now."
# A blocked or inactive account's owner gets at most one explanation per this period, however
# often someone tries the right password.
NOTICE_EVERY = timedelta(minutes=15)
MAX_LOGIN_LENGTH = 254


class AuthFailed(DomainError):
    """Log-in refused. The message never says why (no account enumeration)."""

    def __init__(self) -> None:
        super().__init__(GENERIC_FAILURE)


async def find_by_login(db: AsyncSession, login: str) -> User | None:
    """The account whose username or e-mail is ``login``, ignoring case (usernames cannot
    contain '@', so the two never collide)."""
    folded = login.strip().lower()
    return await db.scalar(
        select(User).where(or_(func.lower(User.username) == folded,
                               func.lower(User.email) == folded)).limit(1)
    )


async def record_failure(db: AsyncSession, settings: Settings, user: User, ip: str) -> bool:
    """Count one failed attempt in a single atomic UPDATE (concurrent failures are all
    counted); returns True when this very attempt locked the account.

    The counter restarts at 1 when the window has passed. The lock is set by the attempt that
    makes the count reach the threshold, so exactly one of any number of concurrent attempts
    sets it and mails the owner; attempts during the lock keep counting but do not extend it.
    """
    now = clock.now()
    window_start = now - timedelta(minutes=settings.login_lock_window_minutes)
    stale = or_(User.failed_window_started_at.is_(None),
                User.failed_window_started_at < window_start)
    new_count = case((stale, 1), else_=User.failed_logins + 1)
    lock_until = now + timedelta(minutes=settings.login_lock_minutes)
    count = (await db.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            failed_logins=new_count,
            failed_window_started_at=case((stale, now), else_=User.failed_window_started_at),
            locked_until=case(
                (new_count == settings.login_lock_threshold, lock_until),
                else_=User.locked_until,
            ),
        )
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    )).scalar()  # None: the account was deleted meanwhile
    just_locked = count == settings.login_lock_threshold
    if just_locked:
        await events.record(db, "authn_login_lock", actor_id=user.id, actor=user.username, ip=ip,
                            failures=count, until=lock_until.isoformat())
        await send_mail(db, settings, user.email, "account_locked", username=user.username,
                        until=_when(lock_until), minutes=settings.login_lock_window_minutes,
                        failures=count)
    return just_locked


async def _notice_sent_recently(db: AsyncSession, user_id: int, now: datetime) -> bool:
    return bool(await db.scalar(
        select(func.count(Event.id)).where(
            Event.type == "authn_login_notice", Event.actor_id == user_id,
            Event.created_at > now - NOTICE_EVERY)
    ))


async def _explain_refusal(
    db: AsyncSession, settings: Settings, user: User, ip: str, now: datetime
) -> str | None:
    """Why an account with the right password may not sign in (None: it may), mailing the
    owner the reason at most once per NOTICE_EVERY. A lock was already mailed when it was set;
    a blocked IP is the admin's business, not the owner's."""
    if await db.scalar(select(sessions.ip_blocked(ip, now))):
        return "ip_blocked"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    if user.is_active:
        block = await db.scalar(
            select(AccountBlock)
            .where(AccountBlock.user_id == user.id, sessions.in_force(AccountBlock, now))
            .order_by(AccountBlock.until.desc()).limit(1)
        )
        if block is None:
            return None
        reason, template = "blocked", "login_blocked"
        context = {"until": _when(block.until), "reason": block.reason}
    else:
        reason, template, context = "inactive", "login_inactive", {}
    if not await _notice_sent_recently(db, user.id, now):
        await send_mail(db, settings, user.email, template, username=user.username, **context)
        await events.record(db, "authn_login_notice", actor_id=user.id, actor=user.username,
                            ip=ip, template=template)
    return reason


async def authenticate(
    db: AsyncSession, passwords: Passwords, settings: Settings, login: str, password: str,
    ip: str,
) -> User:
    """The account ``login`` (username or e-mail, any case) with ``password``, allowed to sign
    in now; else AuthFailed, after recording why (event) and counting a wrong password."""
    login = login.strip()[:MAX_LOGIN_LENGTH]
    user = await find_by_login(db, login) if login else None
    if user is None:
        await passwords.verify_dummy(password)  # as slow as a real account
        await events.record(db, "authn_login_fail", ip=ip, login=login, reason="unknown")
        raise AuthFailed()
    if not await passwords.verify(user.password_hash, password):
        locked = await record_failure(db, settings, user, ip)
        await events.record(db, "authn_login_fail", actor_id=user.id, actor=user.username, ip=ip,
                            login=login, reason="locked_now" if locked else "wrong_password")
        raise AuthFailed()
    now = clock.now()
    refusal = await _explain_refusal(db, settings, user, ip, now)
    if refusal is not None:
        await events.record(db, "authn_login_fail", actor_id=user.id, actor=user.username, ip=ip,
                            login=login, reason=refusal)
        raise AuthFailed()
    values: dict[str, object] = {"failed_logins": 0, "failed_window_started_at": None,
                                 "locked_until": None, "last_login_at": now}
    if passwords.needs_rehash(user.password_hash):
        values["password_hash"] = await passwords.hash(password)
    await db.execute(update(User).where(User.id == user.id).values(**values)
                     .execution_options(synchronize_session=False))
    for name, value in values.items():
        set_committed_value(user, name, value)  # the loaded object matches the row; no reflush
    return user


async def log_in(
    db: AsyncSession, passwords: Passwords, settings: Settings, login: str, password: str,
    ip: str, user_agent: str, *, replaces: int | None = None,
) -> str:
    """authenticate(), then a brand-new session (never a reused id: no fixation). Returns the
    clear session id, for the cookie only.

    ``replaces``: the session this browser was signed in with, if any; it ends first, so it
    neither lingers nor counts against the per-account maximum (pushing out another device).
    """
    user = await authenticate(db, passwords, settings, login, password, ip)
    if replaces is not None:
        await sessions.end_sessions(db, UserSession.id == replaces, "replaced")
    token = await sessions.start_session(db, settings, user, ip, user_agent)
    await events.record(db, "authn_login_success", actor_id=user.id, actor=user.username, ip=ip)
    await events.record(db, "session_created", actor_id=user.id, actor=user.username, ip=ip,
                        user_agent=clean_text(user_agent, 255))
    return token


async def end_own_session(db: AsyncSession, user: User, session_id: int, ip: str) -> None:
    """"End this session" on the account page; only the asking account's sessions match.

    Looked up before any write: a refusal then holds no write lock while the error handler
    records its event in a transaction of its own (SQLite would make that wait).
    """
    owned = await db.scalar(select(UserSession.id).where(
        UserSession.id == session_id, UserSession.user_id == user.id,
        UserSession.ended_at.is_(None)))
    if owned is None:
        raise NotFound("You have no live session with that number.")
    await sessions.end_own_session(db, user.id, session_id)
    await events.record(db, "session_ended", actor_id=user.id, actor=user.username, ip=ip,
                        reason="ended_by_user", ended=[session_id])


async def end_other_sessions(db: AsyncSession, user: User, current: UserSession, ip: str) -> int:
    ended = await sessions.end_user_sessions(db, user.id, "ended_by_user",
                                             keep_session_id=current.id)
    await events.record(db, "session_ended", actor_id=user.id, actor=user.username, ip=ip,
                        reason="ended_by_user", count=ended)
    return ended


async def check_current_password(
    db: AsyncSession, passwords: Passwords, settings: Settings, user: User, password: str,
    ip: str, failure_event: str,
) -> None:
    """Every form that asks for the current password: refused while the account is locked, and
    a wrong one counts as a failed log-in (it is the same guess against the same secret), so a
    stolen session cannot be used to try passwords without limit. The form must answer below
    400 so the count commits."""
    if user.locked_until is not None and user.locked_until > clock.now():
        raise InvalidInput(errors={"current_password": (
            "Too many wrong passwords were tried on this account. Try again after "
            f"{_when(user.locked_until)}.")})
    if not await passwords.verify(user.password_hash, password):
        await record_failure(db, settings, user, ip)
        await events.record(db, failure_event, actor_id=user.id, actor=user.username, ip=ip,
                            reason="wrong_current_password")
        raise InvalidInput(errors={"current_password": (
            "That is not your current password. Type the password you signed in with.")})


async def change_password(
    db: AsyncSession, passwords: Passwords, settings: Settings, user: User,
    current: UserSession, current_password: str, password: str, password_confirm: str, ip: str,
) -> int:
    """A7: a new password after re-entering the current one; the account's other sessions
    end and the owner is told by e-mail. Returns how many other sessions ended."""
    await check_current_password(db, passwords, settings, user, current_password, ip,
                                 "authn_password_change_fail")
    if problems := new_password_problems(settings, password, password_confirm,
                                         username=user.username, email=user.email):
        raise InvalidInput(errors=problems)
    new_hash = await passwords.hash(password)
    await db.execute(update(User).where(User.id == user.id)
                     .values(password_hash=new_hash, failed_logins=0,
                             failed_window_started_at=None)
                     .execution_options(synchronize_session=False))
    set_committed_value(user, "password_hash", new_hash)
    ended = await sessions.end_user_sessions(db, user.id, "password_changed",
                                             keep_session_id=current.id)
    await send_mail(db, settings, user.email, "password_changed", username=user.username)
    await events.record(db, "authn_password_change", actor_id=user.id, actor=user.username,
                        ip=ip, ended=ended)
    return ended


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
