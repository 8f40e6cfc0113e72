"""S3 trending rank: counted once per client per query per hour, decayed, never pumped."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from electro import clock
from electro.models import SearchDaily, SearchRecord
from electro.services import search, trending
from tests.support import Client, make_user, sign_in
from tests.support.accounts import count_rows
from tests.support.shop import add_catalogue

NOTHING: frozenset[str] = frozenset()


async def _record(app: Any, query: str, client: str, hits: int = 1) -> bool:
    async with app.extensions["electro"].sessions.begin() as db:
        return await trending.record(db, query, client, hits, NOTHING)


async def _top(app: Any, disallowed: frozenset[str] = NOTHING) -> list[str]:
    async with app.extensions["electro"].sessions() as db:
        return [t.query for t in await trending.top(db, disallowed)]


async def test_thirty_searches_by_one_client_count_once(
    client: Any, app: Any, catalogue: dict[str, int]
) -> None:
    for _ in range(30):
        assert (await client.get("/search?q=Lumen+PHONE", htmx=True)).status_code == 200
    async with app.extensions["electro"].sessions() as db:
        daily = (await db.scalars(select(SearchDaily))).all()
    assert [(d.query, d.clients) for d in daily] == [("lumen phone", 1)]
    assert await count_rows(app, SearchRecord) == 1
    # The same through the service, without the web layer's memory of what it stored.
    assert [await _record(app, "lumen phone", "other") for _ in range(30)].count(True) == 1
    async with app.extensions["electro"].sessions() as db:
        assert await db.scalar(select(SearchDaily.clients)) == 2
    # Next hour the same client counts again (once).
    clock.advance(timedelta(hours=1))
    assert await _record(app, "lumen phone", "other") is True


async def test_five_clients_beat_one(app: Any) -> None:
    for n in range(5):
        await _record(app, "kestrel laptop", f"client-{n}")
    for _ in range(20):
        await _record(app, "smart plug", "pumper")
    assert await _top(app) == ["kestrel laptop", "smart plug"]


async def test_short_queries_and_queries_without_results_do_notcount_rows(app: Any) -> None:
    assert await _record(app, "tv", "a") is False
    assert await _record(app, "nothing matches", "a", hits=0) is False
    assert await _top(app) == []


async def test_old_days_decay_and_drop_out(app: Any) -> None:
    for n in range(4):
        await _record(app, "old favourite", f"c{n}")
    clock.advance(timedelta(days=3))
    for n in range(2):
        await _record(app, "new thing", f"c{n}")
    assert await _top(app) == ["new thing", "old favourite"]  # 2 today beat 4 x 0.6^3
    clock.advance(timedelta(days=5))
    assert await _top(app) == ["new thing"]  # 8 days old: gone


@pytest.fixture
def house_words(settings_overrides: dict[str, Any], tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# house list\nGrumble\nbad phrase\n")
    settings_overrides["disallowed_words_file"] = str(words)


@pytest.fixture
def uncached(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["search_cache_seconds"] = 0.0


async def test_disallowed_word_never_appears(house_words: None, client: Any, app: Any) -> None:
    ids = await add_catalogue(app, [
        ("Grumble Cable", "Acme", "Cables", 100, None, "A bad phrase inside."),
        ("Grumbles Hub", "Acme", "Cables", 100, None, ""),
    ])
    expected = {"GRUMBLE cable": {"Grumble Cable"}, "cable grümble": {"Grumble Cable"},
                "bad phrase": {"Grumble Cable"}, "grumbles": {"Grumbles Hub"}}
    for n, (query, names) in enumerate(expected.items()):
        response = await client.raw.get("/search", query_string={"q": query},
                                         headers={"HX-Request": "true"},
                                         scope_base={"client": (f"10.0.0.{n}", 1)})
        found = set(map(int, re.findall(r'href="/products/(\d+)"',
                                        await response.get_data(as_text=True))))
        assert found == {ids[name] for name in names}, query  # each is a real hit, so counted
    trending_html = await (await client.get("/trending")).get_data(as_text=True)
    assert ">grumbles<" in trending_html  # whole words only: "grumbles" is not "grumble"
    assert "grumble " not in trending_html and " grumble" not in trending_html
    assert "phrase" not in trending_html
    assert await count_rows(app, SearchRecord) == 1
    # A word added to the list later hides what was already counted.
    assert trending.is_disallowed("grumbles", frozenset({"grumbles"}))
    assert await _top(app, frozenset({"grumbles"})) == []


def test_shipped_list_matches_whole_words_in_any_case() -> None:
    shipped = trending.load_disallowed(trending.SHIPPED_DISALLOWED)
    assert len(shipped) > 10
    assert trending.is_disallowed(search.normalise("Shit HAPPENS"), shipped)
    assert not trending.is_disallowed(search.normalise("shitake mushroom lamp"), shipped)


async def test_trending_suggestions_link_to_boosted_searches(
    uncached: None, client: Any, catalogue: dict[str, int]
) -> None:
    await client.get("/search?q=lumen", htmx=True)
    body = await (await client.get("/trending")).get_data(as_text=True)
    assert 'href="/search?q=lumen" hx-boost="true"' in body
    assert 'hx-get="/trending"' in body  # refreshes itself
    home = await (await client.get("/")).get_data(as_text=True)
    assert 'href="/search?q=lumen"' in home  # also on the page, without JavaScript


async def test_two_hundred_concurrent_searches_are_all_recorded(
    app: Any, catalogue: dict[str, int]
) -> None:
    sessions = app.extensions["electro"].sessions

    async def one(n: int) -> bool:
        async with sessions() as db:
            results = await search.search(db, ["lumen", "kestrel laptop", "cafe", "smart"][n % 4])
        async with sessions.begin() as db:
            return await trending.record(
                db, results.query, f"client-{n}", len(results.hits), NOTHING
            )

    outcomes = await asyncio.gather(*(one(n) for n in range(200)), return_exceptions=True)
    assert [o for o in outcomes if o is not True] == []
    assert await count_rows(app, SearchRecord) == 200
    async with sessions() as db:
        daily = dict((await db.execute(select(SearchDaily.query, SearchDaily.clients))).all())
    assert daily == {"lumen": 50, "kestrel laptop": 50, "cafe": 50, "smart": 50}


async def test_a_signed_in_client_is_its_account_not_its_address(
    app: Any, catalogue: dict[str, int]
) -> None:
    ann, bob = await make_user(app, "ann"), await make_user(app, "bob")
    for user, addresses in ((ann, ["10.0.0.1", "10.0.0.2"]), (bob, ["10.0.0.1"])):
        client = Client(app)
        await sign_in(app, client, user)
        for address in addresses:
            response = await client.raw.get("/search?q=lumen", headers={"HX-Request": "true"},
                                            scope_base={"client": (address, 1)})
            assert response.status_code == 200
    async with app.extensions["electro"].sessions() as db:
        assert await db.scalar(select(SearchDaily.clients)) == 2  # ann once, bob once


async def test_searches_from_other_sites_do_not_count(
    uncached: None, app: Any, client: Client, catalogue: dict[str, int]
) -> None:
    for site in ("cross-site", "same-site"):
        response = await client.get("/search?q=lumen", headers={"Sec-Fetch-Site": site})
        assert response.status_code == 200 and "Lumen" in await response.get_data(as_text=True)
    assert await count_rows(app, SearchRecord) == 0
    await client.get("/search?q=lumen", headers={"Sec-Fetch-Site": "same-origin"})
    assert await count_rows(app, SearchRecord) == 1
