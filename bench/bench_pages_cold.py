"""Cold shopper pages, per request, in one process (issue 12): what a first visit costs.

bench_shop.py asks for random product pages (100,000 products) and random category pages
(sort, direction, deep page), so most of its requests are first visits that the anonymous page
cache (electro.web.shared) has never seen: the page is built from the database. This harness
times exactly that, without wrk or a server (the machine is shared: per-request cost in one
process is steadier than throughput): it seeds a 100,000-product instance (SQLite, or with
``--database postgresql`` a database of its own), builds the app, and sends N random product
and category requests, each URL distinct, through the ASGI test client as an anonymous shopper,
beside ``/healthz`` in the same run. A category listing's page keys are kept per catalogue version
(72 of them), so they are built before timing, as any running worker has them.

Prints per-request ms (p50, p99, mean) and the page's cost relative to the bare route.

Run: ``.venv/bin/python bench/bench_pages_cold.py [--database postgresql] [-n 1000]
[--instance DIR]`` (DIR: keep the seeded SQLite instance there and reuse it next time).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import support

PRODUCTS = 100_000
CATEGORIES = 12
SORTS = ("name", "company", "price")
DIRECTIONS = ("asc", "desc")
DEEPEST_PAGE = 340  # a category holds ~8,300 products: 24 a page


def _paths(rng: random.Random, n: int) -> dict[str, list[str]]:
    """``n`` distinct URLs of each page (a random product; a random category, sort, direction
    and page, deep pages included), and the bare route."""
    products = rng.sample(range(1, PRODUCTS + 1), n)
    listings: set[str] = set()
    while len(listings) < n:
        listings.add(f"/categories/{rng.randint(1, CATEGORIES)}?sort={rng.choice(SORTS)}"
                     f"&dir={rng.choice(DIRECTIONS)}&page={rng.randint(1, DEEPEST_PAGE)}")
    return {"/healthz (bare route)": ["/healthz"] * n,
            "product page, cold": [f"/products/{p}" for p in products],
            "category page, cold": sorted(listings, key=lambda _: rng.random())}


@contextmanager
def _instance(kind: str, keep: Path | None) -> Iterator[dict[str, str]]:
    """The environment of a seeded instance until the block ends."""
    folder = keep or Path(tempfile.mkdtemp(prefix="electro-cold-"))
    try:
        with support.database(kind) as url:
            env = support.instance_env(folder, database_url=url)
            if url or not (folder / "electro.db").exists():
                started = time.monotonic()
                support.electro(env, "init-db")
                support.electro(env, "seed-demo", "--products", str(PRODUCTS))
                print(f"seeded {PRODUCTS:,} products on {kind} in "
                      f"{time.monotonic() - started:.0f} s", flush=True)
            yield env
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


async def _measure(paths: dict[str, list[str]]) -> dict[str, list[float]]:
    from electro.app import create_app  # after the environment names the instance

    app = create_app()
    timings: dict[str, list[float]] = {}
    async with app.test_app():
        client = app.test_client()
        for category in range(1, CATEGORIES + 1):  # the page keys every worker keeps
            for sort in SORTS:
                for direction in DIRECTIONS:
                    await client.get(f"/categories/{category}?sort={sort}&dir={direction}")
        for _ in range(200):  # warm-up: imports, compiled statements, templates
            await client.get("/healthz")
        for label, urls in paths.items():
            spent = []
            for url in urls:
                started = time.perf_counter()
                response = await client.get(url)
                await response.get_data()
                spent.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url} answered {response.status_code}")
            timings[label] = spent
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("-n", type=int, default=1000, help="requests per page")
    parser.add_argument("--instance", type=Path, help="keep (and reuse) the SQLite instance here")
    args = parser.parse_args()
    paths = _paths(random.Random(12), args.n)
    with _instance(args.database, args.instance) as env:
        os.environ.update(env)
        timings = asyncio.run(_measure(paths))
    bare = statistics.median(timings["/healthz (bare route)"])
    print(f"\n{args.database}, one process, {PRODUCTS:,} products, {args.n} requests each, "
          f"anonymous, every page URL distinct\n")
    print("| page | p50 ms | p99 ms | mean ms | p50 vs bare |")
    print("|---|---:|---:|---:|---:|")
    for label, spent in timings.items():
        spent.sort()
        p50, p99 = spent[len(spent) // 2], spent[int(0.99 * (len(spent) - 1))]
        print(f"| {label} | {p50:.2f} | {p99:.2f} | {statistics.fmean(spent):.2f} | "
              f"{bare / p50:.2f} |")


if __name__ == "__main__":
    main()
