"""The one clock every expiry check reads: naive UTC, movable by tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    """Current UTC time without tzinfo (SQLite stores no zones, so all times are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None) + _offset


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as stored: a time with a zone becomes UTC without it; a naive one is UTC
    already."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
