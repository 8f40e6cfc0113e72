"""Registration (SPEC A1, A2) and account activation (A8), both finished by a mailed key.

A registration is first a *pending registration*: a 'register' OneTimeKey row holding the
username, the normalised e-mail and the argon2id hash (never the password). The account exists
only once the mailed key comes back (electro.services.keys explains single use and wrong tries).

No enumeration: a submit for an address that already has an account does exactly what a new one
does (hash, pending row, a mail, the same page, the same kind of session entry), except that the
mail is a notice to the owner instead of a key; the row is a decoy nobody holds the key to.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro.config import Settings
from electro.errors import Conflict, InvalidInput
from electro.models import OneTimeKey, User
from electro.security.keys import hash_key
from electro.security.passwords import Passwords, policy_problems
from electro.services import events, keys, newsletters, users
from electro.services.events import Origin
from electro.services.forms import MISMATCH
from electro.services.mail import Composed, queue_request, send_mail

FIELDS = ("username", "email", "password", "password_confirm")


def normalise_email(raw: str) -> str:
    """users.normalise_email (syntax only, lower case) for a form: raises InvalidInput."""
    try:
        return users.normalise_email(raw.strip())
    except users.UserError as exc:
        raise InvalidInput(errors={"email": str(exc)}) from None


async def _username_taken(
    db: AsyncSession, settings: Settings, username: str, own_pending: int | None
) -> bool:
    """By an account, or (softly: two submits can still race) by a live pending registration
    other than this browser's own; confirm() settles races for good through the unique index."""
    folded = username.lower()
    pending = select(OneTimeKey.id).where(
        keys.works("register", settings), func.lower(OneTimeKey.username) == folded)
    if own_pending is not None:
        pending = pending.where(OneTimeKey.id != own_pending)
    taken = await db.scalar(select(or_(
        exists().where(func.lower(User.username) == folded), exists(pending))))
    return bool(taken)


async def field_problem(
    db: AsyncSession, settings: Settings, field: str, form: Mapping[str, str],
    own_pending: int | None = None,
) -> str | None:
    """What is wrong with one field of the register form, or None. The e-mail is checked for
    syntax only, so live validation never tells whether an address has an account.
    ``own_pending``: this browser's pending registration, whose username is not "taken"."""
    value = form.get(field, "")
    if field == "username":
        try:
            users.check_username(value)
        except users.UserError as exc:
            return str(exc)
        if await _username_taken(db, settings, value, own_pending):
            return "This username is taken; choose another."
    elif field == "email":
        try:
            normalise_email(value)
        except InvalidInput as exc:
            return exc.errors["email"]
    elif field == "password":
        found = policy_problems(value, settings, username=form.get("username", ""),
                                email=form.get("email", ""))
        return " ".join(found) or None
    elif field == "password_confirm":
        if value != form.get("password", ""):
            return MISMATCH
    else:
        raise ValueError(f"unknown field {field!r}")
    return None


async def start(
    db: AsyncSession, settings: Settings, passwords: Passwords, form: Mapping[str, str],
    origin: Origin, replaces: int | None = None, newsletter: bool = False,
) -> int:
    """Check the form, store a pending registration and mail its key (or, for an address that
    has an account, a notice to its owner). Returns the pending row's id, for the session of the
    browser that submitted it. ``replaces``: that browser's previous pending registration, which
    ends (a mistyped address can be corrected at once). ``newsletter``: the sign-up form's
    consent, which the account gets when the key creates it. Raises InvalidInput."""
    problems = {f: p for f in FIELDS
                if (p := await field_problem(db, settings, f, form, replaces))}
    if problems:
        raise InvalidInput(errors=problems)
    # Hash first: on SQLite the DELETE below starts the write, and no writer should wait
    # for argon2.
    password_hash = await passwords.hash(form["password"])
    if replaces is not None:
        await db.execute(delete(OneTimeKey).where(
            OneTimeKey.id == replaces, OneTimeKey.purpose == "register",
            OneTimeKey.used_at.is_(None)))
    username, email = form["username"], normalise_email(form["email"])
    key, row = await keys.issue(db, settings, "register", username=username, email=email,
                                password_hash=password_hash, newsletter=newsletter)
    owner = await db.scalar(select(User).where(func.lower(User.email) == email))
    if owner is None:
        await send_mail(db, settings, email, "register_key", username=username, key=key,
                        minutes=settings.key_ttl_minutes)
    else:
        await send_mail(db, settings, email, "account_exists", username=owner.username,
                        email=email)
    await events.record(db, "register_pending", actor=username, existing_account=owner is not None,
                        newsletter=newsletter, **origin)
    return row.id


