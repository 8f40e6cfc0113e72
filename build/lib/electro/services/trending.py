"""Trending searches (S3): counted once per client per query per hour, decayed over 7 days.

A search is a row in ``searches`` whose unique key (query, client, hour) makes a repeat a no-op
(INSERT ... ON CONFLICT DO NOTHING: no read-then-write race). Only a row that was really inserted
adds one client to ``search_daily`` (an atomic upsert), so the rank is kept up to date as
searches arrive and reading it never scans ``searches``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.db import upsert_insert
from electro.models import SearchDaily, SearchRecord
from electro.services.search import normalise

MIN_QUERY_LENGTH = 3
DAYS = 7
DECAY = 0.6  # a client's search yesterday weighs 0.6 of one today, 2 days ago 0.36, ...
TOP = 10
SHIPPED_DISALLOWED = Path(__file__).parent.parent / "data" / "disallowed-words.txt"


@dataclass(frozen=True)
class Trend:
    query: str
    score: float


def client_hash(secret: str, identity: str) -> str:
    """Who searched, unlinkable to an IP or account without the secret key."""
    return hmac.new(secret.encode(), identity.encode(), hashlib.sha256).hexdigest()


def load_disallowed(path: Path) -> frozenset[str]:
    """One word (or phrase) a line, ``#`` comments; normalised like queries. Blocking file I/O:
    call it in a thread."""
    entries = (normalise(line.split("#", 1)[0]) for line in path.read_text("utf-8").splitlines())
    return frozenset(entry for entry in entries if entry)


def is_disallowed(query: str, disallowed: frozenset[str]) -> bool:
    """Whole words in any case: "piss" blocks "PISS off", not "pissarro prints"."""
    padded = f" {query} "
    return any(f" {entry} " in padded for entry in disallowed)


def counts(query: str, results: int, disallowed: frozenset[str]) -> bool:
    return len(query) >= MIN_QUERY_LENGTH and results > 0 and not is_disallowed(query, disallowed)


async def record(
    db: AsyncSession, query: str, client: str, results: int, disallowed: frozenset[str]
) -> bool:
    """Count ``client``'s search of the normalised ``query``; False when it does not count or
    was already counted this hour. Starts with the write, so SQLite's busy_timeout applies."""
    if not counts(query, results, disallowed):
        return False
    now = clock.now()
    insert = upsert_insert(db)
    inserted = await db.scalar(
        insert(SearchRecord)
        .values(
            query=query, client_hash=client, results=results, created_at=now,
            hour_start=now.replace(minute=0, second=0, microsecond=0),
        )
        .on_conflict_do_nothing(index_elements=["query", "client_hash", "hour_start"])
        .returning(SearchRecord.id)
    )
    if inserted is None:
        return False
    daily = insert(SearchDaily).values(query=query, day=now.date(), clients=1)
    await db.execute(
        daily.on_conflict_do_update(
            index_elements=["query", "day"], set_={"clients": SearchDaily.clients + 1}
        )
    )
    return True


def _weights(today: date) -> dict[date, float]:
    return {today - timedelta(days=age): DECAY**age for age in range(DAYS)}


async def top(db: AsyncSession, disallowed: frozenset[str], limit: int = TOP) -> list[Trend]:
    """The best-scored queries: distinct clients per day, decayed by the day's age."""
    weights = _weights(clock.now().date())
    score = func.sum(SearchDaily.clients * case(weights, value=SearchDaily.day, else_=0.0))
    rows = await db.execute(
        select(SearchDaily.query, score.label("score"))
        .where(SearchDaily.day >= min(weights))
        .group_by(SearchDaily.query)
        .order_by(score.desc(), SearchDaily.query)
        # The list may have been edited since these were counted: over-fetch, then filter.
        .limit(limit * 3)
    )
    trends = [Trend(q, float(s)) for q, s in rows.all() if not is_disallowed(q, disallowed)]
    return trends[:limit]
