"""Events viewer and export (SPEC P1): filters in the URL, bounded pages, escaped details,
events.json through the same filter, and the CLI sharing it."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from electro import cli, clock
from electro.models import Event
from electro.services import events
from tests.support import Client, make_user

# Recent, so the retention job (which runs when the app starts) leaves the rows alone.
T0 = datetime.combine(clock.now().date() - timedelta(days=5), time(12))
D1, D2 = (T0 + timedelta(days=1)).date().isoformat(), (T0 + timedelta(days=2)).date().isoformat()


async def _seed(app: Any, *rows: Event) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(delete(Event))
        db.add_all(rows)


async def _standard(app: Any) -> int:
    """Events of two accounts, two IPs, over three days; returns ann's id."""
    ann = await make_user(app, "ann2", email="ann2@example.com")
    await _seed(
        app,
        Event(type="authn_login_fail", actor="ann2", ip="10.0.0.1", created_at=T0,
              details={"n": 1}),
        Event(type="authn_login_fail", actor_id=ann.id, ip="10.0.0.2",
              created_at=T0 + timedelta(days=1), details={"n": 2}),
        Event(type="authn_login_ok", actor="bob", ip="10.0.0.1",
              created_at=T0 + timedelta(days=1, hours=3), details={"n": 3}),
        Event(type="authn_login_ok", actor="bob", actor_id=999, ip="10.0.0.2",
              created_at=T0 + timedelta(days=2), details={"n": 4}),
    )
    return ann.id


def _numbers(html: str) -> list[int]:
    """The rows' detail ``n`` values, in page order."""
    return [int(n) for n in re.findall(r'<span class="detail">n=(\d+)</span>', html)]


async def _page(client: Client, query: str, htmx: bool = False) -> tuple[int, str]:
    response = await client.get("/admin/events?" + query, htmx=htmx)
    return response.status_code, await response.get_data(as_text=True)


@pytest.mark.parametrize(("query", "expected"), [
    ("", [4, 3, 2, 1]),  # newest first
    ("type=authn_login_fail", [2, 1]),
    ("actor=ann2", [2, 1]),  # the recorded name, or the account's id through its username
    ("actor=ANN2", [2, 1]),
    ("actor=999", [4]),
    ("actor=bob", [4, 3]),
    ("ip=10.0.0.1", [3, 1]),
    (f"since={D1}", [4, 3, 2]),
    (f"until={D1}", [3, 2, 1]),  # a bare date includes that whole day
    (f"since={D1}T13:00&until={D2}T11:59", [3]),
    ("type=authn_login_ok&ip=10.0.0.2", [4]),
    ("type=nothing", []),
])
async def test_filters(app: Any, admin_client: Client, query: str, expected: list[int]) -> None:
    await _standard(app)
    status, html = await _page(admin_client, query)
    assert status == 200
    assert _numbers(html) == expected


async def test_filter_by_actor_id(app: Any, admin_client: Client) -> None:
    ann_id = await _standard(app)
    assert _numbers((await _page(admin_client, f"actor={ann_id}"))[1]) == [2]


async def test_htmx_gets_only_the_table_and_the_page_keeps_the_filter(
    app: Any, admin_client: Client
) -> None:
    await _standard(app)
    status, fragment = await _page(admin_client, "type=authn_login_ok", htmx=True)
    assert status == 200
    assert fragment.lstrip().startswith('<div id="events-table">') and "<form" not in fragment
    assert _numbers(fragment) == [4, 3]
    _, page = await _page(admin_client, "type=authn_login_ok")
    assert 'hx-push-url="true"' in page and 'name="type"' in page
    assert 'value="authn_login_ok"' in page
    assert 'href="/admin/events/export?type=authn_login_ok"' in page


@pytest.mark.parametrize(("query", "message"), [
    ("type=a%00b", "A filter cannot contain a NUL character"),  # PostgreSQL: a 500 before
    ("since=yesterday", "&#39;since&#39; must be a date (2026-11-25)"),
    ("until=2026-13-45", "&#39;until&#39; must be a date (2026-11-25)"),
    (f"since={D2}&until={D1}", "&#39;since&#39; must be before &#39;until&#39;"),
])
async def test_bad_filters_get_a_clear_message(
    app: Any, admin_client: Client, query: str, message: str
) -> None:
    for htmx in (False, True):
        status, html = await _page(admin_client, query, htmx=htmx)
        assert status == 422
        assert 'class="error" role="alert"' in html and message in html
        assert "<table" not in html


