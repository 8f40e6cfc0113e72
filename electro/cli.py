"""The ``electro`` command."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, insert, select
from tqdm import tqdm

from electro.config import SettingsError, load_settings
from electro.db import make_engine, make_sessionmaker
from electro.migrate import upgrade
from electro.models import Category, Product
from electro.services import events

CATEGORIES = ["Laptops", "Phones", "Tablets", "Headphones", "Cameras", "Monitors",
              "Keyboards", "Smart home", "Audio", "Gaming", "Storage", "Networking"]
COMPANIES = ["Voltaic", "Northwind Electric", "Lumen", "Kestrel Labs", "Arcadia", "Quanta",
             "Helix", "Orbital", "Pioneer Works", "Brightline", "Sonder", "Tessellate"]
ADJECTIVES = ["Pro", "Air", "Mini", "Max", "Ultra", "Lite", "Plus", "Studio", "Go", "Neo"]


async def init_db() -> None:
    settings = load_settings()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"database ready: {settings.database}")


async def seed_demo(products: int, only_if_empty: bool) -> None:
    settings = load_settings()
    engine = make_engine(settings.database)
    sessions = make_sessionmaker(engine)
    rng = random.Random(7)  # the same demo catalogue every time  # noqa: S311
    try:
        async with sessions.begin() as db:
            if only_if_empty and await db.scalar(select(func.count(Product.id))):
                print("catalogue already has products; not seeding")
                return
            existing = {c.name: c.id for c in await db.scalars(select(Category))}
            for name in CATEGORIES:
                if name not in existing:
                    category = Category(name=name)
                    db.add(category)
                    await db.flush()
                    existing[name] = category.id
            batch: list[dict[str, object]] = []
            for _ in tqdm(range(products), desc="products", unit="row", disable=products < 1000):
                category = rng.choice(CATEGORIES)
                price = rng.randrange(999, 299_999)
                batch.append({
                    "name": f"{rng.choice(COMPANIES).split()[0]} {category.rstrip('s')} "
                            f"{rng.choice(ADJECTIVES)} {rng.randint(2, 99)}",
                    "company": rng.choice(COMPANIES),
                    "category_id": existing[category],
                    "price_cents": price,
                    "old_price_cents": price + rng.randrange(500, 20_000) if rng.random() < 0.2
                    else None,
                    "description": f"A dependable {category.lower().rstrip('s')} for everyday use.",
                    "stock": rng.randint(0, 250),
                    "version": 1,
                })
                if len(batch) == 5000:
                    await db.execute(insert(Product), batch)
                    batch = []
            if batch:
                await db.execute(insert(Product), batch)
        print(f"seeded {products} products in {len(CATEGORIES)} categories")
    finally:
        await engine.dispose()


async def export_events(path: Path, options: dict[str, str]) -> None:
    """The same filter and JSON stream as the admin's events export, written to ``path``."""
    settings = load_settings()
    f = events.parse_filter(options)
    engine = make_engine(settings.database)
    try:
        async with make_sessionmaker(engine)() as db:
            with path.open("w", encoding="utf-8") as out:
                async for chunk in events.export_json(db, f):
                    await asyncio.to_thread(out.write, chunk)
        print(f"wrote the events to {path}")
    finally:
        await engine.dispose()


def serve(bind: str, workers: int) -> None:
    from hypercorn.config import Config
    from hypercorn.run import run

    config = Config()
    config.bind = [bind]
    config.workers = workers
    config.application_path = "electro.asgi:app"
    config.accesslog = None
    try:
        import uvloop  # noqa: F401 - with several workers plain asyncio accepts unevenly

        config.worker_class = "uvloop"
    except ImportError:
        config.worker_class = "asyncio"
    print(f"serving on http://{bind} with {workers} worker(s), {config.worker_class}")
    run(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="electro", description="E-lectro shop")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="create or migrate the database (idempotent)")
    seed = sub.add_parser("seed-demo", help="add demo categories and products")
    seed.add_argument("--products", type=int, default=300)
    seed.add_argument("--if-empty", action="store_true", help="only when there are no products")
    srv = sub.add_parser("serve", help="serve with hypercorn")
    srv.add_argument("--bind", default="127.0.0.1:5000")
    srv.add_argument("--workers", type=int, default=1)
    ev = sub.add_parser("events", help="event log")
    ev_sub = ev.add_subparsers(dest="events_command", required=True)
    exp = ev_sub.add_parser("export", help="write events as a JSON array")
    exp.add_argument("--output", type=Path, default=Path("events.json"))
    for name in ("type", "actor", "ip", "since", "until"):
        exp.add_argument(f"--{name}", default="", help="filter as on /admin/events")
    args = parser.parse_args(argv)
    try:
        if args.command == "init-db":
            asyncio.run(init_db())
        elif args.command == "seed-demo":
            asyncio.run(seed_demo(args.products, args.if_empty))
        elif args.command == "serve":
            serve(args.bind, args.workers)
        elif args.command == "events":
            asyncio.run(export_events(args.output, {
                name: getattr(args, name) for name in ("type", "actor", "ip", "since", "until")}))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except events.FilterError as exc:
        print(f"bad filter: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
