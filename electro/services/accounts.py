"""Log-in, the failed-attempt locks (per client address, then for everyone) and the signed-in
account's own actions (SPEC A3, A4, A7).

Every log-in failure looks the same from outside (one message, one status, one hash
verification's worth of time); only the account's owner learns by e-mail that the account is
locked, blocked or inactive, and only when the right password was given.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String, case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from electro import clock
from electro.config import Settings
from electro.db import upsert_insert
from electro.errors import DomainError, InvalidInput, NotFound
from electro.models import AccountBlock, Event, LoginFailure, TwoFactor, User, UserSession
from electro.security.passwords import Passwords
from electro.services import events, keys, sessions
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


def address_key(ip: str) -> str:
    """The client address wrong passwords are counted under: an IPv6 client by its /64 (one
    customer's network, within which addresses are free to rotate), IPv4 as it is (also when
    a dual-stack server reports it IPv4-mapped). Anything else, as given."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:45]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


async def _count_from_address(
    db: AsyncSession, settings: Settings, user_id: int, address: str, now: datetime,
    lock_until: datetime,
) -> tuple[int, datetime | None] | None:
    """One wrong password from ``address``, counted in a single INSERT ... ON CONFLICT DO
    UPDATE (concurrent ones are all counted, and exactly one reaches the threshold): the
    count and lock of (account, address) after it; None when the account is gone."""
    threshold = settings.login_lock_threshold
    window_start = now - timedelta(minutes=settings.login_lock_window_minutes)
    stale = LoginFailure.window_started_at < window_start
    new_count = case((stale, 1), else_=LoginFailure.failures + 1)
    first = select(User.id, literal(address, String), literal(1), literal(now, DateTime),
                   literal(lock_until if threshold == 1 else None, DateTime))
    upsert = upsert_insert(db)(LoginFailure).from_select(
        ["user_id", "ip", "failures", "window_started_at", "locked_until"],
        first.where(User.id == user_id),  # no row, no count, once the account is deleted
    )
    row = (await db.execute(
        upsert.on_conflict_do_update(
            index_elements=[LoginFailure.user_id, LoginFailure.ip],
            set_={
                "failures": new_count,
                "window_started_at": case((stale, now), else_=LoginFailure.window_started_at),
                "locked_until": case((new_count == threshold, lock_until),
                                     else_=LoginFailure.locked_until),
            },
        ).returning(LoginFailure.failures, LoginFailure.locked_until)
    )).one_or_none()
    return None if row is None else (row.failures, row.locked_until)


async def _count_for_account(
    db: AsyncSession, settings: Settings, user_id: int, now: datetime, lock_until: datetime,
) -> int:
    """One wrong password counted against the account from every address, in a single
    UPDATE; the count after it (0 when the account is gone)."""
    window_start = now - timedelta(minutes=settings.login_lock_window_minutes)
    stale = or_(User.failed_window_started_at.is_(None),
                User.failed_window_started_at < window_start)
    new_count = case((stale, 1), else_=User.failed_logins + 1)
    count: int | None = (await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            failed_logins=new_count,
            failed_window_started_at=case((stale, now), else_=User.failed_window_started_at),
            locked_until=case(
                (new_count == settings.login_account_lock_threshold, lock_until),
                else_=User.locked_until,
            ),
        )
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    )).scalar()
    return count or 0


