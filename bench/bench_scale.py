"""The catalogue at 100,000 and at 1,000,000 products (issue 12), side by side.

For each size: a fresh instance (SQLite, or with ``--database postgresql`` a database of its own
on 127.0.0.1:5432, user electro, trust auth, dropped afterwards), ``electro seed-demo
--products N`` timed, then ``electro serve`` with 2 workers and wrk at 8 connections on the
search fragment (htmx), the search page and category pages (a random category, sort, direction
and page, deep pages included, so OFFSET paging pays for the rows it skips), and finally the
resident memory (RSS) of each worker after that load. Goals: 1,000,000 within 2x of 100,000 for
the seeding rate, search p99 and the category pages (p99 and req/s); memory per worker under
150 MiB.

The wrk scripts, the load driver and the queries are bench_shop's (same pages, same client).

Run: ``.venv/bin/python bench/bench_scale.py [--database postgresql] [--sizes 100000,1000000]
[--seconds 5]`` (about 5 minutes on SQLite, whose 1,000,000-product file takes 550 MiB in a
temporary folder; longer on PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import bench_shop
import support

SIZES = (100_000, 1_000_000)
WORKERS = 2
CONNECTIONS = 8
SECONDS = 5
CATEGORIES = 12  # seed-demo's
PAGE_SIZE = 24  # a category page's rows (services/catalog.py)
MEMORY_GOAL_MIB = 150
BARE = "bare route /healthz"
PAGES = ("search fragment", "search page", "category pages")


def _pages(products: int, rng: random.Random) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The measured pages, each a list of paths wrk picks from at random, and its headers."""
    searches = [f"/search?q={quote(q)}" for q in bench_shop.QUERIES]
    last_page = products // CATEGORIES // PAGE_SIZE
    return {
        BARE: (["/healthz"], {}),
        "search fragment": (searches, {"HX-Request": "true"}),
        "search page": (searches, {}),
        "category pages": ([
            f"/categories/{rng.randint(1, CATEGORIES)}"
            f"?sort={rng.choice(['name', 'company', 'price'])}"
            f"&dir={rng.choice(['asc', 'desc'])}&page={rng.randint(1, last_page)}"
            for _ in range(2000)
        ], {}),
    }



