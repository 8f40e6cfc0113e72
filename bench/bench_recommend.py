"""Recommendation quality, build cost and serving speed (B6) at 10,000 shoppers x 100,000 products.

Seeds a temporary SQLite instance (``electro seed-demo --products 100000 --shoppers 10000``:
planted tastes), holds out each shopper's last order, and builds every method from the rest,
each in a process of its own (so its peak memory is its own):

- popularity: the most bought products (the baseline);
- cooccurrence: the shop's model, ``services.recommendations.rebuild`` (item-to-item cosine, set
  based in SQL), served by ``for_shopper`` as the shop serves it;
- als: implicit's AlternatingLeastSquares on the shopper x product matrix (optional: ``pip
  install '.[bench-recommend]'``; skipped when implicit is not installed).

Every method leaves out what the shopper bought and what is out of stock, as the shop does.
Hit rate@10: the share of shoppers with at least one held-out product among their 10 picks;
NDCG@10 rewards a hit by its place. Then the recommendations fragment is served (1 worker,
wrk at 8 connections over 2,000 random products, nearly all rendered afresh, each request a new
view; then over 200 products, whose fragments the worker has cached) beside ``/healthz`` and the
product page.

Run: ``.venv/bin/python bench/bench_recommend.py`` (about 3 minutes).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import support
from bench_shop import drive, load_script

PRODUCTS = 100_000
SHOPPERS = 10_000
SAMPLE = 2_000  # shoppers whose picks are scored (the same ones for every method)
TOP = 10
SECONDS = 5
CONNECTIONS = 8
METHODS = ("popularity", "cooccurrence", "als")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hold_out(db_path: Path, train_path: Path) -> dict[int, list[int]]:
    """Copies the database without each shopper's last order; returns that order's products
    for a sample of the shoppers."""
    shutil.copy(db_path, train_path)
    with sqlite3.connect(train_path) as con:
        con.execute("""CREATE TEMP TABLE held AS
            SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id
                            ORDER BY created_at DESC, id DESC) AS place FROM orders)
            WHERE place = 1""")
        lines = con.execute("""SELECT o.user_id, l.product_id FROM order_lines l
            JOIN orders o ON o.id = l.order_id WHERE o.id IN (SELECT id FROM held)""").fetchall()
        con.execute("DELETE FROM order_lines WHERE order_id IN (SELECT id FROM held)")
        con.execute("DELETE FROM orders WHERE id IN (SELECT id FROM held)")
    held: dict[int, list[int]] = {}
    for user_id, product_id in lines:
        held.setdefault(user_id, []).append(product_id)
    sample = random.Random(3).sample(sorted(held), min(SAMPLE, len(held)))
    return {user_id: held[user_id] for user_id in sample}


def _score(picks: dict[int, list[int]], held: dict[int, list[int]]) -> tuple[float, float]:
    hits = ndcg = 0.0
    for user_id, wanted in held.items():
        got = picks.get(user_id, [])[:TOP]
        gains = [1.0 if pid in wanted else 0.0 for pid in got]
        hits += any(gains)
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), TOP)))
        ndcg += dcg / ideal
    return hits / len(held), ndcg / len(held)


def _training(con: sqlite3.Connection) -> tuple[list[tuple[int, int]], set[int]]:
    """(shopper, product) bought in the training orders, and the products in stock."""
    bought = con.execute("""SELECT DISTINCT o.user_id, l.product_id FROM order_lines l
        JOIN orders o ON o.id = l.order_id WHERE l.product_id IS NOT NULL""").fetchall()
    in_stock = {pid for (pid,) in con.execute("SELECT id FROM products WHERE stock > 0")}
    return bought, in_stock


def _popularity(train: Path, held: dict[int, list[int]]) -> tuple[float, dict[int, list[int]]]:
    started = time.perf_counter()
    with sqlite3.connect(train) as con:
        bought, in_stock = _training(con)
    counts: dict[int, int] = {}
    owned: dict[int, set[int]] = {}
    for user_id, product_id in bought:
        counts[product_id] = counts.get(product_id, 0) + 1
        owned.setdefault(user_id, set()).add(product_id)
    ranked = [p for p in sorted(counts, key=lambda p: (-counts[p], p)) if p in in_stock]
    seconds = time.perf_counter() - started
    return seconds, {u: [p for p in ranked[:TOP + 50] if p not in owned.get(u, set())][:TOP]
                     for u in held}


def _cooccurrence(train: Path, held: dict[int, list[int]]) -> tuple[float, dict[int, list[int]]]:
    from electro.db import make_sessionmaker, opened
    from electro.services import recommendations

    async def run() -> tuple[float, dict[int, list[int]]]:
        async with opened(f"sqlite+aiosqlite:///{train}") as engine:
            sessions = make_sessionmaker(engine)
            started = time.perf_counter()
            async with sessions.begin() as db:
                await recommendations.rebuild(db, timedelta(0))
            seconds = time.perf_counter() - started
            picks = {}
            async with sessions() as db:
                for user_id in held:
                    found = await recommendations.for_shopper(db, user_id, TOP)
                    picks[user_id] = [p.id for p in found]
            return seconds, picks

    return asyncio.run(run())


def _als(train: Path, held: dict[int, list[int]]) -> tuple[float, dict[int, list[int]]]:
    import numpy as np
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    with sqlite3.connect(train) as con:
        bought, in_stock = _training(con)
        products = con.execute("SELECT max(id) FROM products").fetchone()[0] + 1
        shoppers = con.execute("SELECT max(id) FROM users").fetchone()[0] + 1
    started = time.perf_counter()
    rows, cols = zip(*bought, strict=True)
    matrix = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                        shape=(shoppers, products))
    model = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05,
                                    random_state=7)
    model.fit(matrix * 20.0, show_progress=False)  # alpha = 20: confidence of a purchase
    seconds = time.perf_counter() - started
    out_of_stock = np.array(sorted(set(range(products)) - in_stock))
    users = np.array(list(held))
    ids, _ = model.recommend(users, matrix[users], N=TOP, filter_already_liked_items=True,
                             filter_items=out_of_stock)
    return seconds, {int(u): [int(p) for p in row] for u, row in zip(users, ids, strict=True)}


def _method(name: str, train: Path, held_file: Path) -> None:
    """Run in a child process: build ``name``, score it, print one JSON line."""
    held = {int(k): v for k, v in json.loads(held_file.read_text()).items()}
    before = _peak_mib()
    build = {"popularity": _popularity, "cooccurrence": _cooccurrence, "als": _als}[name]
    seconds, picks = build(train, held)
    hit_rate, ndcg = _score(picks, held)
    print(json.dumps({"seconds": seconds, "mib": _peak_mib() - before, "hit": hit_rate,
                      "ndcg": ndcg}))


def _measure_method(name: str, train: Path, held_file: Path) -> dict[str, float] | None:
    done = subprocess.run([sys.executable, __file__, "--method", name, str(train),
                           str(held_file)], capture_output=True, text=True)
    if done.returncode != 0:
        if "No module named 'implicit'" in done.stderr or "No module named 'numpy'" in done.stderr:
            return None
        sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _serving(env: dict[str, str], tmp: Path) -> dict[str, dict[str, float]]:
    rng = random.Random(5)
    products = [rng.randint(1, PRODUCTS) for _ in range(2000)]
    routes = {
        "/healthz": (["/healthz"], {}),
        "product page": ([f"/products/{p}" for p in products], {}),
        "recommendations fragment": ([f"/products/{p}/recommendations" for p in products],
                                     {"HX-Request": "true"}),
        # The products most looked at: their fragments are in the worker's cache.
        "fragment, 200 products": ([f"/products/{p}/recommendations" for p in products[:200]],
                                   {"HX-Request": "true"}),
    }
    results = {}
    with support.server(env, 1) as port:
        base = f"http://127.0.0.1:{port}"
        for n, (route, (paths, headers)) in enumerate(routes.items()):
            script = load_script(tmp / f"route{n}.lua", paths, headers)
            drive(base, script, CONNECTIONS, 1)  # warm up
            results[route] = drive(base, script, CONNECTIONS, SECONDS)
    return results


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--method":
        _method(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    tmp = Path(tempfile.mkdtemp(prefix="electro-bench-"))
    env = support.instance_env(tmp)
    started = time.monotonic()
    try:
        support.electro(env, "init-db")
        support.electro(env, "seed-demo", "--products", str(PRODUCTS),
                        "--shoppers", str(SHOPPERS))
        print(f"seeded {PRODUCTS:,} products and {SHOPPERS:,} shoppers in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        held = _hold_out(tmp / "electro.db", tmp / "train.db")
        held_file = tmp / "held.json"
        held_file.write_text(json.dumps(held))
        quality = {name: _measure_method(name, tmp / "train.db", held_file) for name in METHODS}
        # Serve the whole history's model, as the shop would.
        _measure_method("cooccurrence", tmp / "electro.db", held_file)
        serving = _serving(env, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = quality["popularity"]
    assert base is not None
    print(f"\n{len(held):,} shoppers' last orders held out; {SHOPPERS:,} shoppers x "
          f"{PRODUCTS:,} products; serving: 1 worker, wrk {CONNECTIONS} connections, "
          f"{SECONDS} s\n")
    print(f"{'method / route':26} {'hit@10':>7} {'vs pop':>6} {'NDCG@10':>8} {'build s':>8} "
          f"{'peak MiB':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    blank = f"{'':>7} {'':>6} {'':>8} {'':>8} {'':>9}"
    for name, r in quality.items():
        if r is None:
            print(f"{name:26} (not installed: pip install '.[bench-recommend]')")
            continue
        print(f"{name:26} {r['hit']:>7.3f} {r['hit'] / base['hit']:>5.1f}x {r['ndcg']:>8.3f} "
              f"{r['seconds']:>8.1f} {r['mib']:>9.0f}")
    for route, r in serving.items():
        print(f"{route:26} {blank} {r['rps']:>7.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} "
              f"{r['errors']:>6.0f}")
    kept = quality["cooccurrence"]
    assert kept is not None
    cold, warm = (serving[r]["rps"] for r in ("recommendations fragment",
                                              "fragment, 200 products"))
    healthz, page = serving["/healthz"]["rps"], serving["product page"]["rps"]
    print(f"\ngoals: cooccurrence hit@10 {kept['hit'] / base['hit']:.1f}x popularity (>= 2x); "
          f"built in {kept['seconds']:.1f} s (< 30 s); fragment at >= 50% of the bare route: "
          f"{cold / page:.0%} of the product page ({cold / healthz:.0%} of /healthz), cached "
          f"{warm / page:.0%} ({warm / healthz:.0%} of /healthz)")
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