async def confirm(
    db: AsyncSession, settings: Settings, key: str, pending_id: int | None, origin: Origin
) -> User:
    """Create the account from the pending registration whose key this is. A wrong key is
    charged to the pending registration this browser submitted (``pending_id``). Raises
    keys.KeyRefused or Conflict (the username or address got an account meanwhile)."""
    charge = OneTimeKey.id == pending_id if pending_id is not None else None
    try:
        row = await keys.use(db, settings, "register", hash_key(key), charge=charge)
    except keys.KeyRefused as refused:
        await events.record(db, "key_rejected", purpose="register", pending_id=pending_id,
                            ended=refused.ended, **origin)
        raise
    user = User(username=row.username, email=row.email, password_hash=row.password_hash,
                is_active=True, newsletter=row.newsletter)
    try:
        # A savepoint: the key stays used when the unique index refuses the account.
        async with db.begin_nested():
            db.add(user)
    except IntegrityError:
        await events.record(db, "register_conflict", actor=row.username or "", **origin)
        name_taken = await db.scalar(select(exists().where(
            func.lower(User.username) == (row.username or "").lower())))
        raise Conflict(
            "This username was taken meanwhile; please register again with another one."
            if name_taken else
            "This e-mail address got an account meanwhile; log in or reset its password."
        ) from None
    await events.record(db, "user_created", actor_id=user.id, actor=user.username, **origin)
    if user.newsletter:
        # Ticked on the sign-up form (its register_pending event has that request's time and
        # address), confirmed now by the key from the mailbox.
        await newsletters.record_consent(db, user, True, "sign-up", origin,
                                         ticked_at=row.created_at.isoformat())
    return user


async def request_activation(
    db: AsyncSession, settings: Settings, raw_email: str, origin: Origin
) -> None:
    """Mail an activation key if the address belongs to an inactive account; the caller
    answers the same whatever happened (the same work too: the sender composes the mail, see
    ``activation_mail``). Raises InvalidInput for a malformed address only."""
    email = normalise_email(raw_email)
    await queue_request(db, "activate", email)
    await events.record(db, "activation_requested", **origin, email=email)


async def activation_mail(
    db: AsyncSession, settings: Settings, email: str
) -> Composed:
    """Composer of a queued activation request: a key for an inactive account, else no mail."""
    user = await db.scalar(select(User).where(func.lower(User.email) == email,
                                              User.is_active.is_(False)))
    if user is None:
        return None
    key, _row = await keys.issue(db, settings, "activate", user_id=user.id, email=user.email)
    return "activate_key", {"username": user.username, "key": key,
                            "minutes": settings.key_ttl_minutes}


async def activate(db: AsyncSession, settings: Settings, key: str, origin: Origin) -> User:
    """The correct activation key sets the account active. Raises keys.KeyRefused."""
    try:
        row = await keys.use(db, settings, "activate", hash_key(key))
    except keys.KeyRefused:
        await events.record(db, "key_rejected", purpose="activate", **origin)
        raise
    user = await db.get_one(User, row.user_id)
    user.is_active = True
    await events.record(db, "account_activated", actor_id=user.id, actor=user.username, **origin)
    return user
