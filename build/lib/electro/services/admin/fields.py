"""How a cell shows a value, and the converters that read a typed value back.

A converter takes the session (some look a name up) and the raw text, and returns the value to
store or raises ``FieldError`` with what to type instead; the editor gathers those messages.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro import inputs
from electro.errors import FieldError
from electro.models import Category
from electro.services import blocking, users

Parser = Callable[[AsyncSession, str], Awaitable[object]]
_MONEY = re.compile(r"\d{1,7}(\.\d{1,2})?")  # fits a 32-bit integer of cents


# ---------------------------------------------------------------- display


def show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def show_money(cents: object) -> str:
    """1234 -> "12.34", exactly (integer arithmetic, no float)."""
    if not isinstance(cents, int):
        return show(cents)
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def show_short(value: object) -> str:
    text = show(value)
    return text if len(text) <= 60 else text[:59] + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- converters


def text(max_len: int, required: bool = True) -> Parser:
    async def parse(_db: AsyncSession, raw: str) -> str:
        value = raw.strip()
        if required and not value:
            raise FieldError("This field is required")
        if len(value) > max_len:
            raise FieldError(f"At most {max_len} characters")
        return value

    return parse


def money(required: bool = True) -> Parser:
    async def parse(_db: AsyncSession, raw: str) -> int | None:
        value = raw.strip()
        if not value and not required:
            return None
        if not _MONEY.fullmatch(value):
            raise FieldError("Enter a price like 12.99")
        return int(Decimal(value) * 100)  # Decimal: "0.29" is 29 cents, never 28.999…

    return parse


async def count(_db: AsyncSession, raw: str) -> int:
    return inputs.whole_number(raw)


async def yes_no(_db: AsyncSession, raw: str) -> bool:
    if raw not in ("yes", "no"):
        raise FieldError("Choose yes or no")
    return raw == "yes"


async def username(_db: AsyncSession, raw: str) -> str:
    return users.check_username(raw.strip())  # the account rule, refused as a FieldError


async def email(_db: AsyncSession, raw: str) -> str:
    return users.normalise_email(raw.strip())


def parse_when(raw: str) -> datetime:
    """A date and time as typed (an offset is honoured), as naive UTC to the second."""
    return inputs.moment(raw).replace(microsecond=0)


async def block_end(_db: AsyncSession, raw: str) -> datetime:
    """A block's end: a date and time in the future (to end a block now, lift it)."""
    return blocking.check_until(parse_when(raw))


async def ip_address(_db: AsyncSession, raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise FieldError("Enter an IP address like 203.0.113.7") from None


async def category_by_name(db: AsyncSession, raw: str) -> int:
    name = raw.strip()
    found = await db.scalar(select(Category.id).where(func.lower(Category.name) == name.lower()))
    if found is None:
        raise FieldError(f"There is no category named {name!r}")
    return found
