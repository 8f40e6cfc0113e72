"""Figures for the admin dashboard (SPEC D4): counts and per-day series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import Date, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from electro import clock
from electro.config import Settings
from electro.models import (
    Event,
    Newsletter,
    NewsletterDelivery,
    Order,
    OutboxMail,
    Product,
    SearchRecord,
    User,
    UserSession,
)
from electro.services import charts
from electro.services.orders import CANCELLED
from electro.services.sessions import account_blocked, live, longest_lifetime

LOGIN_FAIL = "authn_login_fail"


@dataclass(frozen=True)
class Counts:
    accounts: int
    active: int
    blocked: int
    products: int
    live_sessions: int
    outbox_pending: int
    outbox_failed: int
    events_24h: int
    subscribers: int
    newsletters_sending: int
    newsletter_pending: int
    newsletter_failed: int


@dataclass(frozen=True)
class Series:
    """One value per day, oldest first, every day of the window present (missing days are 0)."""

    title: str
    points: list[tuple[date, int]]


def _count(entity: Any, *where: Any) -> Any:
    return select(func.count()).select_from(entity).where(*where).scalar_subquery()


async def counts(db: AsyncSession, settings: Settings) -> Counts:
    """Every count in one round trip (scalar subqueries in one SELECT)."""
    now = clock.now()
    row = (await db.execute(select(
        _count(User),
        _count(User, User.is_active.is_(True)),
        _count(User, account_blocked(User.id, now)),
        _count(Product),
        # An admin's shorter lifetime is enforced at use; this is a dashboard figure.
        _count(UserSession, live(settings, now, longest_lifetime(settings))),
        _count(OutboxMail, OutboxMail.status == "pending"),
        _count(OutboxMail, OutboxMail.status == "failed"),
        _count(Event, Event.created_at >= now - timedelta(hours=24)),
        _count(User, User.newsletter.is_(True)),
        _count(Newsletter, Newsletter.started_at.is_not(None), Newsletter.finished_at.is_(None)),
        _count(NewsletterDelivery, NewsletterDelivery.status == "pending"),
        _count(NewsletterDelivery, NewsletterDelivery.status == "failed"),
    ))).one()
    return Counts(*(int(value) for value in row))


async def _per_day(
    db: AsyncSession, column: Any, start: datetime, *where: Any, value: Any = None
) -> dict[date, int]:
    """``value`` (default: the row count) per day of ``column`` since ``start``."""
    # date() exists on both SQLite (returns text) and PostgreSQL (returns a date); type_=Date
    # makes SQLAlchemy hand back a date either way. CAST(.. AS DATE) would not do on SQLite.
    day = func.date(column, type_=Date).label("day")
    rows = await db.execute(
        select(day, func.count() if value is None else value)
        .where(column >= start, *where).group_by(day)
    )
    return {d: int(n or 0) for d, n in rows}


async def _series(db: AsyncSession, days: int, wanted: Any) -> list[Series]:
    """Each (title, time column, conditions, value) as a series of the last ``days`` days
    (today last); one grouped query per series, bounded by the window."""
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time())
    window = [first + timedelta(days=i) for i in range(days)]
    series = []
    for title, column, where, value in wanted:
        found = await _per_day(db, column, start, *where, value=value)
        series.append(Series(title, [(d, found.get(d, 0)) for d in window]))
    return series


async def daily_series(db: AsyncSession, days: int = 30) -> list[Series]:
    """Sign-ups, searches and failed log-ins per day for the last ``days`` days."""
    return await _series(db, days, (
        ("Sign-ups", User.created_at, (), None),
        ("Searches", SearchRecord.created_at, (), None),
        ("Failed log-ins", Event.created_at, (Event.type == LOGIN_FAIL,), None),
    ))


async def order_series(db: AsyncSession, days: int = 30) -> list[Series]:
    """Orders placed, and their revenue in whole euros (cancelled orders left out), per day."""
    return await _series(db, days, (
        ("Orders", Order.created_at, (), None),
        ("Revenue (€)", Order.created_at, (Order.status != CANCELLED,),
         func.sum(Order.total_cents) / 100),
    ))


async def newsletter_series(db: AsyncSession, days: int = 30) -> list[Series]:
    """Newsletter mails sent per day."""
    return await _series(db, days, (
        ("Newsletter mails", NewsletterDelivery.sent_at, (), None),
    ))


@dataclass(frozen=True)
class Overview:
    counts: Counts
    charts: list[tuple[str, Markup, int]]  # title, SVG bar chart, total of the window


async def overview(db: AsyncSession, settings: Settings, days: int = 30) -> Overview:
    """What the dashboard shows: the counts, and a chart of each daily series (the orders' and
    newsletter mails' beside the others)."""
    series = [*await daily_series(db, days), *await order_series(db, days),
              *await newsletter_series(db, days)]
    return Overview(await counts(db, settings), [
        (s.title, charts.bar_chart(s.title, s.points), sum(v for _, v in s.points))
        for s in series
    ])
