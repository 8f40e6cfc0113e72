"""The ``electro`` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import random
import secrets
import shutil
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tqdm import tqdm

from electro import clock, demo_shoppers
from electro.config import Settings, SettingsError, load_settings
from electro.db import make_sessionmaker, opened
from electro.errors import DomainError
from electro.migrate import upgrade
from electro.models import Category, Product
from electro.security.passwords import Passwords, policy_problems
from electro.services import backups, events, search, two_factor, users
from electro.services.backups.databases import database_for

# Category -> product kinds; the demo catalogue reads like a real shop so search can be tried.
KINDS = {
    "Laptops": ["Laptop", "Notebook", "Ultrabook"],
    "Phones": ["Phone", "Smartphone"],
    "Tablets": ["Tablet", "E-reader"],
    "Headphones": ["Headphones", "Earbuds", "Headset"],
    "Cameras": ["Camera", "Action cam", "Mirrorless camera"],
    "Monitors": ["Monitor", "Display"],
    "Keyboards": ["Keyboard", "Mechanical keyboard"],
    "Smart home": ["Smart plug", "Thermostat", "Video doorbell", "Smart bulb"],
    "Audio": ["Speaker", "Soundbar", "Turntable"],
    "Gaming": ["Controller", "Console", "Gaming mouse"],
    "Storage": ["SSD", "Hard drive", "USB stick"],
    "Networking": ["Router", "Mesh Wi-Fi", "Switch"],
}
CATEGORIES = list(KINDS)
COMPANIES = ["Voltaic", "Northwind Electric", "Lumen", "Kestrel Labs", "Arcadia", "Quanta",
             "Helix", "Orbital", "Pioneer Works", "Brightline", "Sonder", "Tessellate",
             "Élan Audio", "Müller Technik", "Café Électronique"]
ADJECTIVES = ["Pro", "Air", "Mini", "Max", "Ultra", "Lite", "Plus", "Studio", "Go", "Neo"]
FEATURES = ["wireless", "noise-cancelling", "4K", "OLED", "USB-C", "Bluetooth", "waterproof",
            "fast-charging", "ergonomic", "compact", "HDR", "low-latency", "energy-saving",
            "aluminium", "silent"]
USES = ["everyday use", "the home office", "travel", "gaming nights", "students", "creators",
        "small flats", "the whole family"]


async def init_db() -> None:
    settings = load_settings()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    async with opened(settings.database) as engine:
        await upgrade(engine)
    print(f"database ready: {settings.database}")


async def seed_demo(products: int, only_if_empty: bool) -> None:
    settings = load_settings()
    rng = random.Random(7)  # the same demo catalogue every time  # noqa: S311
    async with opened(settings.database) as engine, make_sessionmaker(engine).begin() as db:
        if only_if_empty and await db.scalar(select(func.count(Product.id))):
            print("catalogue already has products; not seeding")
            return
        existing = {c.name: c.id for c in await db.scalars(select(Category))}
        missing = [Category(name=name) for name in CATEGORIES if name not in existing]
        db.add_all(missing)
        await db.flush()  # one round trip assigns every new id
        existing.update({c.name: c.id for c in missing})
        batch: list[dict[str, object]] = []
        sale_prices: list[int | None] = []  # per row of the batch: reduced to this afterwards
        reductions: list[dict[str, int]] = []
        listed = clock.now() - timedelta(days=60)

        async def insert_batch() -> None:
            ids = await _insert_products(db, batch)
            reductions.extend({"product_id": product_id, "sale_price": sale_price}
                              for product_id, sale_price in zip(ids, sale_prices, strict=True)
                              if sale_price is not None)
            batch.clear()
            sale_prices.clear()

        # Bulk loading as a restore does it: the search index and the secondary indexes are
        # built once at the end (kept up per row, they cost most of a seeding: at 1,000,000
        # products the index pages no longer fit SQLite's cache). As in a restore, readers of
        # products wait on PostgreSQL until the seeding commits (the indexes are dropped).
        conn = await db.connection()
        async with search.index_paused(conn), database_for(conn.dialect).loading(
                conn, [Product.__tablename__]):
            for _ in tqdm(range(products), desc="products", unit="row", disable=products < 1000):
                category = rng.choice(CATEGORIES)
                kind = rng.choice(KINDS[category])
                company = rng.choice(COMPANIES)
                first, second, third = rng.sample(FEATURES, 3)
                price = rng.randrange(999, 299_999)
                name = f"{company.split()[0]} {kind} {rng.choice(ADJECTIVES)} {rng.randint(2, 99)}"
                on_sale = rng.random() < 0.2
                batch.append({
                    "name": name,
                    "company": company,
                    "category_id": existing[category],
                    # On sale: a genuine recent reduction (SPEC B1), from a higher price held
                    # since the product was listed, 60 days ago, to ``price`` today (the price
                    # history trigger records both when the reduction is made, below).
                    "price_cents": price + rng.randrange(500, 20_000) if on_sale else price,
                    "description": f"{first.capitalize()} {kind.lower()} with {second} and "
                                   f"{third} design, made for {rng.choice(USES)}.",
                    "stock": rng.randint(0, 250),
                    "created_at": listed,
                    "version": 1,
                })
                sale_prices.append(price if on_sale else None)
                if len(batch) == 5000:
                    await insert_batch()
            if batch:
                await insert_batch()
            if reductions:
                await _reduce_prices(db, reductions)
    print(f"seeded {products} products in {len(CATEGORIES)} categories")


async def _insert_products(db: AsyncSession, rows: list[dict[str, object]]) -> list[int]:
    """One executemany INSERT; the new ids in the order of ``rows``. PostgreSQL returns them in
    order from a few batched statements. SQLite could only do that one row at a time (3,400
    rows/s), having nothing to sort its RETURNING rows by; but a transaction that writes on
    SQLite is the only writer, and hands out rowids one above the largest in order, so the new
    ids are the last ``len(rows)``."""
    if db.get_bind().dialect.name != "sqlite":
        query = insert(Product).returning(Product.id, sort_by_parameter_order=True)
        return list((await db.scalars(query, rows)).all())
    await db.execute(insert(Product), rows)
    newest = select(Product.id).order_by(Product.id.desc()).limit(len(rows))
    return sorted((await db.scalars(newest)).all())


async def _reduce_prices(db: AsyncSession, reductions: list[dict[str, int]]) -> None:
    """One executemany UPDATE, so the price history trigger records each reduction. On the
    connection: the session's bulk update checks ``version`` row by row (one statement each)."""
    conn = await db.connection()
    await conn.execute(
        update(Product).where(Product.id == bindparam("product_id"))
        .values(price_cents=bindparam("sale_price"), version=Product.version + 1),
        reductions,
    )


