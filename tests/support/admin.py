"""Helpers for the admin-table tests: rows straight in the database, form parsing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from electro import clock
from electro.models import (
    AccountBlock,
    Backup,
    Category,
    Event,
    IpBlock,
    OneTimeKey,
    Order,
    OrderLine,
    OutboxMail,
    Product,
    SearchRecord,
    User,
    UserSession,
)
from tests.support import Client


async def seed_catalogue(app: Any, products: int = 3) -> tuple[int, list[int]]:
    """A category "Phones" with ``products`` products priced 1.00, 2.00, ...; returns ids."""
    async with app.extensions["electro"].sessions.begin() as db:
        category_id = (await db.execute(
            insert(Category).values(name="Phones").returning(Category.id))).scalar_one()
        rows = [{"name": f"Phone {i:03d}", "company": "Acme", "category_id": category_id,
                 "price_cents": 100 * (i + 1), "stock": i, "description": f"model {i}"}
                for i in range(products)]
        ids = await insert_rows(db, Product, rows)
    return category_id, ids


async def seed_users(app: Any, count: int, prefix: str = "u", **values: Any) -> list[int]:
    """``count`` accounts in one INSERT (a placeholder hash: they never log in)."""
    async with app.extensions["electro"].sessions.begin() as db:
        return await insert_rows(db, User, [
            {"username": f"{prefix}{i:05d}", "email": f"{prefix}{i:05d}@example.com",
             "password_hash": "x" * 20, **values}
            for i in range(count)
        ])


async def insert_rows(db: Any, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """One executemany INSERT; the ids in the order of ``rows``."""
    if not rows:
        return []
    query = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list((await db.scalars(query, rows)).all())


async def fetch(app: Any, query: Any) -> Any:
    async with app.extensions["electro"].sessions() as db:
        return (await db.execute(query)).all()


async def one(app: Any, model: Any, row_id: int) -> Any:
    async with app.extensions["electro"].sessions() as db:
        return await db.scalar(select(model).where(model.id == row_id))


def row_ids(html: str) -> list[int]:
    """The ids of the rows in a table page or fragment, in order."""
    return [int(m) for m in re.findall(r'<tr id="row-(\d+)"', html)]


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no input {name}"
    return match.group(1)


SECRET_BODY = "Key: mailed-clear-key-never-shown"


async def add_order(db: Any, user_id: int | None, number: str, name: str, line: str,
                    status: str = "awaiting_payment") -> Order:
    """A placed order of one line (straight in the database, as placing leaves it)."""
    order = Order(number=number, user_id=user_id, email=f"{number.lower()}@example.com",
                  status=status, payment="bank_transfer", name=name, street="Main Street 1",
                  postcode="10115", city="Berlin", country="Germany", subtotal_cents=1000,
                  delivery_cents=495, total_cents=1495, checkout_hash=number.ljust(64, "0"))
    db.add(order)
    await db.flush()
    db.add(OrderLine(order_id=order.id, name=line, unit_price_cents=1000, quantity=1))
    return order


async def seed_every_table(app: Any) -> None:
    """A row in every table (an account "blocked" with a block), with secrets to look for."""
    now = clock.now()
    await seed_catalogue(app, products=2)
    (user_id,) = await seed_users(app, 1, prefix="blocked")
    async with app.extensions["electro"].sessions.begin() as db:
        db.add_all([
            AccountBlock(user_id=user_id, until=now + timedelta(days=1), reason="spam"),
            IpBlock(ip="203.0.113.9", until=now + timedelta(days=1), reason="scanner"),
            OneTimeKey(purpose="register", key_hash="a1" * 32, username="pending",
                       email="pending@example.com", password_hash="$argon2id$pending-secret",
                       expires_at=now + timedelta(minutes=15)),
            SearchRecord(query="usb cable", client_hash="c3" * 32, hour_start=now, results=4),
            Event(type="test_event", actor="admin", details={"note": "hello"}),
            OutboxMail(to_addr="x@example.com", subject="Your key", body=SECRET_BODY,
                       template="register"),
            Backup(filename="backup-1.jsonl.gz", sha256="f0" * 32, schema_revision="0001",
                   row_counts={"users": 1}),
        ])
        await add_order(db, user_id, "TEST-0001", "Blocked Buyer", "Camera 000")


async def seed_second_rows(app: Any) -> None:
    """After ``seed_every_table``: one more row in every table (two categories, since "Phones"
    holds no "a"), each containing "a" in a searchable column, so every table lists at least
    two rows for the search "a" and a sort shows its order. Blocks and sessions added here are
    over, so nobody is locked out by them."""
    now = clock.now()
    async with app.extensions["electro"].sessions.begin() as db:
        (user_id,) = await db.scalars(select(User.id).where(User.username == "blocked00000"))
        db.add_all([
            Category(name="Cameras"), Category(name="Audio"),
            AccountBlock(user_id=user_id, until=now - timedelta(days=3), reason="old abuse",
                         lifted_at=now - timedelta(days=3)),
            IpBlock(ip="198.51.100.7", until=now - timedelta(days=2), reason="past abuse",
                    lifted_at=now - timedelta(days=2)),
            UserSession(token_hash="d4" * 32, user_id=user_id, ip="192.0.2.5",
                        user_agent="Safari", ended_at=now, end_reason="logout"),
            OneTimeKey(purpose="reset", key_hash="b2" * 32, user_id=user_id,
                       email="blocked00000@example.com", attempts=2,
                       expires_at=now + timedelta(minutes=5), used_at=now),
            SearchRecord(query="hdmi adapter", client_hash="e5" * 32,
                         hour_start=now - timedelta(hours=1), results=9),
            Event(type="admin_note", actor="another admin", actor_id=user_id, ip="192.0.2.5",
                  path="/admin", details={"note": "later"}),
            OutboxMail(to_addr="a@example.com", subject="A notice", body="plain",
                       template="account_blocked", status="sent", attempts=1, sent_at=now),
            Backup(filename="backup-2.jsonl.gz", sha256="a0" * 32, schema_revision="0001",
                   row_counts={"users": 2}, size_bytes=99),
        ])
        await add_order(db, None, "TEST-000A", "Anna Gone", "HDMI adapter", status="shipped")


async def act(client: Client, table: str, action: str, ids: list[int], htmx: bool = True,
              **extra: str) -> tuple[int, str, Any]:
    """Post a group action as the browser does: one ``ids`` pair per ticked row."""
    token = client.token or await client.refresh_token()
    form = [("csrf_token", token), ("action", action), *(("ids", str(i)) for i in ids),
            *extra.items()]
    response = await client.raw.post(f"/admin/tables/{table}/actions", form=form,
                                     headers={"HX-Request": "true"} if htmx else {})
    return response.status_code, await response.get_data(as_text=True), response