def worker_rss_mib(port: int) -> list[float]:
    """Resident memory of each worker of the ``electro serve`` bound to ``port``: the children
    of that process (hypercorn spawns its workers), multiprocessing's helper left out."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):  # gone meanwhile
                continue
            processes[int(entry.name)] = (parent, command)
    server = next(pid for pid, (_, command) in processes.items()
                  if " serve " in command and f"127.0.0.1:{port}" in command)
    workers = [pid for pid, (parent, command) in processes.items()
               if parent == server and "resource_tracker" not in command]
    return [_rss_kib(pid) / 1024 for pid in workers]


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@dataclass
class Figures:
    products: int
    seeding_s: float
    file_mib: float
    pages: dict[str, dict[str, float]]  # page -> bench_shop.drive's rps, p50, p99, errors
    rss_mib: list[float]  # per worker, after the load


def measure(products: int, seconds: int, postgresql: bool) -> Figures:
    """Seed a fresh instance with ``products`` and measure it under load."""
    tmp = Path(tempfile.mkdtemp(prefix=f"electro-scale-{products}-"))
    try:
        with ExitStack() as stack:
            url = stack.enter_context(support.database("postgresql")) if postgresql else ""
            return _measure(support.instance_env(tmp, database_url=url), products, seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(env: dict[str, str], products: int, seconds: int) -> Figures:
    folder = Path(env["ELECTRO_INSTANCE_DIR"])
    support.electro(env, "init-db")
    started = time.monotonic()
    support.electro(env, "seed-demo", "--products", str(products))
    seeding = time.monotonic() - started
    scripts = {page: bench_shop.load_script(folder / f"page{n}.lua", *spec)
               for n, (page, spec) in enumerate(_pages(products, random.Random(5)).items())}
    with support.server(env, WORKERS) as port:
        base = f"http://127.0.0.1:{port}"
        for script in scripts.values():  # warm up each worker's caches and the page cache
            bench_shop.drive(base, script, CONNECTIONS, 1)
        pages = {page: bench_shop.drive(base, script, CONNECTIONS, seconds)
                 for page, script in scripts.items()}
        rss = worker_rss_mib(port)
    return Figures(products, seeding, _database_mib(env), pages, rss)


def _database_mib(env: dict[str, str]) -> float:
    """The SQLite file's size, or the PostgreSQL database's."""
    url = env["ELECTRO_DATABASE_URL"]
    if not url:
        return (Path(env["ELECTRO_INSTANCE_DIR"]) / "electro.db").stat().st_size / 2**20
    name = url.rsplit("/", 1)[1]
    size = subprocess.run(["psql", *support.PG_SERVER, "-d", name, "-qtAc",
                           "SELECT pg_database_size(current_database())"],
                          capture_output=True, text=True, check=True).stdout
    return int(size) / 2**20


def _goal(small: float, large: float, better: str) -> str:
    """Issue 12: the large catalogue within 2x of the small one (``better``: higher or lower,
    or failed when some of the large catalogue's requests did)."""
    if not better:
        return ""
    if better == "failed":
        return "MISSED: requests failed or timed out (2 s)"
    cost = small / large if better == "higher" else large / small
    return f"{'met' if cost <= 2 else 'MISSED'}: costs {cost:.2f}x (at most 2x)"


def report(figures: list[Figures], database: str) -> None:
    """One markdown table, a column per size; goals compare the last size with the first."""
    rows: list[tuple[str, list[float], str, str]] = [  # label, values, format, better
        ("seeding s", [f.seeding_s for f in figures], "{:,.1f}", ""),
        ("seeding rows/s", [f.products / f.seeding_s for f in figures], "{:,.0f}", "higher"),
        ("database MiB", [f.file_mib for f in figures], "{:,.0f}", ""),
    ]
    for page in (BARE, *PAGES):
        results = [f.pages[page] for f in figures]
        # wrk's latencies are those of the answers that came: none may fail.
        failed = "failed" if results[-1]["errors"] else ""
        rows += [
            (f"{page} req/s", [r["rps"] for r in results], "{:,.0f}",
             failed or "higher" if page == "category pages" else ""),
            (f"{page} p50 ms", [r["p50"] for r in results], "{:.2f}", ""),
            (f"{page} p99 ms", [r["p99"] for r in results], "{:.1f}",
             "" if page == BARE else failed or "lower"),
            (f"{page} errors", [r["errors"] for r in results], "{:.0f}", ""),
        ]
    print(f"\n{database}, {WORKERS} workers, wrk {CONNECTIONS} connections, "
          f"{os.cpu_count()} cores\n")
    print("| measure | " + " | ".join(f"{f.products:,} products" for f in figures) + " | goal |")
    print("|---|" + "---:|" * len(figures) + "---|")
    for label, values, form, better in rows:
        print(f"| {label} | " + " | ".join(form.format(v) for v in values)
              + f" | {_goal(values[0], values[-1], better)} |")

    largest = max(figures[-1].rss_mib)
    print("| RSS per worker MiB | "
          + " | ".join(", ".join(f"{r:.0f}" for r in f.rss_mib) for f in figures)
          + f" | {'met' if largest < MEMORY_GOAL_MIB else 'MISSED'} "
          f"({largest:.0f} < {MEMORY_GOAL_MIB}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="product counts, comma-separated; goals compare last to first")
    parser.add_argument("--seconds", type=int, default=SECONDS, help="per measurement")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    started = time.monotonic()
    figures = []
    for products in sizes:
        figures.append(measure(products, args.seconds, args.database == "postgresql"))
        print(f"{products:,} products measured ({time.monotonic() - started:.0f} s)", flush=True)
    report(figures, args.database)
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
