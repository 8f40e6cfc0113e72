"""Two-factor sign-in with TOTP (SPEC B4): enrolling, the log-in's second step, turning it off,
and resets by an admin or the CLI. The maths (codes, sealing, recovery codes) is pure, in
electro.security.totp; here are the rules and the rows.

- A code works once: accepting one moves ``two_factor.last_step`` forward in one conditional
  UPDATE, so a replay in the same window, or two requests racing with one code, finds the step
  taken. One step of clock drift either way is allowed.
- Between the password and the code the browser holds no session, only the clear value of a
  'second_step' one-time key (5 minutes, single use, spent by ELECTRO_KEY_MAX_ATTEMPTS wrong
  codes). Every wrong code also counts as a failed log-in (accounts.record_failure), and the
  counts start afresh only when the code is right.
- Recovery codes: ten, shown once at enrolment, stored as SHA-256, each used by one UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.db import among
from electro.errors import Conflict, DomainError, InvalidInput, NotFound
from electro.models import OneTimeKey, RecoveryCode, TwoFactor, User
from electro.security import totp
from electro.security.keys import hash_key
from electro.security.passwords import Passwords
from electro.services import accounts, keys
from electro.services.events import Actor
from electro.services.mail import send_mail, send_mail_to_users

WRONG_CODE = "That code is not right. Type the six digits your app shows now, or a recovery code."
REUSED_CODE = "That code was used already. Wait for the next one your app shows."


class PendingExpired(DomainError):
    """The step between password and code is over (5 minutes, used, or too many wrong
    codes): the log-in starts again."""

    def __init__(self) -> None:
        super().__init__("Your log-in took too long or had too many wrong codes. "
                         "Log in again.")


class SecretUnreadable(Conflict):
    """The stored secret opens under no configured key (ELECTRO_SECRET_KEY was changed without
    ELECTRO_PREVIOUS_SECRET_KEY): only a reset helps."""

    def __init__(self) -> None:
        super().__init__("Your two-factor secret cannot be read by this server (its secret key "
                         "was changed). Ask an admin to reset your two-factor.")


@dataclass(frozen=True)
class Status:
    """What /account/two-factor shows. ``secret`` and ``uri``: only while enrolling."""

    enabled: bool
    recovery_codes_left: int = 0
    secret: str | None = None
    uri: str | None = None


def _open(settings: Settings, row: TwoFactor) -> tuple[str, bool]:
    """The clear secret, and whether it should be sealed again under the current key."""
    try:
        return totp.unseal([settings.secret_key, settings.previous_secret_key],
                           row.sealed_secret, row.user_id)
    except totp.SealBroken:
        raise SecretUnreadable() from None


async def is_enabled(db: AsyncSession, user_id: int) -> bool:
    return bool(await db.scalar(select(TwoFactor.enabled_at.is_not(None))
                                .where(TwoFactor.user_id == user_id)))


async def status(db: AsyncSession, settings: Settings, user: User) -> Status:
    row = await db.get(TwoFactor, user.id)
    if row is None:
        return Status(enabled=False)
    if row.enabled_at is None:
        try:
            secret, _stale = _open(settings, row)
        except SecretUnreadable:
            return Status(enabled=False)  # setting up again replaces it
        return Status(enabled=False, secret=secret,
                      uri=totp.provisioning_uri(secret, user.username))
    left = await db.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
    return Status(enabled=True, recovery_codes_left=int(left or 0))


async def start_enrolment(db: AsyncSession, settings: Settings, user: User, actor: Actor) -> None:
    """A new secret, not yet in force: the page shows it until a code confirms it. Starting
    again replaces an unconfirmed one."""
    if await is_enabled(db, user.id):
        raise Conflict("Two-factor is on already; turn it off first to use a new phone.")
    await db.execute(delete(TwoFactor).where(TwoFactor.user_id == user.id))
    secret = totp.new_secret()
    db.add(TwoFactor(user_id=user.id, sealed_secret=totp.seal(settings.secret_key, secret,
                                                              user.id)))
    await db.flush()
    await actor.record(db, "two_factor_enrolment_started")


async def confirm_enrolment(
    db: AsyncSession, settings: Settings, user: User, code: str, actor: Actor
) -> list[str]:
    """The first right code turns two-factor on; returns the ten recovery codes (their clear
    values exist only in this answer). The owner is mailed."""
    row = await db.get(TwoFactor, user.id)
    if row is None or row.enabled_at is not None:
        raise Conflict("There is no enrolment to confirm: start it again.")
    secret, _stale = _open(settings, row)
    step = totp.matching_step(secret, totp.normalise_code(code), clock.now())
    if step is None:
        raise InvalidInput(errors={"code": WRONG_CODE})
    await db.execute(update(TwoFactor).where(TwoFactor.user_id == user.id)
                     .values(enabled_at=clock.now(), last_step=step)
                     .execution_options(synchronize_session=False))
    codes = totp.new_recovery_codes()
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.add_all(RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(c))
               for c in codes)
    await send_mail(db, settings, user.email, "two_factor_enabled", username=user.username)
    await actor.record(db, "two_factor_enabled")
    return codes


async def _accept_code(
    db: AsyncSession, settings: Settings, user: User, code: str
) -> str | None:
    """Use ``code`` (TOTP or recovery) for ``user``: the kind used ("totp" or "recovery"),
    else None. InvalidInput(REUSED_CODE) for a TOTP code whose step was used already."""
    row = await db.get(TwoFactor, user.id)
    if row is None or row.enabled_at is None:
        return None
    typed = totp.normalise_code(code)
    if not totp.is_totp_shaped(typed):
        used = await db.scalar(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
                   RecoveryCode.code_hash == totp.hash_recovery_code(typed))
            .values(used_at=clock.now()).returning(RecoveryCode.id)
            .execution_options(synchronize_session=False))
        return None if used is None else "recovery"
    secret, stale = _open(settings, row)
    step = totp.matching_step(secret, typed, clock.now())
    if step is None:
        return None
    values: dict[str, object] = {"last_step": step}
    if stale:  # sealed under the previous secret key: sealed again under the current one
        values["sealed_secret"] = totp.seal(settings.secret_key, secret, user.id)
    taken = await db.scalar(
        update(TwoFactor)
        .where(TwoFactor.user_id == user.id,
               or_(TwoFactor.last_step.is_(None), TwoFactor.last_step < step))
        .values(**values).returning(TwoFactor.user_id)
        .execution_options(synchronize_session=False))
    if taken is None:
        raise InvalidInput(errors={"code": REUSED_CODE})
    return "totp"


async def _count_wrong_code(
    db: AsyncSession, settings: Settings, user: User, ip: str, event: str
) -> None:
    """A wrong code is a guess like a wrong password: counted towards the locks."""
    locked = await accounts.record_failure(db, settings, user, ip)
    await Actor(user.id, user.username, ip).record(
        db, event, reason="locked_now" if locked else "wrong_code")


async def finish_log_in(
    db: AsyncSession, settings: Settings, pending: str, code: str, ip: str, user_agent: str,
    *, replaces: int | None = None,
) -> str:
    """The second step: the pending key from log_in and a code. Returns the clear session id.
    Raises PendingExpired (start again) or InvalidInput on ``code`` (try again; counted). The
    caller answers below 400 either way, so the counts commit."""
    pending_hash = hash_key(pending[:64])
    row = await keys.peek(db, settings, "second_step", pending_hash)
    user = None if row is None or row.user_id is None else await db.get(User, row.user_id)
    if row is None or user is None:
        raise PendingExpired()
    try:  # locked (by wrong codes too), blocked or deactivated since the password step
        await accounts.check_may_sign_in(db, settings, user, ip, user.username)
    except accounts.AuthFailed:
        raise PendingExpired() from None
    try:
        kind = await _accept_code(db, settings, user, code)
    except InvalidInput:
        await _count_wrong_code(db, settings, user, ip, "authn_login_fail")
        await keys.charge_wrong_try(db, settings, "second_step", OneTimeKey.id == row.id)
        raise
    if kind is None:
        await _count_wrong_code(db, settings, user, ip, "authn_login_fail")
        if await keys.charge_wrong_try(db, settings, "second_step", OneTimeKey.id == row.id):
            raise PendingExpired()
        raise InvalidInput(errors={"code": WRONG_CODE})
    try:
        await keys.use(db, settings, "second_step", pending_hash)
    except keys.KeyRefused:
        raise PendingExpired() from None  # a racing request used it first
    return await accounts.start_signed_in(db, settings, user, ip, user_agent,
                                          replaces=replaces, second_factor=kind)


async def disable(
    db: AsyncSession, passwords: Passwords, settings: Settings, user: User,
    current_password: str, code: str, actor: Actor,
) -> None:
    """Turning it off takes the password and a current code (or a recovery code); wrong ones
    count towards the locks, so the form must answer below 400. The owner is mailed."""
    if not await is_enabled(db, user.id):
        raise Conflict("Two-factor is not on.")
    await accounts.check_current_password(db, passwords, settings, user, current_password,
                                          actor.ip, "two_factor_disable_fail")
    if await _accept_code(db, settings, user, code) is None:
        await _count_wrong_code(db, settings, user, actor.ip, "two_factor_disable_fail")
        raise InvalidInput(errors={"code": WRONG_CODE})
    await _remove(db, [user.id])
    await send_mail(db, settings, user.email, "two_factor_disabled", username=user.username)
    await actor.record(db, "two_factor_disabled")


async def _remove(db: AsyncSession, user_ids: Sequence[int]) -> list[int]:
    """Forget the secrets and recovery codes of these accounts; the ids that had one."""
    removed = (await db.scalars(
        delete(TwoFactor).where(among(db, TwoFactor.user_id, user_ids))
        .returning(TwoFactor.user_id).execution_options(synchronize_session=False))).all()
    await db.execute(delete(RecoveryCode).where(among(db, RecoveryCode.user_id, user_ids))
                     .execution_options(synchronize_session=False))
    return list(removed)


async def reset(
    db: AsyncSession, settings: Settings, user_ids: Sequence[int], actor: Actor
) -> int:
    """An admin's reset of other accounts' two-factor (a lost phone): they enrol again at their
    next admin page. Never the actor's own (turning it off needs their password and a code).
    Each owner is mailed. Returns how many had two-factor."""
    if actor.id is not None and actor.id in user_ids:
        raise InvalidInput("You cannot reset your own two-factor; turn it off on "
                           "/account/two-factor with your password and a code.")
    removed = await _remove(db, user_ids)
    if removed:
        await send_mail_to_users(db, settings, "two_factor_reset", among(db, User.id, removed))
        await actor.record(db, "two_factor_reset", ids=removed)
    return len(removed)


async def reset_by_username(
    db: AsyncSession, settings: Settings, username: str, actor: Actor
) -> None:
    """The CLI's reset, for the last admin who lost their phone."""
    user = await accounts.find_by_login(db, username)
    if user is None or "@" in username:
        raise NotFound(f"No account is named {username!r}.")
    if not await reset(db, settings, [user.id], actor):
        raise NotFound(f"{user.username} has no two-factor to reset.")