async def test_pages_are_bounded(app: Any, admin_client: Client) -> None:
    await _seed(app, *(Event(type="bulk", created_at=T0 + timedelta(minutes=i), details={"n": i})
                       for i in range(120)))
    first = _numbers((await _page(admin_client, "type=bulk"))[1])
    assert first == list(range(119, 69, -1))  # 50 per page, newest first
    status, html = await _page(admin_client, "type=bulk&page=3")
    assert _numbers(html) == list(range(19, -1, -1)) and "Page 3 of 3" in html
    for beyond, page_no in (("page=99", 3), ("page=0", 1), ("page=-1", 1), ("page=x", 1),
                            ("page=99999999999999999999", 3)):
        status, html = await _page(admin_client, "type=bulk&" + beyond)
        assert status == 200 and f"Page {page_no} of 3" in html, beyond
    _, first_page = await _page(admin_client, "type=bulk")
    assert 'href="/admin/events?type=bulk&amp;page=2"' in first_page


async def test_details_are_escaped(app: Any, admin_client: Client) -> None:
    await _seed(app, Event(type="<b>t</b>", actor="<i>a</i>", path="/<x>",
                           details={"q": "<script>alert(1)</script>"}))
    _, html = await _page(admin_client, "")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>t</b>" not in html and "<i>a</i>" not in html


async def test_export_is_the_filtered_json_array_and_is_recorded(
    app: Any, admin_client: Client
) -> None:
    await _standard(app)
    response = await admin_client.get("/admin/events/export?type=authn_login_fail&ip=10.0.0.1")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="events.json"'
    assert response.mimetype == "application/json"
    rows = json.loads(await response.get_data(as_text=True))
    assert [(r["type"], r["ip"], r["details"]) for r in rows] == [
        ("authn_login_fail", "10.0.0.1", {"n": 1})]
    assert set(rows[0]) == {"id", "time", "type", "actor_id", "actor", "ip", "path", "details"}
    everything = json.loads(await (await admin_client.get("/admin/events/export")).get_data())
    assert [r["details"].get("n") for r in everything if r["type"].startswith("authn")] == [
        4, 3, 2, 1]
    async with app.extensions["electro"].sessions() as db:
        recorded = list(await db.scalars(select(Event).where(Event.type == "admin_events_export")
                                          .order_by(Event.id)))
    assert [(e.actor, e.details) for e in recorded] == [
        ("admin", {"filter_type": "authn_login_fail", "filter_ip": "10.0.0.1"}), ("admin", {})]


async def test_export_streams_across_batches(app: Any) -> None:
    await _seed(app, *(Event(type="bulk", created_at=T0 + timedelta(seconds=i)) for i in range(7)))
    async with app.extensions["electro"].sessions() as db:
        chunks = [c async for c in events.export_json(db, events.EventFilter(type="bulk"), batch=3)]
    assert len(chunks) == 5  # "[", three batches, "]"
    assert [r["time"] for r in json.loads("".join(chunks))] == [
        (T0 + timedelta(seconds=i)).isoformat() + "Z" for i in range(6, -1, -1)]


@pytest.mark.parametrize(("query", "word"), [("since=soon", "since"), ("actor=a%00", "NUL")])
async def test_export_with_a_bad_filter_is_refused(
    app: Any, admin_client: Client, query: str, word: str
) -> None:
    """Before the first byte: on PostgreSQL a NUL cut the stream once it had begun."""
    response = await admin_client.get("/admin/events/export?" + query)
    assert response.status_code == 422
    assert word in await response.get_data(as_text=True)


async def test_non_admin_gets_403_and_anonymous_goes_to_login(
    app: Any, client: Client, user_client: Client
) -> None:
    for path in ("/admin", "/admin/events", "/admin/events/export"):
        assert (await user_client.get(path)).status_code == 403
        assert (await user_client.get(path, htmx=True)).status_code == 403
        anonymous = await client.get(path)
        assert anonymous.status_code == 302
        assert anonymous.headers["Location"].startswith("/login")


async def test_cli_export_uses_the_same_filter(
    app: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _standard(app)
    monkeypatch.setenv("ELECTRO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELECTRO_INSTANCE_DIR", str(tmp_path))
    out = tmp_path / "out.json"
    code = await asyncio.to_thread(cli.main, ["events", "export", "--output", str(out),
                                              "--actor", "bob", "--since", D2])
    assert code == 0
    assert [r["details"]["n"] for r in json.loads(out.read_text())] == [4]
    bad = await asyncio.to_thread(cli.main, ["events", "export", "--until", "nope"])
    assert bad == 2

