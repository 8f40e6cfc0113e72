"""Background jobs: one runner per worker, started while serving and stopped before the engine
is disposed. Each round opens its own session; every job is idempotent, so one runner per
hypercorn worker is safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from quart import current_app
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from electro.config import Settings
from electro.services import events

log = logging.getLogger(__name__)

Job = Callable[[AsyncSession, Settings], Awaitable[object]]
STOP_GRACE_SECONDS = 2.0


async def event_retention(db: AsyncSession, settings: Settings) -> int:
    return await events.apply_retention(db, settings.event_retention_days)


JOBS: list[Job] = [event_retention]


async def run_jobs_once(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    for job in JOBS:
        try:
            async with sessions.begin() as db:
                await job(db, settings)
        except Exception:  # one failing job must not stop the others or the loop
            log.exception("background job %s failed", job.__name__)


async def _loop(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await run_jobs_once(sessions, settings)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.job_interval_seconds)
        except TimeoutError:
            pass


async def run_while_serving() -> AsyncIterator[None]:
    """Quart ``while_serving`` hook: start the runner, and on shutdown let the current round
    finish (a transaction is never cut mid-query), cancelling only if it overruns the grace."""
    rt = current_app.extensions["electro"]
    stop = asyncio.Event()
    task = asyncio.create_task(_loop(rt.sessions, rt.settings, stop))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("background jobs overran the shutdown grace and were cancelled")
