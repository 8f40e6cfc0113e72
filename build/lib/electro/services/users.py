"""User accounts: the username/e-mail rules (SPEC A1) and creating a user."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from electro.config import Settings
from electro.errors import FieldError
from electro.models import User
from electro.security.passwords import Passwords, policy_problems
from electro.services import events

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")


class UserError(FieldError):
    """The input cannot make an account; the message says what to change. A ``FieldError``:
    forms (the admin's user fields) take the message as that field's, with no re-wrapping."""


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise UserError("A username has 3 to 32 characters: letters, digits, '_', '.' or '-'.")
    return username


def normalise_email(address: str) -> str:
    """The address as stored: syntax checked (no DNS: the machines have none), lower case."""
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise UserError(f"That e-mail address is not valid: {exc}") from None


async def taken(db: AsyncSession, username: str, email: str) -> str | None:
    """What is already in use, ignoring case: 'username', 'e-mail address' or None."""
    rows = await db.execute(
        select(func.lower(User.username) == username.lower(), func.lower(User.email) == email)
        .where(or_(func.lower(User.username) == username.lower(), func.lower(User.email) == email))
        .limit(1)
    )
    row = rows.first()
    if row is None:
        return None
    return "username" if row[0] else "e-mail address"


async def admin_exists(db: AsyncSession) -> bool:
    return bool(await db.scalar(select(exists().where(User.is_admin.is_(True)))))


async def create_user(
    db: AsyncSession,
    passwords: Passwords,
    settings: Settings,
    *,
    username: str,
    email: str,
    password: str,
    is_admin: bool = False,
    actor: str = "",
) -> User:
    """An active account, after the format, password-policy and uniqueness checks."""
    username = check_username(username)
    email = normalise_email(email)
    problems = policy_problems(password, settings, username=username, email=email)
    if problems:
        raise UserError(" ".join(problems))
    what = await taken(db, username, email)
    if what:
        raise UserError(f"That {what} is already taken.")
    user = User(
        username=username,
        email=email,
        password_hash=await passwords.hash(password),
        is_active=True,
        is_admin=is_admin,
    )
    db.add(user)
    try:
        # Flush inside a savepoint: a concurrent insert of the same name fails here, cleanly.
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:
        raise UserError("That username or e-mail address is already taken.") from None
    await events.record(
        db, "user_created", actor=actor, user_id=user.id, username=username, is_admin=is_admin
    )
    return user