def prompt_password() -> str:
    """Asked twice without echo, so a typo does not lock the admin out."""
    try:
        password = getpass.getpass("Password for the new admin: ")
        again = getpass.getpass("Same password again: ")
    except EOFError:
        raise users.UserError(
            "No password given: set ELECTRO_ADMIN_PASSWORD or run in a terminal."
        ) from None
    if password != again:
        raise users.UserError("The two passwords differ.")
    return password


def generate_password(settings: Settings, username: str, email: str) -> str:
    """16 random URL-safe characters (96 bits), redrawn in the unlikely case the policy objects."""
    while True:
        password = secrets.token_urlsafe(12)
        if not policy_problems(password, settings, username=username, email=email):
            return password


async def create_admin(username: str, email: str, generate_if_no_admin: bool) -> None:
    settings = load_settings()
    # Format errors come before the password prompt: nobody types a password twice in vain.
    users.check_username(username)
    email = users.normalise_email(email)
    async with opened(settings.database) as engine:
        sessions = make_sessionmaker(engine)
        generated = ""
        async with sessions() as db:  # checks before the prompt, in a transaction of their own
            if generate_if_no_admin:
                if await users.admin_exists(db):
                    print("admin account exists")
                    return
                generated = "" if settings.admin_password else generate_password(
                    settings, username, email
                )
            elif what := await users.taken(db, username, email):
                raise users.UserError(f"That {what} is already taken.")
        password = (settings.admin_password or generated
                    or await asyncio.to_thread(prompt_password))
        async with sessions.begin() as db:  # create_user checks again: the name may be gone
            await users.create_user(
                db, Passwords(settings), settings, username=username, email=email,
                password=password, is_admin=True, actor="cli",
            )
    print(f"admin account created: {username} <{email}>")
    if generated:
        print(f"  username: {username}\n  password: {generated}\n"
              "  (shown only this once; only its hash is stored)")
    if settings.admin_two_factor == "required":
        print("  two-factor: required for admins (ELECTRO_ADMIN_TWO_FACTOR=required). After\n"
              "  logging in, the first admin page leads to /account/two-factor: scan the QR\n"
              "  code with an authenticator app and type its code. For a local demo without\n"
              "  a phone, run with ELECTRO_ADMIN_TWO_FACTOR=optional.")


