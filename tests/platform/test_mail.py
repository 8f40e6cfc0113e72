"""The outbox: mail leaves only after the commit, through real SMTP; an outage loses nothing."""

from __future__ import annotations

import asyncio
import email
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from electro import clock, tasks
from electro.models import OutboxMail
from electro.services import mail
from electro.web import db as request_db
from tests.support import Mailbox, body_of, free_port


def _runtime(app: Any) -> Any:
    return app.extensions["electro"]


async def test_queued_mail_is_delivered_over_smtp(app: Any, mailbox: Mailbox) -> None:
    rt = _runtime(app)
    async with rt.sessions.begin() as db:
        await mail.send_mail(db, rt.settings, "ann@example.com", "test", username="Ann")
    assert await mail.deliver_due(rt.sessions, rt.settings) == 1
    [message] = await mailbox.wait_for("ann@example.com")
    assert message["Subject"] == "E-lectro test e-mail"
    assert message["From"] == rt.settings.mail_from
    assert "Hello Ann," in body_of(message)
    async with rt.sessions() as db:
        row = await db.scalar(select(OutboxMail))
    assert row is not None and row.status == "sent" and row.attempts == 1
    assert row.body == ""  # a body may hold a clear key: not kept once sent


async def test_smtp_outage_delays_mail_and_loses_nothing(app: Any, mailbox: Mailbox) -> None:
    rt = _runtime(app)
    down = replace(rt.settings, smtp_port=free_port())  # nothing listens there
    async with rt.sessions.begin() as db:
        for n in range(3):
            await mail.send_mail(db, down, f"u{n}@example.com", "test", username=f"u{n}")
    assert await mail.deliver_due(rt.sessions, down) == 0
    async with rt.sessions() as db:
        rows = (await db.scalars(select(OutboxMail))).all()
    assert {r.status for r in rows} == {"pending"} and all(r.last_error for r in rows)
    # Not due again until the backoff has passed.
    assert await mail.deliver_due(rt.sessions, rt.settings) == 0
    clock.advance(mail.backoff(1) + timedelta(seconds=1))
    assert await mail.deliver_due(rt.sessions, rt.settings) == 3
    for n in range(3):
        await mailbox.wait_for(f"u{n}@example.com")
    async with rt.sessions() as db:
        assert {r.status for r in (await db.scalars(select(OutboxMail))).all()} == {"sent"}


async def test_mail_fails_for_good_only_after_the_last_attempt(app: Any) -> None:
    rt = _runtime(app)
    down = replace(rt.settings, smtp_port=free_port())
    async with rt.sessions.begin() as db:
        await mail.send_mail(db, down, "x@example.com", "test", username="x")
    for _ in range(mail.MAX_ATTEMPTS):
        await mail.deliver_due(rt.sessions, down)
        clock.advance(timedelta(hours=2))
    async with rt.sessions() as db:
        row = await db.scalar(select(OutboxMail))
    assert row is not None and row.status == "failed" and row.attempts == mail.MAX_ATTEMPTS


async def test_without_smtp_host_mail_is_written_as_eml(app: Any, tmp_path: Any) -> None:
    rt = _runtime(app)
    offline = replace(rt.settings, smtp_host="", instance_dir=tmp_path / "offline")
    async with rt.sessions.begin() as db:
        await mail.send_mail(db, offline, "eve@example.com", "test", username="Eve")
    assert await mail.deliver_due(rt.sessions, offline) == 1
    [path] = (tmp_path / "offline" / "mail").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes())
    assert message["To"] == "eve@example.com" and "Hello Eve," in body_of(message)


async def test_a_batch_goes_through_one_smtp_connection(app: Any, mailbox: Mailbox) -> None:
    rt = _runtime(app)
    async with rt.sessions.begin() as db:
        await mail.send_mails(db, rt.settings, "test", [
            (f"user{i}@example.com", {"username": f"User{i}"}) for i in range(5)])
    assert await mail.deliver_due(rt.sessions, rt.settings) == 5
    assert len(mailbox.messages) == 5
    assert len(set(mailbox.peers)) == 1  # one connection (one client port) for all five


async def test_one_round_sends_a_backlog_larger_than_a_batch(app: Any, tmp_path: Any) -> None:
    """A key mailed behind a mass mailing must not wait for later rounds (keys expire)."""
    rt = _runtime(app)
    offline = replace(rt.settings, smtp_host="", instance_dir=tmp_path / "offline")
    backlog = mail.BATCH * 2 + 3
    async with rt.sessions.begin() as db:
        await mail.send_mails(db, offline, "test", [
            (f"user{i}@example.com", {"username": f"User{i}"}) for i in range(backlog)
        ])
        await mail.send_mail(db, offline, "key@example.com", "test", username="Key")
    assert await mail.deliver_due(rt.sessions, offline) == backlog + 1
    async with rt.sessions() as db:
        assert set((await db.scalars(select(OutboxMail.status))).all()) == {"sent"}
        assert set((await db.scalars(select(OutboxMail.attempts))).all()) == {1}
    assert len(list((tmp_path / "offline" / "mail").glob("*.eml"))) == backlog + 1


async def test_a_request_that_queues_mail_wakes_the_sender(app: Any, client: Any,
                                                            mailbox: Mailbox) -> None:
    rt = _runtime(app)  # the job interval is an hour in tests: only the wake-up can send it

    @app.post("/probe-mail")
    async def probe_mail() -> str:
        await mail.send_mail(request_db(), rt.settings, "w@example.com", "test", username="W")
        return "queued"

    assert (await client.post("/probe-mail")).status_code == 200
    [message] = await mailbox.wait_for("w@example.com")
    assert "Hello W," in body_of(message)


async def test_a_rolled_back_request_sends_nothing(app: Any, client: Any) -> None:
    rt = _runtime(app)

    @app.post("/probe-fail")
    async def probe_fail() -> tuple[str, int]:
        await mail.send_mail(request_db(), rt.settings, "r@example.com", "test", username="R")
        return "refused", 400

    assert (await client.post("/probe-fail")).status_code == 400
    # The outbox row would have been written in the request's transaction: none is there.
    async with rt.sessions() as db:
        assert await db.scalar(select(func.count(OutboxMail.id))) == 0


async def test_the_runner_waits_an_interval_before_its_first_full_round(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first full round comes one interval after start; a wake-up in between runs the
    outbox alone (so a test that moves the clock is not raced by a purge)."""
    rounds: list[list[Any] | None] = []

    async def record(_sessions: Any, _settings: Any, jobs: list[Any] | None = None) -> None:
        rounds.append(jobs)

    monkeypatch.setattr(tasks, "run_jobs_once", record)
    rt = _runtime(app)
    stop, wake = asyncio.Event(), asyncio.Event()
    runner = asyncio.ensure_future(
        tasks._loop(rt.sessions, replace(rt.settings, job_interval_seconds=1.0), stop, wake))

    async def rounds_become(expected: list[Any]) -> None:
        for _ in range(300):
            if rounds == expected:
                return
            await asyncio.sleep(0.01)
        assert rounds == expected

    await asyncio.sleep(0.3)
    assert rounds == []  # started, but no interval has passed
    wake.set()
    await rounds_become([tasks.OUTBOX])
    await rounds_become([tasks.OUTBOX, None])  # None: every job, once the interval is up
    stop.set()
    await asyncio.wait_for(runner, 1)
