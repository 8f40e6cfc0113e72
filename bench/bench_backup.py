"""Backup and restore of 200,000 rows (190,000 products + 10,000 events) on a temporary SQLite
instance and, when reachable, a scratch PostgreSQL database. Goal: < 3 s each.

A timed backup and restore (no tracing; ru_maxrss growth), then one more restore under tracemalloc
for the peak of Python allocations (tracing slows it down, so it is not timed); that restore takes a
safety backup too, so its peak covers both. "restore" is the whole ``restore_backup`` call: verify
the file, take the safety backup (on SQLite beside the index rebuilds), replace every table. In
brackets: CPU seconds of the whole process (all threads); the machine is shared, so wall time also
carries other people's load.

    .venv/bin/python bench/bench_backup.py
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import support

from electro import clock
from electro.config import load_settings
from electro.db import make_engine
from electro.migrate import upgrade
from electro.models import Category, Event, Product
from electro.services import backups

PRODUCTS, EVENTS, BATCH = 190_000, 10_000, 10_000


async def seed(engine: AsyncEngine) -> int:
    now = clock.now()
    async with engine.begin() as conn:
        await conn.execute(insert(Category), [{"name": f"Category {i}", "created_at": now}
                                              for i in range(1, 13)])
        for start in range(0, PRODUCTS, BATCH):
            await conn.execute(insert(Product), [{
                "name": f"Voltaic Phone {i}", "company": "Voltaic", "category_id": i % 12 + 1,
                "price_cents": 999 + i,
                "description": "A dependable phone for everyday use.", "stock": i % 250,
                "created_at": now, "updated_at": now, "version": 1,
            } for i in range(start, start + BATCH)])
        for start in range(0, EVENTS, BATCH):
            await conn.execute(insert(Event), [{
                "created_at": now, "type": "authn_login_fail", "actor": f"user{i}",
                "ip": "192.0.2.1", "path": "/login", "details": {"tries": i % 5},
            } for i in range(start, start + BATCH)])
    return 12 + PRODUCTS + EVENTS


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed(step: Callable[[], Awaitable[Any]]) -> tuple[str, float, float, Any]:
    """Wall seconds (with the process's CPU seconds, all threads: the machine is shared, so wall
    time also shows other people's load), seconds alone, ru_maxrss growth (MiB), result."""
    rss = maxrss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    result = await step()
    wall = time.perf_counter() - start
    return f"{wall:.2f} ({time.process_time() - cpu:.2f})", wall, maxrss_mib() - rss, result


async def traced(step: Callable[[], Awaitable[Any]]) -> float:
    """Peak of Python allocations (MiB) during one step."""
    tracemalloc.start()
    try:
        await step()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


async def run(label: str, url: str, folder: Path) -> list[str]:
    engine = make_engine(url)
    settings = load_settings(environ={}, overrides={"database_url": url,
                                                    "instance_dir": folder / label})
    try:
        await upgrade(engine)
        rows = await seed(engine)

        def backup() -> Awaitable[Any]:
            return backups.create_backup(engine, settings)

        backup_text, backup_s, backup_rss, made = await timed(backup)
        path = backups.backup_path(settings, made)

        def restore() -> Awaitable[Any]:
            return backups.restore_backup(engine, settings, path)

        restore_text, restore_s, restore_rss, _ = await timed(restore)
        peak = await traced(restore)
    finally:
        await engine.dispose()
    return [label, f"{rows:,}", backup_text, f"{rows / backup_s:,.0f}", restore_text,
            f"{rows / restore_s:,.0f}", f"{made.size_bytes / 2**20:.1f} MiB",
            f"{peak:.1f} MiB", f"{backup_rss:.0f} / {restore_rss:.0f} MiB"]




async def main() -> None:
    table = [["db", "rows", "backup s (cpu)", "backup rows/s", "restore s (cpu)",
              "restore rows/s", "file", "peak traced", "maxrss growth (b/r)"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table.append(await run("sqlite", f"sqlite+aiosqlite:///{folder / 'bench.db'}", folder))
        async with support.scratch_postgresql() as url:
            if url is not None:
                table.append(await run("postgresql", url, folder))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for n, row in enumerate(table):
        print(" | ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))


if __name__ == "__main__":
    asyncio.run(main())
