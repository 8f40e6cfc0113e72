"""Background jobs: one runner per worker, started while serving and stopped before the engine
is disposed. Each job opens its own transactions; every job is idempotent, so one runner per
hypercorn worker is safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from quart import current_app
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from electro.config import Settings
from electro.services import events, mail, sessions

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
    return await events.apply_retention(db, settings.event_retention_days)


JOBS: list[Job] = [
    mail.deliver_due,
    in_transaction(sessions.purge_expired),
    in_transaction(event_retention),
]


async def run_jobs_once(sessions: Sessions, settings: Settings) -> None:
    for job in JOBS:
        try:
            await job(sessions, settings)
        except Exception:  # one failing job must not stop the others or the loop
            log.exception("background job %s failed", getattr(job, "__name__", job))


async def _loop(
    sessions: Sessions, settings: Settings, stop: asyncio.Event, wake: asyncio.Event
) -> None:
    while not stop.is_set():
        wake.clear()
        await run_jobs_once(sessions, settings)
        # Sleep until the interval passes, a request queues mail (wake), or shutdown (stop).
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=settings.job_interval_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


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
