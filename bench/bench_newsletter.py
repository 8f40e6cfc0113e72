"""A newsletter to 10,000 subscribers (SPEC B2): how long queueing takes (goal: < 2 s), how many
mails a second the sender gets through a real SMTP server, and the process's peak memory.

Seeds 10,000 subscribed accounts (and 1,000 who are not) and 200 products into a temporary
SQLite database, and into a scratch PostgreSQL database when one is reachable at
ELECTRO_BENCH_PG_URL (default postgresql+asyncpg://electro@127.0.0.1:5432/test). Queueing is
``start_sending`` with its commit: one INSERT ... SELECT of the recipients. Sending is the
background job ``send_due`` with the rate cap at its maximum, rendering each mail with the
shopper's picks and delivering it over SMTP to an aiosmtpd sink in this process (its own
thread), which counts what arrives. Peak memory is the process's maximum resident set size
(the sink and the interpreter included).

    PYTHONPATH=. python bench/bench_newsletter.py [--subscribers N] [--picks K]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import support

from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.migrate import upgrade
from electro.models import Category, NewsletterDelivery, Product, User
from electro.services import newsletters
from electro.services.events import Actor


class Sink:
    """Counts the mails an SMTP server received."""

    def __init__(self) -> None:
        self.received = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        with self._lock:
            self.received += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def seed(sessions: Any, subscribers: int) -> int:
    async with sessions.begin() as db:
        category = Category(name="Bench")
        db.add(category)
        await db.flush()
        await db.execute(insert(Product), [
            {"name": f"Product {i}", "company": "Bench", "category_id": category.id,
             "price_cents": 1000 + i, "stock": 5, "description": ""} for i in range(200)])
        await db.execute(insert(User), [
            {"username": f"user{i:05d}", "email": f"user{i:05d}@example.com",
             "password_hash": "x", "newsletter": i < subscribers}
            for i in range(subscribers + 1000)])
        return (await newsletters.write(db, "Bench news", "Hello.\n\nPicks below.", "4",
                                        Actor())).id


async def run(url: str, label: str, subscribers: int, picks: int) -> list[tuple[str, str]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    engine = make_engine(url)
    try:
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        settings = load_settings(environ={}, overrides={
            "database_url": url, "secret_key": "bench-only-secret", "smtp_host": "127.0.0.1",
            "smtp_port": port, "newsletter_per_minute": 100_000,
            "base_url": "https://shop.example"})
        newsletter_id = await seed(sessions, subscribers)
        async with sessions.begin() as db:
            await db.execute(text("UPDATE newsletters SET picks = :k"), {"k": picks})
        started = time.perf_counter()
        async with sessions.begin() as db:
            queued = await newsletters.start_sending(db, newsletter_id, Actor())
        queue_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sent = 0
        while True:  # a round stops at the cap (100,000 a minute): more rounds if needed
            round_sent = await newsletters.send_due(sessions, settings)
            sent += round_sent
            if not round_sent:
                break
        send_seconds = time.perf_counter() - started
        async with sessions() as db:
            left = await db.scalar(select(func.count()).select_from(NewsletterDelivery).where(
                NewsletterDelivery.status != "sent"))
        assert queued == subscribers and sent == subscribers == sink.received and left == 0, (
            queued, sent, sink.received, left)
    finally:
        await engine.dispose()
        controller.stop()
    return [
        (f"{label}: queue {queued:,} recipients", f"{queue_seconds:.3f} s (goal < 2 s)"),
        (f"{label}: send {sent:,} mails, {picks} picks each",
         f"{send_seconds:.1f} s = {sent / send_seconds:,.0f} mails/s"),
        (f"{label}: peak resident memory so far", f"{peak_rss_mib():.0f} MiB"),
    ]




async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--picks", type=int, default=4)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += await run(f"sqlite+aiosqlite:///{folder}/bench.db", "SQLite",
                          args.subscribers, args.picks)
    async with support.scratch_postgresql() as url:
        if url is not None:
            rows += await run(url, "PostgreSQL", args.subscribers, args.picks)
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  {'-' * 36}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main())
