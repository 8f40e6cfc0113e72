"""Backups (D3): consistent snapshot, verification, all-or-nothing restore, CLI, SQLite -> PG."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from electro import cli, clock
from electro.config import Settings, load_settings
from electro.db import Base, make_engine, make_sessionmaker
from electro.migrate import upgrade
from electro.models import (
    AccountBlock,
    Backup,
    Category,
    Event,
    IpBlock,
    OneTimeKey,
    OutboxMail,
    Product,
    SearchDaily,
    SearchRecord,
    User,
    UserSession,
)
from electro.services import backups, mail, search
from electro.services.backups import databases, fileformat
from tests.support import PG_URL

CLEAR_PASSWORD = "correct horse battery staple 42"
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def settings(settings_overrides: dict[str, Any]) -> Settings:
    return load_settings(environ={}, overrides=settings_overrides)


async def seed(engine: AsyncEngine) -> None:
    """A little of every table, with the awkward types: datetimes, a date, JSON, NULLs."""
    now = clock.now()
    async with make_sessionmaker(engine).begin() as db:
        alice = User(username="alice", email="alice@example.com",
                     password_hash=HASHER.hash(CLEAR_PASSWORD), is_admin=True, last_login_at=now)
        bob = User(username="bob", email="bob@example.com", password_hash=HASHER.hash("other pw"))
        db.add_all([alice, bob])
        await db.flush()
        phones = Category(name="Phones")
        db.add(phones)
        await db.flush()
        db.add_all([
            Product(name=f"Phone {i}", company="Voltaic", category_id=phones.id,
                    price_cents=10_000 + i,
                    description="naïve “quotes” ✓", stock=i)
            for i in range(30)
        ])
        await db.flush()
        # Price changes fill price_history (its trigger); a restore must bring back just these.
        await db.execute(text("UPDATE products SET price_cents = price_cents - 500 WHERE id <= 3"))
        db.add_all([
            UserSession(token_hash="a" * 64, user_id=alice.id, ip="10.0.0.1"),
            OneTimeKey(purpose="reset", key_hash="b" * 64, user_id=bob.id,
                       expires_at=now + timedelta(minutes=15)),
            AccountBlock(user_id=bob.id, until=now + timedelta(days=1), reason="spam",
                         created_by_id=alice.id),
            IpBlock(ip="192.0.2.9", until=now + timedelta(hours=1), created_by_id=alice.id),
            SearchRecord(query="phone", client_hash="c" * 64, hour_start=now.replace(minute=0)),
            SearchDaily(query="phone", day=date(2026, 11, 24), clients=3),
            Event(type="authn_login_fail", actor="bob", details={"tries": 2, "ids": [1, 2]}),
            OutboxMail(to_addr="bob@example.com", subject="Hi", body="Hello", template="test"),
        ])


async def dump(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    out = {}
    async with engine.connect() as conn:
        for table in backups.snapshot_tables():
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(r) for r in rows]
    return out


# What a restore changes on purpose: credentials come back spent (sessions ended, keys used)
# and queued mail, whose body a backup does not keep, comes back given up.
CHANGED_BY_RESTORE = {
    "sessions": {"ended_at", "end_reason"},
    "one_time_keys": {"used_at"},
    "outbox": {"body", "status", "last_error"},
}


def restored(table: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as a restore must bring them back."""
    names = [c.name for c in Base.metadata.tables[table].columns]
    keep = [i for i, name in enumerate(names) if name not in CHANGED_BY_RESTORE.get(table, ())]
    return [tuple(row[i] for i in keep) for row in rows]


