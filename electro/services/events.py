"""The event log (OWASP logging vocabulary: authn_login_fail, authz_fail, ...)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.models import Event

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


async def export(db: AsyncSession, since: datetime | None = None) -> list[dict[str, Any]]:
    query = select(Event).order_by(Event.id)
    if since is not None:
        query = query.where(Event.created_at >= since)
    return [as_dict(e) for e in (await db.scalars(query))]


async def apply_retention(db: AsyncSession, days: int) -> int:
    """Delete events older than ``days``; returns how many went."""
    cutoff = clock.now() - timedelta(days=days)
    result = await db.execute(delete(Event).where(Event.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
