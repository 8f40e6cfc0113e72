"""Personal access tokens for the API (SPEC B3).

A token is 192 random bits shown once; only its SHA-256 is stored (like session ids), so a
leaked database or backup hands out no token. Whether a token works is decided where it is
presented: not revoked, not past ``expires_at``, its account active and not blocked. Every
token created, used from a new address, or revoked is an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock, inputs
from electro.config import Settings
from electro.errors import FieldError, InvalidInput, NotFound
from electro.models import ApiToken, User
from electro.security.keys import hash_key, new_key
from electro.services import events
from electro.services.events import Origin
from electro.services.sessions import account_blocked

# Events name a token by "pat_id": a detail whose name says "token" is redacted from the log.
PREFIX = "electro_pat_"  # says what a leaked string is (and lets secret scanners find it)
MAX_NAME = 80
# last_used_at is written at most this often (a new address is always written at once).
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Bearer:
    """A presented token that works, and its owner."""

    token: ApiToken
    user: User


def _parse(settings: Settings, name: str, expires_days: str) -> tuple[str, int]:
    errors = {}
    name = name.strip()
    if not 0 < len(name) <= MAX_NAME:
        errors["name"] = f"Give the token a name of 1 to {MAX_NAME} characters"
    days = 0
    try:
        days = inputs.whole_number(expires_days, minimum=1, maximum=settings.api_token_max_days)
    except FieldError as refused:
        errors["expires_days"] = str(refused)
    if errors:
        raise InvalidInput(errors=errors)
    return name, days


async def create(
    db: AsyncSession, settings: Settings, user: User, name: str, expires_days: str,
    origin: Origin,
) -> str:
    """A new token for ``user``; returns the clear token, to be shown once."""
    name, days = _parse(settings, name, expires_days)
    clear = PREFIX + new_key()
    now = clock.now()
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_key(clear), created_at=now,
                     expires_at=now + timedelta(days=days))
    db.add(token)
    await db.flush()
    await events.record(db, "api_token_created", actor_id=user.id, actor=user.username,
                        **origin, pat_id=token.id, name=name, days=days)
    return clear


async def owned(db: AsyncSession, user: User) -> list[ApiToken]:
    """The account's tokens that are not revoked (expired ones too, marked so), newest first."""
    rows = await db.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(rows)


async def revoke(db: AsyncSession, user: User, token_id: int, origin: Origin) -> None:
    """Revoke one of the asking account's own tokens (another's is a 404, like a missing one)."""
    revoked = await db.scalar(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.user_id == user.id,
               ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .returning(ApiToken.name)
    )
    if revoked is None:
        raise NotFound("There is no such token (or it was revoked already).")
    await events.record(db, "api_token_revoked", actor_id=user.id, actor=user.username,
                        **origin, pat_id=token_id, name=revoked)


async def authenticate(db: AsyncSession, clear: str, origin: Origin) -> Bearer | None:
    """The token's owner if the token works now, else None (unknown, revoked, expired, or its
    account inactive or blocked). Records the time it was used and, when the address is new
    for this token, the address and an event."""
    now = clock.now()
    row = (await db.execute(
        select(ApiToken, User, account_blocked(User.id, now))
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_key(clear))
    )).first()
    if row is None:
        return None
    token, user, blocked = row
    if token.revoked_at is not None or token.expires_at <= now or not user.is_active or blocked:
        return None
    ip = origin["ip"][:45]
    if ip != token.last_used_ip:
        await events.record(db, "api_token_new_ip", actor_id=user.id, actor=user.username,
                            **origin, pat_id=token.id, previous_ip=token.last_used_ip)
        token.last_used_ip = ip
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
    return Bearer(token, user)
