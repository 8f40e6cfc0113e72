"""Blocking accounts and IP addresses (A9) through the service the admin panel calls."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, update

from electro import clock, tasks
from electro.errors import FieldError
from electro.models import AccountBlock, IpBlock, UserSession
from electro.services import blocking
from electro.services.admin.accounts import LockOut
from electro.services.events import NOBODY, Actor
from tests.support import Client, Mailbox, body_of, make_user, sign_in
from tests.support.accounts import block_ip, events_of, log_in, session_rows


async def _blocks(app: Any) -> list[AccountBlock]:
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(select(AccountBlock).order_by(AccountBlock.id)))


async def _block(app: Any, ids: list[int], hours: float, reason: str = "spam",
                 actor_id: int | None = None) -> int:
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        count = await blocking.block_accounts(db, rt.settings, ids,
                                              clock.now() + timedelta(hours=hours), reason,
                                              Actor(actor_id, "admin", "192.0.2.8", "/test"))
    rt.wake_jobs.set()  # as a request's commit would: send the notices now
    return count


async def test_blocking_ends_live_sessions_at_once_and_mails_each_owner(
    app: Any, mailbox: Mailbox
) -> None:
    admin = await make_user(app, "admin", is_admin=True)
    ann, bob, cid = [await make_user(app, name) for name in ("ann", "bob", "cid")]
    ann_client, bob_client, cid_client = Client(app), Client(app), Client(app)
    for user, client in ((ann, ann_client), (bob, bob_client), (cid, cid_client)):
        await sign_in(app, client, user)
        assert (await client.get("/account")).status_code == 200

    assert await _block(app, [ann.id, bob.id, 999_999], 48, "payment fraud", admin.id) == 2

    async with app.extensions["electro"].sessions() as db:
        ended = list(await db.scalars(select(UserSession.end_reason).order_by(UserSession.id)))
    assert ended == ["blocked", "blocked", None]  # ended in the block's own transaction
    assert (await ann_client.get("/account")).status_code == 302
    assert (await bob_client.get("/account")).status_code == 302
    assert (await cid_client.get("/account")).status_code == 200
    for name in ("ann", "bob"):
        [mail] = await mailbox.wait_for(f"{name}@example.com")
        assert mail["Subject"] == "Your E-lectro account has been blocked"
        assert f"Hello {name}," in body_of(mail)  # each notice names its own owner
        assert "payment fraud" in body_of(mail)
        assert (clock.now() + timedelta(hours=48)).strftime("%Y-%m-%d") in body_of(mail)
    [event] = await events_of(app, "admin_block_accounts")
    assert event.actor_id == admin.id and event.details["ids"] == [ann.id, bob.id]
    assert (event.actor, event.ip, event.path) == ("admin", "192.0.2.8", "/test")
    assert [(b.user_id, b.reason, b.created_by_id) for b in await _blocks(app)] == [
        (ann.id, "payment fraud", admin.id), (bob.id, "payment fraud", admin.id)]
    assert (await log_in(ann_client, "ann")).status_code == 200  # refused


async def test_block_refuses_the_admin_themself_and_past_dates(app: Any) -> None:
    admin = await make_user(app, "admin", is_admin=True)
    ann = await make_user(app, "ann")
    with pytest.raises(LockOut, match="your own account"):
        await _block(app, [ann.id, admin.id], 1, actor_id=admin.id)
    with pytest.raises(FieldError, match="in the future"):
        await _block(app, [ann.id], -1, actor_id=admin.id)
    assert await _blocks(app) == []


async def test_an_until_with_a_time_zone_is_stored_as_naive_utc(app: Any) -> None:
    ann = await make_user(app, "ann")
    until = clock.now().replace(tzinfo=UTC) + timedelta(hours=2)
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        await blocking.block_accounts(db, rt.settings, [ann.id],
                                      until.astimezone(timezone(timedelta(hours=5))), "", NOBODY)
    [block] = await _blocks(app)
    assert block.until == until.replace(tzinfo=None)


async def test_lifting_a_block_lets_the_owner_back_in(app: Any) -> None:
    ann = await make_user(app, "ann")
    await _block(app, [ann.id], 24)
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        assert await blocking.lift_account_blocks(db, [ann.id], NOBODY) == 1
    [block] = await _blocks(app)
    assert block.lifted_at is not None
    assert (await log_in(Client(app), "ann")).status_code == 302
    assert len(await events_of(app, "admin_lift_account_blocks")) == 1


async def test_lift_due_blocks_job_tidies_only_blocks_whose_date_passed(app: Any) -> None:
    ann, bob = await make_user(app, "ann"), await make_user(app, "bob")
    await _block(app, [ann.id], 1)
    await _block(app, [bob.id], 3)
    rt = app.extensions["electro"]
    await block_ip(app, "198.51.100.4")
    clock.advance(timedelta(hours=2))
    assert (await log_in(Client(app), "ann")).status_code == 302  # over by date, job or not

    await tasks.run_jobs_once(rt.sessions, rt.settings)  # the lift job is one of the JOBS
    due, later = await _blocks(app)
    assert due.lifted_at == due.until and later.lifted_at is None
    async with rt.sessions() as db:
        ip_block = await db.scalar(select(IpBlock))
    assert ip_block is not None and ip_block.lifted_at == ip_block.until
    [event] = await events_of(app, "blocks_lifted")
    assert event.details == {"accounts": 1, "ips": 1}
    async with rt.sessions.begin() as db:
        assert await blocking.lift_due_blocks(db, rt.settings) == 0
    assert len(await events_of(app, "blocks_lifted")) == 1  # no event for an idle run


async def test_an_ip_block_refuses_sessions_from_that_address(app: Any) -> None:
    ann = await make_user(app, "ann")
    client = Client(app)
    await sign_in(app, client, ann)
    rt = app.extensions["electro"]
    block_id = await block_ip(app, "2001:db8::7")
    elsewhere = {"client": ("192.0.2.1", 1)}
    assert (await client.get("/account", scope_base=elsewhere)).status_code == 200
    assert (await client.get("/account",
                             scope_base={"client": ("2001:db8::7", 1)})).status_code == 302
    [row] = await session_rows(app)
    assert row.end_reason == "ip_blocked"

    async with rt.sessions.begin() as db:  # lifted (the admin's lift action, tested there)
        await db.execute(update(IpBlock).where(IpBlock.id == block_id)
                         .values(lifted_at=clock.now()))
    await sign_in(app, client, ann)
    assert (await client.get("/account",
                             scope_base={"client": ("2001:db8::7", 1)})).status_code == 200
