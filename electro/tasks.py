"""Background jobs: one runner per worker, started in before_serving and cancelled at once in
after_serving. Each round opens its own session; every job is idempotent, so one runner per
hypercorn worker is safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from electro.config import Settings
from electro.services import events

log = logging.getLogger(__name__)

Job = Callable[[AsyncSession, Settings], Awaitable[object]]


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


async def _loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    while True:
        await run_jobs_once(sessions, settings)
        await asyncio.sleep(settings.job_interval_seconds)


def install(app: Quart) -> None:
    state: dict[str, asyncio.Task[None]] = {}

    @app.before_serving
    async def start_jobs() -> None:
        rt = app.extensions["electro"]
        state["task"] = asyncio.create_task(_loop(rt.sessions, rt.settings))

    @app.after_serving
    async def stop_jobs() -> None:
        task = state.pop("task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