async def reset_two_factor(username: str) -> None:
    """For the last admin who lost their phone: they enrol again at their next admin page."""
    settings = load_settings()
    async with opened(settings.database) as engine, make_sessionmaker(engine).begin() as db:
        await two_factor.reset_by_username(db, settings, username, events.Actor(name="cli"))
    print(f"two-factor reset for {username}: they set it up again at /account/two-factor")


EVENT_FILTERS = ("type", "actor", "ip", "since", "until")  # as in the /admin/events URL


async def export_events(path: Path, options: dict[str, str]) -> None:
    """The same filter and JSON stream as the admin's events export, written to ``path``."""
    settings = load_settings()
    f = events.parse_filter(options)
    async with opened(settings.database) as engine, make_sessionmaker(engine)() as db:
        out = await asyncio.to_thread(path.open, "w", encoding="utf-8")
        try:
            async for chunk in events.export_json(db, f):
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
    print(f"wrote the events to {path}")


def _progress_bar(desc: str) -> tuple[tqdm, backups.Progress]:
    bar = tqdm(desc=desc, unit="row", unit_scale=True, total=0)

    def update(step: str, done: int, total: int) -> None:
        if done < bar.n:  # a new phase (safety backup, then restore) starts from zero
            bar.reset()
        bar.total = total
        bar.set_postfix_str(step, refresh=False)
        bar.update(done - bar.n)

    return bar, update


def _copy(source: Path, target: Path) -> Path:
    """Copy into ``target`` when it is a folder, else to that file name."""
    if target.is_dir():
        target = target / source.name
    shutil.copyfile(source, target)
    return target


async def backup(copy_to: Path | None) -> None:
    settings = load_settings()
    bar, progress = _progress_bar("backup")
    try:
        async with opened(settings.database) as engine:
            made = await backups.create_backup(engine, settings, progress=progress)
    finally:
        bar.close()
    path = backups.backup_path(settings, made)
    print(f"backup {path} ({made.size_bytes:,} bytes, {sum(made.row_counts.values()):,} rows, "
          f"sha256 {made.sha256})")
    if copy_to is not None:
        print(f"copied to {await asyncio.to_thread(_copy, path, copy_to)}")


async def restore(path: Path) -> None:
    settings = load_settings()
    bar, progress = _progress_bar("restore")
    try:
        async with opened(settings.database) as engine:
            done = await backups.restore_backup(engine, settings, path, progress=progress)
    finally:
        bar.close()
    print(f"restored {done.manifest.total_rows:,} rows from {path} "
          f"(made {done.manifest.created_at:%Y-%m-%d %H:%M:%S} UTC); the previous data is in "
          f"{backups.backup_path(settings, done.safety_backup)}")


class StartFailed(Exception):
    """The app cannot start here; the message says why."""


