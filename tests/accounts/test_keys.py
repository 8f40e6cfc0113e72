"""Key rules shared by every purpose: expiry checked at use, exactly-once use under
concurrency, the purge job only tidying up."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from electro import clock, tasks
from electro.models import OneTimeKey, User
from electro.services import keys
from tests.support import Client, Mailbox
from tests.support.accounts import count_rows, mailed_key, register, text_of


async def test_an_expired_key_is_refused_before_any_purge(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    await register(client)
    key = await mailed_key(mailbox, "bob@example.com")
    clock.advance(timedelta(minutes=15, seconds=1))
    response = await client.post("/register/confirm", {"key": key})
    assert response.status_code == 200
    assert "This key does not work" in await text_of(response)
    assert await count_rows(app, User) == 0
    assert await count_rows(app, OneTimeKey) == 1  # refused by its date, not by the purge
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        assert await keys.purge_expired_keys(db, rt.settings) == 1


async def test_the_purge_job_deletes_expired_used_and_spent_keys(app: Any) -> None:
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        await keys.issue(db, rt.settings, "reset")
        used, _ = await keys.issue(db, rt.settings, "reset")
        _spent, spent_row = await keys.issue(db, rt.settings, "register")
        spent_row.attempts = rt.settings.key_max_attempts
        await keys.use(db, rt.settings, "reset", keys.hash_key(used))
    clock.advance(timedelta(minutes=10))
    async with rt.sessions.begin() as db:
        await keys.issue(db, rt.settings, "activate")  # expires 5 minutes after the others
    clock.advance(timedelta(minutes=5, seconds=1))
    assert "purge_expired_keys" in [job.__name__ for job in tasks.JOBS]
    await tasks.run_jobs_once(rt.sessions, rt.settings)
    async with rt.sessions() as db:
        assert list(await db.scalars(select(OneTimeKey.purpose))) == ["activate"]


async def test_a_key_works_for_its_own_purpose_only(app: Any) -> None:
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        key, _ = await keys.issue(db, rt.settings, "reset")
        with pytest.raises(keys.KeyRefused):
            await keys.use(db, rt.settings, "activate", keys.hash_key(key))
        assert (await keys.use(db, rt.settings, "reset", keys.hash_key(key))).purpose == "reset"
    assert len(key) >= 22  # >= 128 bits in URL-safe base64


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    # 50 clients from one test address: the per-IP limits are not what this file proves.
    return {**settings_overrides, "rate_limits": False}


async def test_fifty_concurrent_confirmations_create_one_account(
    app: Any, client: Client, mailbox: Mailbox
) -> None:
    await register(client)
    key = await mailed_key(mailbox, "bob@example.com")
    browsers = [Client(app) for _ in range(50)]
    await asyncio.gather(*(b.refresh_token() for b in browsers))
    responses = await asyncio.gather(
        *(b.post("/register/confirm", {"key": key}) for b in browsers))
    assert [r.status_code for r in responses] == [200] * 50
    pages = [await text_of(r) for r in responses]
    assert sum("Your account is ready" in p for p in pages) == 1
    assert sum("This key does not work" in p for p in pages) == 49
    assert await count_rows(app, User) == 1