async def record_failure(db: AsyncSession, settings: Settings, user: User, ip: str) -> bool:
    """Count one wrong password for ``user`` from ``ip``; True when this very attempt locked
    the account, from that address or for everyone.

    Two counters, each one atomic statement: per (account, address), whose threshold locks
    the account from that address only (so a stranger cannot lock the owner out of their own
    network), and for the account from all addresses, whose higher threshold locks it for
    everyone (the last line against guessing from many addresses). A counter restarts at 1
    when its window has passed; the attempt that reaches a threshold sets that lock, so
    exactly one of any number of concurrent attempts sets it; attempts during a lock keep
    counting but do not extend it. A wrong password from an address that is locked already
    could not have signed in whatever it was, so it is no guess and does not count for the
    account: one address alone can never lock the account for everyone.
    The counters are always written in this order (address, then account), as on success,
    so concurrent log-ins cannot deadlock on PostgreSQL.
    """
    now = clock.now()
    lock_until = now + timedelta(minutes=settings.login_lock_minutes)
    address = address_key(ip)
    counted = await _count_from_address(db, settings, user.id, address, now, lock_until)
    if counted is None:
        return False  # the account was deleted meanwhile
    failures, address_locked_until = counted
    locked_here = failures == settings.login_lock_threshold
    if not locked_here and address_locked_until is not None and address_locked_until > now:
        return False
    account_failures = await _count_for_account(db, settings, user.id, now, lock_until)
    locked_everywhere = account_failures == settings.login_account_lock_threshold
    if locked_here:
        await _record_lock(db, user, ip, "address", failures, lock_until)
    if locked_everywhere:
        await _record_lock(db, user, ip, "account", account_failures, lock_until)
    # A lock from one address is mailed at most once per NOTICE_EVERY, like every log-in
    # notice, however many addresses get locked; the lock for everyone is always mailed (it
    # happens at most once per lock period, and it is the one that keeps the owner out).
    if locked_everywhere or (locked_here and not await _notice_sent_recently(db, user.id, now)):
        await send_mail(db, settings, user.email, "account_locked", username=user.username,
                        until=_when(lock_until), minutes=settings.login_lock_window_minutes,
                        failures=account_failures if locked_everywhere else failures,
                        address=None if locked_everywhere else address)
        await events.record(db, "authn_login_notice", actor_id=user.id, actor=user.username,
                            ip=ip, template="account_locked")
    return locked_here or locked_everywhere


async def _record_lock(
    db: AsyncSession, user: User, ip: str, scope: str, failures: int, until: datetime
) -> None:
    """``scope``: "address" (the account is locked from ``ip``) or "account" (for everyone)."""
    await events.record(db, "authn_login_lock", actor_id=user.id, actor=user.username, ip=ip,
                        scope=scope, failures=failures, until=until.isoformat())


async def _address_locked_until(
    db: AsyncSession, user_id: int, ip: str, now: datetime
) -> datetime | None:
    """When the lock on the account from ``ip`` lifts; None when there is none in force."""
    until: datetime | None = await db.scalar(select(LoginFailure.locked_until).where(
        LoginFailure.user_id == user_id, LoginFailure.ip == address_key(ip),
        LoginFailure.locked_until > now))
    return until