def read_archive(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The backup's rows, decoded independently of the service."""
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        return {
            t["name"]: [dict(zip(t["columns"], json.loads(line), strict=True))
                        for line in gzip.decompress(zf.read(f"{t['name']}.jsonl.gz")).splitlines()]
            for t in manifest["tables"]
        }


async def test_round_trip_keeps_ids_and_new_rows_get_fresh_ids(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine)
    before = await dump(engine)
    made = await backups.create_backup(engine, settings)
    path = backups.backup_path(settings, made)
    assert made.row_counts["products"] == 30 and made.row_counts["users"] == 2
    assert path.is_file() and made.size_bytes == path.stat().st_size

    sessions = make_sessionmaker(engine)
    async with sessions.begin() as db:  # damage: delete most rows, add some that must go
        await db.execute(Product.__table__.delete())
        await db.execute(UserSession.__table__.delete())
        db.add(Category(name="Not in the backup"))
    damaged = await dump(engine)
    done = await backups.restore_backup(engine, settings, path)
    after = await dump(engine)

    for table in before:
        if table not in ("events", "backups"):
            assert restored(table, after[table]) == restored(table, before[table]), table
    # Events are the snapshot's, then the restore's own: its safety backup and the restore.
    assert after["events"][: len(before["events"])] == before["events"]
    assert [e[2] for e in after["events"][len(before["events"]):]] == [
        "backup_created", "backup_restored"
    ]
    # The safety backup holds the data just before the restore (taken while the rows were
    # being replaced, on SQLite), not what was restored.
    safety = read_archive(backups.backup_path(settings, done.safety_backup))
    assert safety["products"] == []
    assert [c["name"] for c in safety["categories"]] == [r[1] for r in damaged["categories"]]
    assert len(safety["events"]) == len(damaged["events"])
    # The backups table keeps describing the files on disk: the backup and the safety backup.
    assert {r[1] for r in after["backups"]} == {made.filename, done.safety_backup.filename}

    async with sessions.begin() as db:
        alice = await db.scalar(select(User).where(User.username == "alice"))
        assert alice is not None and HASHER.verify(alice.password_hash, CLEAR_PASSWORD)
        product = Product(name="New", category_id=before["categories"][0][0], price_cents=1)
        category = Category(name="New one")
        db.add_all([product, category])
        await db.flush()
        # Sequences follow the restored ids (PostgreSQL's were reset by setval).
        assert product.id == max(r[0] for r in before["products"]) + 1
        assert category.id == max(r[0] for r in before["categories"]) + 1
        last_event = await db.scalar(select(func.max(Event.id)))
        assert last_event == after["events"][-1][0]
    assert [b.filename for b in await _list(engine)] == [
        done.safety_backup.filename, made.filename
    ]


async def _list(engine: AsyncEngine) -> list[Backup]:
    async with make_sessionmaker(engine)() as db:
        return await backups.list_backups(db)


async def test_backup_holds_hashes_never_a_clear_password(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine)
    path = backups.backup_path(settings, await backups.create_backup(engine, settings))
    with zipfile.ZipFile(path) as zf:
        everything = b"".join(gzip.decompress(zf.read(n)) if n.endswith(".gz") else zf.read(n)
                              for n in zf.namelist())
    assert CLEAR_PASSWORD.encode() not in everything
    users = read_archive(path)["users"]
    assert all(u["password_hash"].startswith("$argon2id$") for u in users)


async def test_backup_is_consistent_while_writers_run(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each writer transaction adds a category, a product in it and an event: a backup that
    read tables at different moments would hold some of a transaction and not the rest."""
    await seed(engine)
    sessions = make_sessionmaker(engine)
    committed = 0
    stop = asyncio.Event()
    progressed = asyncio.Condition()

    async def writer() -> None:
        nonlocal committed
        try:
            while not stop.is_set():
                async with sessions.begin() as db:
                    category = Category(name=f"w{committed}")
                    db.add(category)
                    await db.flush()
                    db.add(Product(name=f"w{committed}", category_id=category.id, price_cents=1))
                    db.add(Event(type="pair", details={"n": committed}))
                committed += 1
                async with progressed:
                    progressed.notify_all()
        finally:
            stop.set()  # a failing writer must not leave the backup waiting for it
            async with progressed:
                progressed.notify_all()

    dump_table = backups.dump.dump_table
    seen: list[int] = []

    async def dump_after_more_writes(*args: Any) -> backups.TableEntry:
        # Between any two tables the backup reads, two more writer transactions commit.
        target = committed + 2
        async with progressed:
            await progressed.wait_for(lambda: committed >= target or stop.is_set())
        seen.append(committed)
        return await dump_table(*args)

    monkeypatch.setattr(backups.dump, "dump_table", dump_after_more_writes)
    task = asyncio.create_task(writer())
    try:
        made = await backups.create_backup(engine, settings)
    finally:
        stop.set()
        await task
    assert seen[-1] - seen[0] >= 2 * (len(seen) - 1)  # writes really ran during the backup

    data = read_archive(backups.backup_path(settings, made))
    categories = {c["id"] for c in data["categories"]}
    assert all(p["category_id"] in categories for p in data["products"])
    pairs = {
        "categories": {c["name"] for c in data["categories"] if c["name"].startswith("w")},
        "products": {p["name"] for p in data["products"] if p["name"].startswith("w")},
        "events": {f"w{e['details']['n']}" for e in data["events"] if e["type"] == "pair"},
    }
    assert pairs["categories"] == pairs["products"] == pairs["events"]
    assert len(pairs["categories"]) <= seen[0]  # the snapshot predates the later writes
    assert {t: len(rows) for t, rows in data.items()} == made.row_counts


async def schema(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """Every index, constraint and trigger, as the database describes them."""
    queries = {
        "sqlite": ["SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"],
        "postgresql": [
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() ORDER BY indexname",
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
            "ORDER BY 1, 2",
            "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname",
        ],
    }[engine.dialect.name]
    async with engine.connect() as conn:
        return [tuple(row) for query in queries for row in await conn.execute(text(query))]


async def test_restore_leaves_the_schema_and_its_checks_as_they_were(
    engine: AsyncEngine, settings: Settings
) -> None:
    """The load sets indexes, foreign keys and the search triggers aside: all come back, and
    every pooled connection enforces foreign keys again."""
    await seed(engine)
    before = await schema(engine)
    assert len(before) > 20
    made = await backups.create_backup(engine, settings)
    await backups.restore_backup(engine, settings, backups.backup_path(settings, made))
    assert await schema(engine) == before

    async def orphan_refused() -> None:
        async with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(Product.__table__.insert().values(
                    name="Orphan", company="Nobody", category_id=999_999, price_cents=1,
                    description="", stock=0, created_at=clock.now(), updated_at=clock.now(),
                    version=1,
                ))
            await conn.rollback()

    await asyncio.gather(*(orphan_refused() for _ in range(5)))  # the pool's connections at once


async def test_restore_failing_midway_changes_nothing(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(engine)
    made = await backups.create_backup(engine, settings)
    async with make_sessionmaker(engine).begin() as db:  # the database moves on after the backup
        await db.execute(Product.__table__.delete().where(Product.stock < 10))
        db.add(User(username="carol", email="carol@example.com", password_hash="x"))
    before = await dump(engine)

    database = type(databases.database_for(engine.dialect))
    insert_rows = database.insert_rows

    async def fail_at_products(self: Any, conn: Any, table: Any, rows: Any) -> None:
        if table.name == "products":  # users, categories... are already back in by now
            raise RuntimeError("disk full")
        await insert_rows(self, conn, table, rows)

    monkeypatch.setattr(database, "insert_rows", fail_at_products)
    failed = r"nothing was changed \(RuntimeError: disk full\)"
    with pytest.raises(backups.BackupError, match=failed):
        await backups.restore_backup(engine, settings, backups.backup_path(settings, made))
    assert_unchanged_but_for_the_safety_backup(
        before, await dump(engine), safety_taken=safety_taken_before_the_load(engine)
    )


async def test_restore_whose_safety_backup_fails_changes_nothing(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(engine)
    made = await backups.create_backup(engine, settings)
    async with make_sessionmaker(engine).begin() as db:
        await db.execute(Product.__table__.delete().where(Product.stock < 10))
    before = await dump(engine)
    seal = fileformat.seal

    def fail_for_safety(partial: Path, final: Path) -> tuple[int, str]:
        if "-safety-" in partial.name:
            raise OSError("no space left on device")
        return seal(partial, final)

    monkeypatch.setattr(fileformat, "seal", fail_for_safety)
    with pytest.raises(backups.BackupError, match="no space left on device"):
        await backups.restore_backup(engine, settings, backups.backup_path(settings, made))
    assert_unchanged_but_for_the_safety_backup(before, await dump(engine), safety_taken=False)
    assert sorted(p.name for p in settings.backup_folder.iterdir()) == [made.filename]


async def test_restore_of_rows_that_refer_to_nothing_changes_nothing(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """Foreign keys are set aside during the load and checked once at its end: a crafted file
    whose product points to a category that does not exist is refused there."""
    await seed(engine)
    made = await backups.create_backup(engine, settings)
    crafted = tmp_path / "orphan.zip"

    def orphan(lines: list[bytes]) -> list[bytes]:
        row = json.loads(lines[0])
        row[3] = 999_999  # category_id
        return [json.dumps(row).encode() + b"\n", *lines[1:]]

    assert [c.name for c in Product.__table__.columns][3] == "category_id"
    rewrite(backups.backup_path(settings, made), crafted, "products", orphan)
    before = await dump(engine)
    refused = (r"nothing was changed \((ForeignKeyViolation: .* of categories"
               r"|IntegrityError: .*violates foreign key constraint)")
    with pytest.raises(backups.BackupError, match=refused):
        await backups.restore_backup(engine, settings, crafted)
    assert_unchanged_but_for_the_safety_backup(before, await dump(engine))


def assert_unchanged_but_for_the_safety_backup(
    before: dict[str, list[tuple[Any, ...]]],
    after: dict[str, list[tuple[Any, ...]]],
    *,
    safety_taken: bool = True,
) -> None:
    for table in before:
        if table not in ("events", "backups"):
            assert restored(table, after[table]) == restored(table, before[table]), table
    # Only the safety backup (if it was taken) and the failure were recorded; the old rows are
    # untouched.
    assert after["events"][: len(before["events"])] == before["events"]
    assert [e[2] for e in after["events"][len(before["events"]):]] == [
        *(["backup_created"] if safety_taken else []), "backup_restore_failed"
    ]
    assert after["backups"][: len(before["backups"])] == before["backups"]
    assert [b[1].split("-")[1] for b in after["backups"][len(before["backups"]):]] == (
        ["safety"] if safety_taken else []
    )


def safety_taken_before_the_load(engine: AsyncEngine) -> bool:
    """PostgreSQL writes the safety backup before the load; SQLite while it rebuilds indexes
    after the load, so a failure during the load leaves no safety backup there (nor a need)."""
    return engine.dialect.name == "postgresql"


def edit_archive(path: Path, target: Path, edit: Any) -> None:
    """Copy a backup after ``edit(members, manifest)`` changed them in place."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    edit(members, manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as zf:
        for name, member in members.items():
            zf.writestr(name, member)


def rewrite(path: Path, target: Path, table: str, edit: Any, rows: int | None = None) -> None:
    """Copy a backup with one table's lines edited, checksum and count (or ``rows``) updated."""

    def edit_table(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
        lines = edit(gzip.decompress(members[f"{table}.jsonl.gz"]).splitlines(keepends=True))
        data = members[f"{table}.jsonl.gz"] = gzip.compress(b"".join(lines))
        entry = next(t for t in manifest["tables"] if t["name"] == table)
        entry.update(rows=len(lines) if rows is None else rows,
                     sha256=hashlib.sha256(data).hexdigest())

    edit_archive(path, target, edit_table)


async def test_restore_hitting_a_database_error_changes_nothing(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """A well-formed file whose rows the database refuses (a duplicate product id, after the
    users, categories... went in): rolled back, and the message carries no SQL or hashes."""
    await seed(engine)
    made = await backups.create_backup(engine, settings)
    crafted = tmp_path / "duplicate.zip"
    rewrite(backups.backup_path(settings, made), crafted, "products",
            lambda lines: [*lines, lines[0]])
    async with make_sessionmaker(engine).begin() as db:
        await db.execute(Product.__table__.delete().where(Product.stock > 20))
    before = await dump(engine)
    refused = r"nothing was changed \((IntegrityError|UniqueViolationError): .*(UNIQUE|unique)"
    with pytest.raises(backups.BackupError, match=refused) as info:
        await backups.restore_backup(engine, settings, crafted)
    assert "[SQL" not in str(info.value) and "$argon2" not in str(info.value)
    assert_unchanged_but_for_the_safety_backup(
        before, await dump(engine), safety_taken=safety_taken_before_the_load(engine)
    )


def _corrupt(path: Path) -> None:
    """One byte flipped in the middle of the products member's data (a fixed share of the file
    landed elsewhere, in another member's header, once the orders tables came)."""
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("products.jsonl.gz")
    data = bytearray(path.read_bytes())
    name_and_extra = int.from_bytes(data[member.header_offset + 26:member.header_offset + 28],
                                    "little") + int.from_bytes(
        data[member.header_offset + 28:member.header_offset + 30], "little")
    data[member.header_offset + 30 + name_and_extra + member.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _foreign_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "something-else"}))


def _not_a_zip(path: Path) -> None:
    path.write_text("users,products\n1,2\n")


def _wrong_revision(path: Path) -> None:
    edit_archive(path, path, lambda _members, manifest: manifest.update(schema_revision="0000"))


def _future_format(path: Path) -> None:
    edit_archive(path, path, lambda _members, manifest: manifest.update(format_version=2))


def _missing_row(path: Path) -> None:
    """Checksum recomputed, count left at 30: a consistent-looking but short table."""
    rewrite(path, path, "products", lambda lines: lines[:-1], rows=30)


@pytest.mark.parametrize(("damage", "message"), [
    (_corrupt, "damaged"),
    (_truncate, "damaged or truncated"),
    (_foreign_zip, "not an E-lectro backup"),
    (_not_a_zip, "damaged or truncated"),
    (_wrong_revision, "schema revision 0000"),
    (_future_format, "format version 2 is not supported"),
    (_missing_row, "table products: the data is incomplete"),
])
async def test_bad_file_is_refused_before_anything_changes(
    engine: AsyncEngine, settings: Settings, tmp_path: Path, damage: Any, message: str
) -> None:
    await seed(engine)
    made = await backups.create_backup(engine, settings)
    bad = tmp_path / "upload.zip"
    bad.write_bytes(backups.backup_path(settings, made).read_bytes())
    damage(bad)
    before = await dump(engine)
    with pytest.raises(backups.BackupError, match=message):
        await backups.verify_backup(bad, max_bytes=10_000_000)
    with pytest.raises(backups.BackupError, match=message):
        await backups.restore_backup(engine, settings, bad)
    assert await dump(engine) == before  # not even a safety backup was taken
    assert sorted(p.name for p in settings.backup_folder.iterdir()) == [made.filename]


async def test_restore_into_a_database_at_another_revision_is_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    made = await backups.create_backup(engine, settings)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(backups.BackupError, match="database is at schema revision 0000"):
        await backups.restore_backup(engine, settings, backups.backup_path(settings, made))


async def test_upload_over_the_limit_is_refused(engine: AsyncEngine, settings: Settings) -> None:
    made = await backups.create_backup(engine, settings)
    path = backups.backup_path(settings, made)
    with pytest.raises(backups.BackupError, match="limited to 100 bytes"):
        await backups.restore_backup(engine, settings, path, max_bytes=100)
    manifest = await backups.verify_backup(path, max_bytes=made.size_bytes)
    assert manifest.row_counts == made.row_counts


async def test_an_unknown_backup_is_not_found(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as db:
        with pytest.raises(backups.BackupError, match=r"^there is no backup #12345$") as missing:
            await backups.get_backup(db, 12345)
    assert missing.value.status == 404


@pytest.mark.parametrize("name", ["../secret_key", "/etc/passwd", "..", ".hidden", "a/b.zip", ""])
def test_backup_path_never_leaves_the_folder(settings: Settings, name: str) -> None:
    with pytest.raises(backups.BackupError, match="not a plain file name"):
        backups.backup_path(settings, Backup(filename=name))


async def test_cli_backup_and_restore(
    engine: AsyncEngine, settings: Settings, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(engine)
    before = await dump(engine)
    monkeypatch.setenv("ELECTRO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELECTRO_INSTANCE_DIR", str(settings.instance_dir))
    copy = tmp_path / "offsite.zip"
    assert await asyncio.to_thread(cli.main, ["backup", str(copy)]) == 0
    assert "copied to" in capsys.readouterr().out and copy.is_file()

    async with make_sessionmaker(engine).begin() as db:
        await db.execute(Product.__table__.delete())
    assert await asyncio.to_thread(cli.main, ["restore", str(copy)]) == 0
    out = capsys.readouterr()
    assert "restored" in out.out and "safety" in out.out
    assert "row" in out.err  # the progress bar
    assert (await dump(engine))["products"] == before["products"]

    _truncate(copy)
    assert await asyncio.to_thread(cli.main, ["restore", str(copy)]) == 1
    assert "restore failed: the file is damaged or truncated" in capsys.readouterr().err


@pytest.mark.skipif(not PG_URL, reason="needs ELECTRO_TEST_DATABASE_URL (PostgreSQL)")
async def test_sqlite_backup_restores_into_postgresql_and_back(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """The migration path: the embedded SQLite database moves to PostgreSQL (``engine``)."""
    lite = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'small-shop.db'}")
    try:
        await upgrade(lite)
        await seed(lite)
        lite_rows = await dump(lite)
        made = await backups.create_backup(lite, settings)
        path = backups.backup_path(settings, made)
        await backups.restore_backup(engine, settings, path)
        pg_rows = await dump(engine)
        for table in lite_rows:
            if table != "backups":
                assert (restored(table, pg_rows[table][: len(lite_rows[table])])
                        == restored(table, lite_rows[table])), table
        async with make_sessionmaker(engine).begin() as db:  # sequences follow the ids
            category = Category(name="Cameras")
            db.add(category)
            await db.flush()
            assert category.id == max(r[0] for r in lite_rows["categories"]) + 1
        # And back: a PostgreSQL backup restores into SQLite.
        pg_backup = await backups.create_backup(engine, settings)
        await backups.restore_backup(lite, settings, backups.backup_path(settings, pg_backup))
        back = await dump(lite)
        assert back["products"] == lite_rows["products"]
        assert back["users"] == lite_rows["users"]
    finally:
        await lite.dispose()


async def test_restore_brings_the_search_index_and_catalogue_version_along(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine)
    made = await backups.create_backup(engine, settings)
    async with make_sessionmaker(engine).begin() as db:
        await db.execute(delete(Product))
        assert (await search.search(db, "phone")).hits == ()
        version_before = await search.catalogue_version(db)
    await backups.restore_backup(engine, settings, backups.backup_path(settings, made))
    async with make_sessionmaker(engine)() as db:
        assert len((await search.search(db, "phone", limit=100)).hits) == 30
        assert await search.catalogue_version(db) > version_before
    # The index's triggers, paused for the bulk load, keep it up to date again.
    async with make_sessionmaker(engine).begin() as db:
        category_id = await db.scalar(select(Category.id))
        db.add(Product(name="Gramophone", category_id=category_id, price_cents=1))
    async with make_sessionmaker(engine)() as db:
        assert [hit.name for hit in (await search.search(db, "gramophone")).hits] == ["Gramophone"]


async def test_restore_revives_no_session_and_no_key(
    engine: AsyncEngine, settings: Settings
) -> None:
    """A session ended, or a key used, after the snapshot must stay dead after a restore."""
    await seed(engine)  # holds a live session and an unused reset key
    made = await backups.create_backup(engine, settings)
    await backups.restore_backup(engine, settings, backups.backup_path(settings, made))
    async with make_sessionmaker(engine)() as db:
        live = await db.scalar(select(func.count()).select_from(UserSession)
                               .where(UserSession.ended_at.is_(None)))
        unused = await db.scalar(select(func.count()).select_from(OneTimeKey)
                                 .where(OneTimeKey.used_at.is_(None)))
        ended = (await db.scalars(select(UserSession.end_reason))).all()
    assert live == 0 and unused == 0
    assert "restore" in ended


async def test_a_queued_mail_s_key_stays_out_of_backups_and_is_not_sent_after_a_restore(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine)
    async with make_sessionmaker(engine).begin() as db:
        await mail.send_mail(db, settings, "new@example.com", "register_key",
                             username="new", key="CLEAR-KEY-123", minutes=15)
    made = await backups.create_backup(engine, settings)
    archive = read_archive(backups.backup_path(settings, made))
    assert "CLEAR-KEY-123" not in json.dumps(archive)
    assert {row["body"] for row in archive["outbox"]} == {""}
    await backups.restore_backup(engine, settings, backups.backup_path(settings, made))
    async with make_sessionmaker(engine)() as db:
        statuses = (await db.scalars(select(OutboxMail.status))).all()
    assert "pending" not in statuses and "failed" in statuses
