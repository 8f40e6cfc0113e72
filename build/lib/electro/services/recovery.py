"""Password reset (SPEC A6) and e-mail change (A11): keys mailed to an address prove its owner
is acting (electro.services.keys has the key rules)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro.config import Settings
from electro.errors import Conflict, InvalidInput
from electro.models import OneTimeKey, User
from electro.security.keys import hash_key
from electro.security.passwords import Passwords
from electro.services import accounts, events, keys, sessions
from electro.services.events import Origin
from electro.services.forms import new_password_problems
from electro.services.mail import Composed, queue_request, send_mail
from electro.services.registration import normalise_email


async def request_reset(
    db: AsyncSession, settings: Settings, raw_email: str, origin: Origin
) -> None:
    """Queue a reset mail to the address; the sender writes it only if the address belongs to
    an active account (``reset_mail``). The same work whatever the address, and the caller
    answers the same (A6: no enumeration, by words or by timing). Raises InvalidInput for a
    malformed address only."""
    email = normalise_email(raw_email)
    await queue_request(db, "reset", email)
    await events.record(db, "authn_password_reset_requested", **origin, email=email)


async def reset_mail(
    db: AsyncSession, settings: Settings, email: str
) -> Composed:
    """Composer of a queued reset request: a key for an active account, else no mail."""
    user = await db.scalar(select(User).where(func.lower(User.email) == email,
                                              User.is_active.is_(True)))
    if user is None:
        await events.record(db, "authn_password_reset_unknown", email=email)
        return None
    key, _row = await keys.issue(db, settings, "reset", user_id=user.id, email=user.email)
    await events.record(db, "authn_password_reset_key_sent", actor_id=user.id,
                        actor=user.username)
    return "reset_key", {"username": user.username, "key": key,
                         "minutes": settings.key_ttl_minutes}


async def reset_account(db: AsyncSession, settings: Settings, key_hash: str) -> User | None:
    """The account a still-working reset key belongs to, or None (the key is not used)."""
    row = await keys.peek(db, settings, "reset", key_hash)
    return None if row is None else await db.get(User, row.user_id)


async def reset_password(
    db: AsyncSession, settings: Settings, passwords: Passwords, key_hash: str,
    password: str, password_confirm: str, origin: Origin,
) -> User:
    """Set a new password with a reset key: every session of the account ends and its owner
    gets a notice. Raises keys.KeyRefused or InvalidInput."""
    user = await reset_account(db, settings, key_hash)
    if user is None:
        await events.record(db, "key_rejected", purpose="reset", **origin)
        raise keys.KeyRefused()
    if problems := new_password_problems(settings, password, password_confirm,
                                         username=user.username, email=user.email):
        raise InvalidInput(errors=problems)
    # Hash before using the key: the slow part stays outside the write that claims it.
    new_hash = await passwords.hash(password)
    await keys.use(db, settings, "reset", key_hash, owner=OneTimeKey.user_id == user.id)
    user.password_hash = new_hash
    await sessions.end_user_sessions(db, user.id, "password_reset")
    await send_mail(db, settings, user.email, "password_changed", username=user.username)
    await events.record(db, "authn_password_reset", actor_id=user.id, actor=user.username,
                        **origin)
    return user


async def request_email_change(
    db: AsyncSession, settings: Settings, passwords: Passwords, user: User,
    raw_email: str, current_password: str, origin: Origin,
) -> None:
    """Re-check the password, then mail a key to the new address and a notice to the old one.
    An address that already has an account gets the account_exists notice instead of a key,
    and the answer is the same (no probing for registered addresses). Raises InvalidInput."""
    await accounts.check_current_password(db, passwords, settings, user, current_password,
                                          origin["ip"], "authn_reauth_fail")
    email = normalise_email(raw_email)
    if email == user.email.lower():
        raise InvalidInput(errors={"email": "This is already your address; enter the new one."})
    owner = await db.scalar(select(User).where(func.lower(User.email) == email))
    if owner is None:
        key, _row = await keys.issue(db, settings, "email_change", user_id=user.id, email=email)
        await send_mail(db, settings, email, "email_change_key", username=user.username, key=key,
                        minutes=settings.key_ttl_minutes)
    else:
        await send_mail(db, settings, email, "account_exists", username=owner.username,
                        email=email)
    await send_mail(db, settings, user.email, "email_change_notice", username=user.username)
    await events.record(db, "email_change_requested", actor_id=user.id, actor=user.username,
                        **origin)


async def change_email(
    db: AsyncSession, settings: Settings, user: User, key: str, origin: Origin
) -> str:
    """Move the account to the address the key was mailed to; returns it. Only the signed-in
    account's own key works, and wrong tries are charged to it. Raises keys.KeyRefused or
    Conflict (the address got an account meanwhile)."""
    mine = OneTimeKey.user_id == user.id
    try:
        row = await keys.use(db, settings, "email_change", hash_key(key), owner=mine, charge=mine)
    except keys.KeyRefused as refused:
        await events.record(db, "key_rejected", purpose="email_change", actor_id=user.id,
                            ended=refused.ended, **origin)
        raise
    new_email = row.email or ""
    try:
        async with db.begin_nested():  # the key stays used if the unique index refuses
            user.email = new_email
    except IntegrityError:
        await db.refresh(user)  # the savepoint's rollback expired it; templates read it
        await events.record(db, "email_change_conflict", actor_id=user.id, **origin)
        raise Conflict("This address got an account meanwhile; choose another one.") from None
    await events.record(db, "email_changed", actor_id=user.id, actor=user.username, **origin)
    return new_email