async def purge_stale_failures(db: AsyncSession, settings: Settings) -> int:
    """Tidy-up job: forget per-address counts whose window and lock have both passed (the
    next failure would start afresh from them anyway). Correctness never depends on it."""
    now = clock.now()
    window_start = now - timedelta(minutes=settings.login_lock_window_minutes)
    result = await db.execute(delete(LoginFailure).where(
        LoginFailure.window_started_at < window_start,
        or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
    owner the reason at most once per NOTICE_EVERY. A lock was mailed when it was set (unless
    another notice had gone out within NOTICE_EVERY);
    a blocked IP is the admin's business, not the owner's."""
    if await db.scalar(select(sessions.ip_blocked(ip, now))):
        return "ip_blocked"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    if await _address_locked_until(db, user.id, ip, now) is not None:
        return "locked_from_address"
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
    await check_may_sign_in(db, settings, user, ip, login)
    return user


async def check_may_sign_in(
    db: AsyncSession, settings: Settings, user: User, ip: str, login: str
) -> None:
    """AuthFailed (after its event) when ``user``, whose password was right, may not sign in
    now: locked, blocked, inactive or from a blocked address. Asked again at the two-factor
    step: a lock set by wrong codes holds the right one back too."""
    refusal = await _explain_refusal(db, settings, user, ip, clock.now())
    if refusal is not None:
        await events.record(db, "authn_login_fail", actor_id=user.id, actor=user.username, ip=ip,
                            login=login, reason=refusal)
        raise AuthFailed()


@dataclass(frozen=True)
class SecondStep:
    """The password was right and the account uses two-factor: the browser gets ``pending``
    (a one-time key, SECOND_STEP_TTL long) instead of a session, and must send it back with a
    code (electro.services.two_factor.finish_log_in)."""

    pending: str


SECOND_STEP_TTL = timedelta(minutes=5)


async def log_in(
    db: AsyncSession, passwords: Passwords, settings: Settings, login: str, password: str,
    ip: str, user_agent: str, *, replaces: int | None = None,
) -> str | SecondStep:
    """authenticate(), then a brand-new session (never a reused id: no fixation): returns the
    clear session id, for the cookie only. With two-factor on, no session yet: the SecondStep
    instead, and the failure counters keep counting until a right code (a right password alone
    must not reset the count of wrong codes).

    ``replaces``: the session this browser was signed in with, if any; it ends first, so it
    neither lingers nor counts against the per-account maximum (pushing out another device).
    """
    user = await authenticate(db, passwords, settings, login, password, ip)
    new_hash = (await passwords.hash(password) if passwords.needs_rehash(user.password_hash)
                else None)
    # Asked of the table itself: electro.services.two_factor builds on this module.
    if await db.scalar(select(TwoFactor.enabled_at.is_not(None))
                       .where(TwoFactor.user_id == user.id)):
        if new_hash is not None:
            await _update_user(db, user, {"password_hash": new_hash})
        pending, _row = await keys.issue(db, settings, "second_step", ttl=SECOND_STEP_TTL,
                                         user_id=user.id)
        await events.record(db, "authn_login_second_step", actor_id=user.id,
                            actor=user.username, ip=ip)
        return SecondStep(pending)
    return await start_signed_in(db, settings, user, ip, user_agent, replaces=replaces,
                                 new_password_hash=new_hash)


async def start_signed_in(
    db: AsyncSession, settings: Settings, user: User, ip: str, user_agent: str, *,
    replaces: int | None = None, new_password_hash: str | None = None,
    **success_details: str,
) -> str:
    """Every factor was right: the failure counts start afresh, and a new session begins
    (``replaces`` ends first). Returns the clear session id."""
    now = clock.now()
    # This address's count starts afresh, like the account's below; written first, in the
    # order record_failure writes (address, then account), so the two cannot deadlock.
    await db.execute(delete(LoginFailure).where(LoginFailure.user_id == user.id,
                                                LoginFailure.ip == address_key(ip)))
    values: dict[str, object] = {"failed_logins": 0, "failed_window_started_at": None,
                                 "locked_until": None, "last_login_at": now}
    if new_password_hash is not None:
        values["password_hash"] = new_password_hash
    await _update_user(db, user, values)
    if replaces is not None:
        await sessions.end_sessions(db, UserSession.id == replaces, "replaced")
    token = await sessions.start_session(db, settings, user, ip, user_agent)
    await events.record(db, "authn_login_success", actor_id=user.id, actor=user.username, ip=ip,
                        **success_details)
    await events.record(db, "session_created", actor_id=user.id, actor=user.username, ip=ip,
                        user_agent=clean_text(user_agent, 255))
    return token


async def _update_user(db: AsyncSession, user: User, values: dict[str, object]) -> None:
    await db.execute(update(User).where(User.id == user.id).values(**values)
                     .execution_options(synchronize_session=False))
    for name, value in values.items():
        set_committed_value(user, name, value)  # the loaded object matches the row; no reflush


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


async def _lock_in_force(db: AsyncSession, user: User, ip: str) -> datetime | None:
    """When the lock on ``user`` from ``ip`` (for everyone, or from that address) lifts; None
    when there is none."""
    now = clock.now()
    locks = [until for until in (user.locked_until,
                                 await _address_locked_until(db, user.id, ip, now))
             if until is not None and until > now]
    return max(locks, default=None)


async def check_current_password(
    db: AsyncSession, passwords: Passwords, settings: Settings, user: User, password: str,
    ip: str, failure_event: str,
) -> None:
    """Every form that asks for the current password: refused while the account is locked, and
    a wrong one counts as a failed log-in (it is the same guess against the same secret), so a
    stolen session cannot be used to try passwords without limit. The form must answer below
    400 so the count commits."""
    if (until := await _lock_in_force(db, user, ip)) is not None:
        raise InvalidInput(errors={"current_password": (
            "Too many wrong passwords were tried on this account. Try again after "
            f"{_when(until)}.")})
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
