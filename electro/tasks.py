"""Background jobs: one runner per worker, started while serving and stopped before the engine
is disposed. Each job opens its own transactions; every job is idempotent, so one runner per
hypercorn worker is safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import timedelta

from quart import current_app
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from electro.config import Settings
from electro.services import (
    accounts,
    basket,
    blocking,
    events,
    keys,
    mail,
    newsletters,
    orders,
    recommendations,
    recovery,
    registration,
    sessions,
)

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
Job = Callable[[Sessions, Settings], Awaitable[object]]
STOP_GRACE_SECONDS = 5.0


def in_transaction(work: Callable[[AsyncSession, Settings], Awaitable[object]]) -> Job:
    """A job made of one unit of work in one transaction."""

    async def job(sessions: Sessions, settings: Settings) -> object:
        async with sessions.begin() as db:
            return await work(db, settings)

    job.__name__ = work.__name__
    return job


async def event_retention(db: AsyncSession, settings: Settings) -> int:
    """Events, and the product views recommendations learn from, older than the retention."""
    days = settings.event_retention_days
    return (await events.apply_retention(db, days)
            + await recommendations.purge_old_views(db, days))


async def rebuild_recommendations(db: AsyncSession, settings: Settings) -> bool:
    every = timedelta(minutes=settings.recommend_rebuild_minutes)
    return await recommendations.rebuild(db, every)


# What a wake-up (a request queued mail, or a newsletter started) runs: requests composed,
# then everything sent, newsletters within their rate cap.
OUTBOX: list[Job] = [
    mail.composing({"reset": recovery.reset_mail, "activate": registration.activation_mail}),
    mail.deliver_due,
    newsletters.send_due,
]
JOBS: list[Job] = [
    *OUTBOX,
    in_transaction(sessions.purge_expired),
    in_transaction(event_retention),
    in_transaction(keys.purge_expired_keys),
    in_transaction(blocking.lift_due_blocks),
    in_transaction(accounts.purge_stale_failures),
    in_transaction(basket.purge_abandoned),
    in_transaction(orders.cancel_unpaid),
    in_transaction(rebuild_recommendations),
]


async def run_jobs_once(
    sessions: Sessions, settings: Settings, jobs: list[Job] | None = None
) -> None:
    for job in JOBS if jobs is None else jobs:
        try:
            await job(sessions, settings)
        except Exception:  # one failing job must not stop the others or the loop
            log.exception("background job %s failed", getattr(job, "__name__", job))


async def _loop(
    sessions: Sessions, settings: Settings, stop: asyncio.Event, wake: asyncio.Event
) -> None:
    """Every job once per interval (the first round one interval after start); in between, a
    wake-up (a request queued mail) runs the outbox alone, so keys arrive at once."""
    loop = asyncio.get_running_loop()
    next_round = loop.time() + settings.job_interval_seconds
    while not stop.is_set():
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=max(0.0, next_round - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if stop.is_set():
            return
        wake.clear()
        if loop.time() >= next_round:
            await run_jobs_once(sessions, settings)
            next_round = loop.time() + settings.job_interval_seconds
        else:
            await run_jobs_once(sessions, settings, OUTBOX)


async def run_while_serving() -> AsyncGenerator[None, None]:
    """Quart ``while_serving`` hook: start the runner, and on shutdown let the current round
    finish (a transaction is never cut mid-query), cancelling only if it overruns the grace."""
    rt = current_app.extensions["electro"]
    stop = asyncio.Event()
    rt.wake_jobs = asyncio.Event()
    task = asyncio.create_task(_loop(rt.sessions, rt.settings, stop, rt.wake_jobs))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("background jobs overran the shutdown grace and were cancelled")
        rt.wake_jobs = None
