"""The one way every route, form and CLI option reads a number or a date from text.

Each refuses what it cannot represent with a ``FieldError`` saying what to type, so no odd
value (digits of other scripts such as '²', thousands of digits, a date whose UTC conversion
leaves years 1-9999) reaches the database or Python's arithmetic as a crash.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from electro import clock
from electro.errors import FieldError

MAX_INT = 2**31 - 1  # what an INTEGER column holds on PostgreSQL


def whole_number(raw: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """ASCII digits only (``str.isdigit`` also takes '²', which ``int`` refuses)."""
    value = raw.strip()
    if (value.isascii() and value.isdigit() and len(value) <= len(str(maximum))
            and minimum <= int(value) <= maximum):
        return int(value)
    if maximum == MAX_INT:  # the column's limit, not a rule of the field: not worth saying
        raise FieldError(f"Enter a whole number, {minimum} or more")
    raise FieldError(f"Enter a whole number from {minimum} to {maximum:,}")


def moment(raw: str) -> datetime:
    """A date and time as typed (2026-12-31T18:00, a space instead of the T, seconds and a zone
    such as +01:00 or Z optional), as naive UTC: the database's convention."""
    value = raw.strip()
    try:
        if not value.isascii():
            raise ValueError(value)
        return clock.naive_utc(datetime.fromisoformat(value.replace(" ", "T", 1)))
    except (ValueError, OverflowError):  # OverflowError: its UTC time leaves years 1-9999
        raise FieldError("Enter a date and time like 2026-12-31T18:00 (years 1 to 9999)") from None


def day_start(raw: str, *, next_day: bool = False) -> datetime:
    """A date (2026-12-31) as the naive UTC moment it starts, or the next day starts."""
    value = raw.strip()
    try:
        if not value.isascii():
            raise ValueError(value)
        start = datetime.combine(date.fromisoformat(value), time.min)
        return start + timedelta(days=1) if next_day else start
    except (ValueError, OverflowError):
        raise FieldError("Enter a date like 2026-12-31 (years 1 to 9998)") from None
