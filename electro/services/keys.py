"""One-time keys for every purpose: 'register', 'reset', 'activate', 'email_change' (SPEC A2).

A key is >= 128 random bits (electro.security.keys.new_key); only its SHA-256 is stored, so the
clear key exists in the e-mail alone. One rule decides whether a key still works, checked where it
is used: unused, not expired and fewer than ``key_max_attempts`` wrong tries charged to it. The
purge job only tidies up.

Using a key is one UPDATE ... SET used_at WHERE key_hash = :h AND <still works> RETURNING: the
database lets exactly one of any number of concurrent requests flip ``used_at``, so a key works
once even when 50 browsers present it at the same instant.

Wrong tries. A wrong key hashes to no row, so there is nothing to count it against by itself. The
caller therefore says which pending key(s) a wrong try is *charged to* (``charge``, a SQL
condition), from something the request proves independently of the typed key:

- registration: the browser that submitted the registration keeps the pending row's id in its
  (signed) Quart session; a wrong key typed in that browser is charged to that row. Every
  registration submit stores such an id, including for an already-registered e-mail (a decoy row
  whose key nobody is sent), so the cookie does not tell which addresses have accounts.
- e-mail change: the signed-in account's pending 'email_change' key.

Another browser (say, the link opened on a phone) has nothing to charge, but it is also never
needed there: keys are unguessable (128+ bits), the link carries the right one, and per-IP rate
limits bound blind guessing. A charged row that reaches the maximum stops working at once
(``attempts < max`` is part of the rule), even for the correct key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.errors import DomainError
from electro.models import OneTimeKey
from electro.security.keys import hash_key, new_key

# "second_step": the pending state between a right password and its two-factor code.
PURPOSES = frozenset({"register", "reset", "activate", "email_change", "second_step"})


class KeyRefused(DomainError):
    """The key is unknown, used, expired or spent by wrong tries (the user learns no more).

    ``ended`` is True when this wrong try used up the last attempt of the charged key.
    """

    def __init__(self, ended: bool = False) -> None:
        super().__init__("This key does not work: it may be mistyped, already used or expired.")
        self.ended = ended


def works(purpose: str, settings: Settings) -> ColumnElement[bool]:
    """The one rule: a key of this purpose still works now."""
    return and_(
        OneTimeKey.purpose == purpose,
        OneTimeKey.used_at.is_(None),
        OneTimeKey.expires_at > clock.now(),
        OneTimeKey.attempts < settings.key_max_attempts,
    )


async def issue(
    db: AsyncSession, settings: Settings, purpose: str, *, ttl: timedelta | None = None,
    **fields: Any,
) -> tuple[str, OneTimeKey]:
    """A new key; returns (clear key for the mail, stored row). ``fields``: user_id, username,
    email, password_hash. A new key for an account replaces its unused ones of the same
    purpose (the latest mail is the one that works). ``ttl``: its lifetime, when not
    ELECTRO_KEY_TTL_MINUTES."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    user_id = fields.get("user_id")
    if user_id is not None:
        await db.execute(delete(OneTimeKey).where(
            OneTimeKey.purpose == purpose, OneTimeKey.user_id == user_id,
            OneTimeKey.used_at.is_(None)))
    key = new_key()
    now = clock.now()
    row = OneTimeKey(purpose=purpose, key_hash=hash_key(key), created_at=now,
                     expires_at=now + (ttl or timedelta(minutes=settings.key_ttl_minutes)),
                     **fields)
    db.add(row)
    await db.flush()
    return key, row


async def peek(
    db: AsyncSession, settings: Settings, purpose: str, key_hash: str
) -> OneTimeKey | None:
    """The key's row if it still works, without using it (to show a form for it)."""
    row: OneTimeKey | None = await db.scalar(
        select(OneTimeKey).where(OneTimeKey.key_hash == key_hash, works(purpose, settings)))
    return row


async def use(
    db: AsyncSession,
    settings: Settings,
    purpose: str,
    key_hash: str,
    *,
    owner: ColumnElement[bool] | None = None,
    charge: ColumnElement[bool] | None = None,
) -> OneTimeKey:
    """Use a key exactly once, atomically. ``owner`` further restricts which row the key may
    be (e.g. the signed-in account's); ``charge`` selects the pending row(s) a wrong try counts
    against. Raises KeyRefused."""
    condition = and_(OneTimeKey.key_hash == key_hash, works(purpose, settings))
    if owner is not None:
        condition = and_(condition, owner)
    used = (await db.scalars(
        update(OneTimeKey).where(condition).values(used_at=clock.now())
        .returning(OneTimeKey).execution_options(synchronize_session=False)
    )).all()
    if len(used) == 1:
        return used[0]
    if charge is None:
        raise KeyRefused()
    raise KeyRefused(ended=await charge_wrong_try(db, settings, purpose, charge))


async def charge_wrong_try(
    db: AsyncSession, settings: Settings, purpose: str, charge: ColumnElement[bool]
) -> bool:
    """Count one wrong try against the working key(s) ``charge`` selects; True when this try
    used up the last attempt of one."""
    attempts = (await db.scalars(
        update(OneTimeKey).where(works(purpose, settings), charge)
        .values(attempts=OneTimeKey.attempts + 1)
        .returning(OneTimeKey.attempts).execution_options(synchronize_session=False)
    )).all()
    return any(n >= settings.key_max_attempts for n in attempts)


async def purge_expired_keys(db: AsyncSession, settings: Settings) -> int:
    """Tidy-up job: delete used, expired and spent keys (they are refused at use anyway)."""
    result = await db.execute(delete(OneTimeKey).where(or_(
        OneTimeKey.used_at.is_not(None),
        OneTimeKey.expires_at <= clock.now(),
        OneTimeKey.attempts >= settings.key_max_attempts,
    )))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
