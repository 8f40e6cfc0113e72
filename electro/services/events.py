"""The event log (OWASP logging vocabulary: authn_login_fail, authz_fail, ...)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock, inputs
from electro.errors import FieldError, InvalidInput
from electro.models import Event, User
from electro.services.paging import clamp

_SECRET_NAMES = re.compile(r"pass|key|token|secret|session|hash", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 500


def clean_text(value: str, limit: int = MAX_TEXT) -> str:
    """Neutralise CR/LF and control characters (no forged log lines) and bound the length."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)[:limit]


def clean_details(details: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in details.items():
        name = clean_text(str(name), 64)
        if _SECRET_NAMES.search(name):
            out[name] = "[redacted]"
        elif isinstance(value, bool | int | float) or value is None:
            out[name] = value
        elif isinstance(value, list | tuple):
            out[name] = [v if isinstance(v, int) else clean_text(str(v)) for v in value][:1000]
        else:
            out[name] = clean_text(str(value))
    return out


class Origin(TypedDict):
    """Where a request came from, for the events a service records about it."""

    ip: str
    path: str


async def record(
    db: AsyncSession,
    type_: str,
    *,
    actor_id: int | None = None,
    actor: str = "",
    ip: str = "",
    path: str = "",
    **details: Any,
) -> Event:
    event = Event(
        type=clean_text(type_, 64),
        actor_id=actor_id,
        actor=clean_text(actor, 64),
        ip=clean_text(ip, 45),
        path=clean_text(path, 255),
        details=clean_details(details),
        created_at=clock.now(),
    )
    db.add(event)
    return event


@dataclass(frozen=True)
class Actor:
    """Who did something: the account (None for the CLI and jobs) and where the request came
    from; every event of an admin's action carries all of it."""

    id: int | None = None
    name: str = ""
    ip: str = ""
    path: str = ""

    async def record(self, db: AsyncSession, type_: str, **details: Any) -> Event:
        return await record(db, type_, actor_id=self.id, actor=self.name, ip=self.ip,
                            path=self.path, **details)


NOBODY = Actor()  # the CLI and background jobs


def as_dict(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": event.created_at.isoformat() + "Z",
        "type": event.type,
        "actor_id": event.actor_id,
        "actor": event.actor,
        "ip": event.ip,
        "path": event.path,
        "details": event.details,
    }


class FilterError(InvalidInput):
    """An events filter value could not be understood; the message says which and why."""


@dataclass(frozen=True)
class EventFilter:
    """What the events viewer, its export and the CLI filter by (all optional)."""

    type: str = ""
    actor: str = ""  # a user id, or a name (the recorded actor or the account's username)
    ip: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def as_query(self) -> dict[str, str]:
        """The filter as URL parameters (for page links and the export link)."""
        values = {"type": self.type, "actor": self.actor, "ip": self.ip,
                  "since": self.since.isoformat(timespec="minutes") if self.since else "",
                  "until": self.until.isoformat(timespec="minutes") if self.until else ""}
        return {name: value for name, value in values.items() if value}


def _parse_time(name: str, raw: str, *, end_of_day: bool) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:  # a bare date: since its start, until the end of that day
            return inputs.day_start(raw, next_day=end_of_day)
        return inputs.moment(raw)
    except FieldError:
        raise FilterError(
            f"{name!r} must be a date (2026-11-25) or a date and time (2026-11-25T14:30), "
            f"in years 1 to 9999; got {clean_text(raw, 40)!r}"
        ) from None


def parse_filter(args: Mapping[str, str]) -> EventFilter:
    """Read a filter from URL parameters or CLI options; raises FilterError."""
    since = _parse_time("since", args.get("since", ""), end_of_day=False)
    until = _parse_time("until", args.get("until", ""), end_of_day=True)
    if since is not None and until is not None and since >= until:
        raise FilterError("'since' must be before 'until'")
    texts = {name: args.get(name, "").strip()[:limit]
             for name, limit in (("type", 64), ("actor", 64), ("ip", 45))}
    if any("\x00" in value for value in texts.values()):
        # PostgreSQL cannot compare text with a NUL; refused here, the export refuses it
        # before its first byte instead of cutting its stream.
        raise FilterError("A filter cannot contain a NUL character")
    return EventFilter(**texts, since=since, until=until)


def _user_id(actor: str) -> int | None:
    """An actor filter that reads as an account id (it may also be a name)."""
    try:
        return inputs.whole_number(actor, minimum=1)
    except FieldError:
        return None


def filtered(f: EventFilter) -> Select[Event]:
    """The one place the filter becomes SQL (viewer, export and CLI share it); newest first."""
    query = select(Event)
    if f.type:
        query = query.where(Event.type == f.type)
    if f.actor:
        by_name = or_(func.lower(Event.actor) == f.actor.lower(),
                      Event.actor_id.in_(select(User.id).where(
                          func.lower(User.username) == f.actor.lower())))
        query = query.where(or_(Event.actor_id == _user_id(f.actor), by_name)
                            if _user_id(f.actor) is not None else by_name)
    if f.ip:
        query = query.where(Event.ip == f.ip)
    if f.since is not None:
        query = query.where(Event.created_at >= f.since)
    if f.until is not None:
        query = query.where(Event.created_at < f.until)
    return query.order_by(Event.created_at.desc(), Event.id.desc())


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    page: int
    pages: int
    total: int


async def query(db: AsyncSession, f: EventFilter, page: int = 1, per_page: int = 50) -> EventPage:
    """One page of the filtered events; ``page`` is clamped into 1..pages."""
    base = filtered(f)
    total = int(await db.scalar(select(func.count()).select_from(base.order_by(None).subquery()))
                or 0)
    page, pages = clamp(page, total, per_page)
    rows = await db.scalars(base.limit(per_page).offset((page - 1) * per_page))
    return EventPage(list(rows), page, pages, total)


async def event_types(db: AsyncSession) -> list[str]:
    """The types present in the log (suggestions for the filter)."""
    return list(await db.scalars(select(Event.type).distinct().order_by(Event.type)))


async def export_json(db: AsyncSession, f: EventFilter, batch: int = 1000) -> AsyncIterator[str]:
    """The filtered events as one JSON array, streamed in chunks of ``batch`` events, so memory
    does not grow with the log (a server-side cursor on PostgreSQL)."""
    result = await db.stream_scalars(filtered(f).execution_options(yield_per=batch))
    yield "["
    first = True
    async for chunk in result.partitions(batch):
        text = ",\n".join(json.dumps(as_dict(e)) for e in chunk)
        yield text if first else ",\n" + text
        first = False
    yield "]\n"


async def apply_retention(db: AsyncSession, days: int) -> int:
    """Delete events older than ``days``; returns how many went."""
    cutoff = clock.now() - timedelta(days=days)
    result = await db.execute(delete(Event).where(Event.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
