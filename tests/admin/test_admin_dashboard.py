"""Admin dashboard (SPEC D4): counts from the real tables, per-day series, server-side SVG."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete

from electro import clock
from electro.models import (
    AccountBlock,
    Category,
    Event,
    Newsletter,
    NewsletterDelivery,
    OutboxMail,
    Product,
    SearchRecord,
    User,
    UserSession,
)
from electro.services import charts, dashboard
from tests.support import Client, make_user


async def _add(app: Any, *rows: Any) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        db.add_all(rows)


async def _seed_counts(app: Any) -> None:
    """Beside the admin (active, one live session): an inactive account, one blocked now, one
    whose block was lifted and one whose block ran out; sessions live, ended and idle; outbox
    mail in every state; events inside and outside the last 24 hours; three products; two
    subscribers, a newsletter being sent (one mail of it in each state) and one finished."""
    now = clock.now()
    await make_user(app, "ina", is_active=False)
    blocked = await make_user(app, "bea")
    lifted = await make_user(app, "lif")
    expired = await make_user(app, "exp")
    category = Category(name="Phones")
    await _add(app, category)
    mail = {"subject": "s", "body": "b", "template": "test"}
    await _add(
        app,
        AccountBlock(user_id=blocked.id, until=now + timedelta(days=1), reason="spam"),
        AccountBlock(user_id=lifted.id, until=now + timedelta(days=1), lifted_at=now),
        AccountBlock(user_id=expired.id, until=now - timedelta(minutes=1)),
        UserSession(token_hash="a" * 64, user_id=blocked.id, last_seen_at=now, created_at=now),
        UserSession(token_hash="b" * 64, user_id=lifted.id, ended_at=now),
        UserSession(token_hash="c" * 64, user_id=expired.id,
                    last_seen_at=now - timedelta(days=1), created_at=now - timedelta(days=1)),
        *(Product(name=f"P{i}", category_id=category.id, price_cents=100) for i in range(3)),
        OutboxMail(to_addr="a@example.com", status="pending", **mail),
        OutboxMail(to_addr="b@example.com", status="pending", **mail),
        OutboxMail(to_addr="c@example.com", status="failed", **mail),
        OutboxMail(to_addr="d@example.com", status="sent", **mail),
    )
    async with app.extensions["electro"].sessions.begin() as db:
        for user in (lifted, expired):
            (await db.get_one(User, user.id)).newsletter = True
        sending = Newsletter(subject="s", body="b", picks=0, started_at=now)
        db.add_all([sending, Newsletter(subject="t", body="b", picks=0, started_at=now,
                                        finished_at=now)])
        await db.flush()
        db.add_all([NewsletterDelivery(newsletter_id=sending.id, user_id=user.id, status=status)
                    for user, status in ((lifted, "pending"), (expired, "failed"),
                                         (blocked, "sent"))])
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(delete(Event))  # only the events below count
        db.add_all([
            Event(type="x", created_at=now - timedelta(hours=1)),
            Event(type="x", created_at=now - timedelta(hours=23)),
            Event(type="x", created_at=now - timedelta(hours=25)),
        ])


async def test_counts_match_the_rows(app: Any, admin_client: Client) -> None:
    await _seed_counts(app)
    rt = app.extensions["electro"]
    async with rt.sessions() as db:
        counts = await dashboard.counts(db, rt.settings)
    assert counts == dashboard.Counts(
        accounts=5, active=4, blocked=1, products=3, live_sessions=2,
        outbox_pending=2, outbox_failed=1, events_24h=2, subscribers=2,
        newsletters_sending=1, newsletter_pending=1, newsletter_failed=1,
    )


async def test_dashboard_page_shows_counts_and_csp_safe_charts(
    app: Any, admin_client: Client
) -> None:
    await _seed_counts(app)
    response = await admin_client.get("/admin")
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    for label, value in (("Accounts", 5), ("Active", 4), ("Blocked now", 1), ("Products", 3),
                         ("Live sessions", 2), ("Outbox pending", 2), ("Outbox failed", 1),
                         ("Newsletter subscribers", 2), ("Newsletter mails pending", 1),
                         ("Newsletter mails failed", 1)):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in html
    assert '<dt>Newsletters sending</dt><dd><a href="/admin/newsletters">1</a></dd>' in html
    # sign-ups, searches, failed log-ins, orders, revenue, newsletter mails
    assert html.count("<svg") == 6
    assert html.count('<rect class="bar"') == 180  # 30 days each
    assert "style=" not in html
    static_scripts = ('<script src="/static/htmx.min.js" defer></script>',  # vendored
                      '<script src="/static/a11y.js" defer></script>',  # focus after swaps
                      '<script src="/static/basket.js" defer></script>')  # the basket count
    for script in static_scripts:
        html = html.replace(script, "")
    assert "<script" not in html  # only the static files: no inline script
    assert "no-store" in response.headers["Cache-Control"]
    fragment = await (await admin_client.get("/admin", htmx=True)).get_data(as_text=True)
    assert 'id="dashboard"' in fragment
    assert "<html" not in fragment


async def test_daily_series_count_per_day_with_missing_days_zero(app: Any) -> None:
    now = clock.now()
    today = now.date()
    users = [User(username=f"u{i}", email=f"u{i}@example.com", password_hash="x",
                  created_at=when)
             for i, when in enumerate([now, now - timedelta(days=3), now - timedelta(days=3),
                                       now - timedelta(days=29), now - timedelta(days=31)])]
    searches = [SearchRecord(query="usb", client_hash=str(i), hour_start=now,
                             created_at=now - timedelta(days=i % 2)) for i in range(5)]
    events = [Event(type=t, created_at=now - timedelta(days=d))
              for t, d in (("authn_login_fail", 0), ("authn_login_fail", 1),
                           ("authn_login_fail", 40), ("authn_login_ok", 0))]
    await _add(app, *users, *searches, *events)
    async with app.extensions["electro"].sessions() as db:
        signups, searched, failed = await dashboard.daily_series(db, days=30)
    for series in (signups, searched, failed):
        assert [d for d, _ in series.points] == [today - timedelta(days=29 - i) for i in range(30)]
    by_day = dict(signups.points)
    assert (by_day[today], by_day[today - timedelta(days=3)]) == (1, 2)
    assert by_day[today - timedelta(days=29)] == 1
    assert sum(by_day.values()) == 4  # the 31-day-old account is outside the window
    assert dict(searched.points)[today] == 3 and sum(v for _, v in searched.points) == 5
    assert dict(failed.points)[today] == 1 and sum(v for _, v in failed.points) == 2


def _bars(svg: str) -> list[tuple[float, str]]:
    return [(float(h), title) for h, title in
            re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"><title>([^<]*)</title>', svg)]


def test_bar_chart_has_one_proportional_bar_per_day_with_a_title() -> None:
    first = date(2026, 11, 1)
    points = [(first + timedelta(days=i), v) for i, v in enumerate([0, 5, 10] + [0] * 27)]
    svg = str(charts.bar_chart("Sign-ups <b>", points))
    bars = _bars(svg)
    assert len(bars) == 30
    tallest = bars[2][0]
    assert tallest > 0 and bars[0][0] == 0
    assert bars[1][0] == tallest / 2  # proportional to the values
    assert bars[1][1] == "2026-11-02: 5"
    assert "Sign-ups &lt;b&gt;" in svg and "<b>" not in svg
    assert "style" not in svg
    assert ">10</text>" in svg and "01 Nov" in svg and "30 Nov" in svg


def test_bar_chart_of_all_zero_days_draws_flat_bars() -> None:
    points = [(date(2026, 11, 1) + timedelta(days=i), 0) for i in range(30)]
    assert [h for h, _ in _bars(str(charts.bar_chart("Searches", points)))] == [0.0] * 30