async def check_start() -> None:
    """Start the app once in this process, as each worker will (settings, optional
    dependencies such as redis, the database answering), and stop it: a worker that cannot start
    would otherwise die behind a parent that keeps running."""
    from electro.app import create_app

    try:
        app = create_app()
        app.logger.disabled = True  # the reason is printed once below, without a traceback
        await app.startup()
        try:
            sessions = app.extensions["electro"].sessions
            async with sessions() as db:
                await db.execute(select(1))
        finally:
            await app.shutdown()
    except SettingsError:
        raise
    except Exception as exc:  # any reason at all: said in one line, not a traceback
        raise StartFailed(f"{type(exc).__name__}: {exc}") from exc


def serve(bind: str, workers: int) -> int:
    """hypercorn's exit code: non-zero when a worker died."""
    from hypercorn.config import Config
    from hypercorn.run import run

    asyncio.run(check_start())

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
    return run(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="electro", description="E-lectro shop")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="create or migrate the database (idempotent)")
    adm = sub.add_parser(
        "create-admin",
        help="create an admin; password from ELECTRO_ADMIN_PASSWORD or asked twice",
    )
    adm.add_argument("--username", required=True)
    adm.add_argument("--email", required=True)
    adm.add_argument(
        "--generate-if-no-admin", action="store_true",
        help="only when there is no admin: generate a password and print it once",
    )
    seed = sub.add_parser("seed-demo", help="add demo categories and products")
    seed.add_argument("--products", type=int, default=300)
    seed.add_argument("--if-empty", action="store_true", help="only when there are no products")
    seed.add_argument("--shoppers", type=int, default=0,
                      help="also add N demo shoppers with planted tastes and their orders")
    srv = sub.add_parser("serve", help="serve with hypercorn")
    srv.add_argument("--bind", default="127.0.0.1:5000")
    srv.add_argument("--workers", type=int, default=1)
    ev = sub.add_parser("events", help="event log")
    ev_sub = ev.add_subparsers(dest="events_command", required=True)
    exp = ev_sub.add_parser("export", help="write events as a JSON array")
    exp.add_argument("--output", type=Path, default=Path("events.json"))
    for name in EVENT_FILTERS:
        exp.add_argument(f"--{name}", default="", help="filter as on /admin/events")
    bk = sub.add_parser("backup", help="snapshot every table into the instance's backups folder")
    bk.add_argument("path", nargs="?", type=Path, help="also copy the file here (file or folder)")
    rs = sub.add_parser("restore", help="replace every table with a backup (safety backup first)")
    rs.add_argument("path", type=Path)
    tf = sub.add_parser("two-factor", help="two-factor sign-in")
    tf_sub = tf.add_subparsers(dest="two_factor_command", required=True)
    tf_reset = tf_sub.add_parser("reset", help="turn an account's two-factor off (lost phone)")
    tf_reset.add_argument("--username", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "init-db":
            asyncio.run(init_db())
        elif args.command == "create-admin":
            asyncio.run(create_admin(args.username, args.email, args.generate_if_no_admin))
        elif args.command == "seed-demo":
            asyncio.run(seed_demo(args.products, args.if_empty))
            if args.shoppers > 0:
                asyncio.run(demo_shoppers.seed(load_settings(), args.shoppers, args.if_empty))
        elif args.command == "serve":
            return serve(args.bind, args.workers)
        elif args.command == "events":
            asyncio.run(export_events(args.output,
                                      {name: getattr(args, name) for name in EVENT_FILTERS}))
        elif args.command == "backup":
            asyncio.run(backup(args.path))
        elif args.command == "restore":
            asyncio.run(restore(args.path))
        elif args.command == "two-factor":
            asyncio.run(reset_two_factor(args.username))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except users.UserError as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 2
    except events.FilterError as exc:
        print(f"bad filter: {exc}", file=sys.stderr)
        return 2
    except backups.BackupError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    except StartFailed as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
