"""Web layer helpers shared by every blueprint: the request's DB session, page-or-fragment.

Who commits (one rule): a request has one session, ``db()``. ``finish_db`` commits it when the
response is below 400 and rolls it back otherwise; services never commit or roll it back. Work
that must not share the request's fate goes through ``own_transaction()``, which commits when its
block ends, and each use says why (an event about a refusal that the 4xx rolls back, an error
event, a refused session's ending, a streamed export that outlives the request). It ends the
request's transaction first (rolled back: what must stick is written inside the block), since on
SQLite a writing request holds the write lock its block would wait for. Work that replaces tables
on connections of its own (backup, restore) ends it the same way, through ``own_connections()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from quart import Response, current_app, g, render_template, request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from electro.config import Settings
from electro.db import WRITES, writing
from electro.security.passwords import Passwords
from electro.services.events import Origin
from electro.services.mail import QUEUED_FLAG
from electro.services.view_buffer import ViewBuffer
from electro.services.worker_cache import WorkerCache


@dataclass
class Runtime:
    """What the app holds for its lifetime; engine and sessions exist only while serving."""

    settings: Settings
    passwords: Passwords
    worker_cache: WorkerCache
    view_buffer: ViewBuffer
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    wake_jobs: asyncio.Event | None = None  # set after a commit that queued mail


class Explained:
    """Mixed into an HTTP error whose description is written for the person who sent the
    request (the error page shows it; other errors get a generic wording)."""


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/"  # the JSON API: Bearer tokens only, never cookies; problem+json errors


# The newsletter's unsubscribe links (RFC 8058): their signed token is the credential, so a
# mail client's one-click POST, which has no cookie or CSRF token, is accepted.
ONE_CLICK_PREFIX = "/newsletter/unsubscribe/"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["electro"]
    return rt


def db() -> AsyncSession:
    """The request's one AsyncSession, committed below 400 and rolled back otherwise."""
    if "db" not in g:
        sessions = runtime().sessions
        if sessions is None:
            raise RuntimeError("the database is opened in before_serving")
        # A request that may change something waits for the write lock up front (see WRITES).
        g.db = sessions(info={WRITES: request.method not in SAFE_METHODS})
    session: AsyncSession = g.db
    return session


async def own_connections() -> AsyncEngine:
    """The engine, for work on connections of its own (backup, restore), once the request's
    transaction has ended: its locks would hold that work up (on SQLite a writing request holds
    the database; on PostgreSQL even a read holds table locks)."""
    request_db: AsyncSession | None = g.get("db")
    if request_db is not None:
        await _end(request_db)
    engine = runtime().engine
    if engine is None:
        raise RuntimeError("the database is opened in before_serving")
    return engine


async def _end(request_db: AsyncSession) -> None:
    """Roll the request's transaction back now, not after the response. Loaded objects are
    detached first so pages can still read them (``account.user``)."""
    request_db.expunge_all()
    await request_db.rollback()


def own_transaction(*, writes: bool = True) -> AbstractAsyncContextManager[AsyncSession]:
    """A session and transaction of their own, committed when the block ends (rolled back if
    it raises), whatever becomes of the request's transaction, which is ended first (see the
    module's rule). It takes the write lock up front like an unsafe request (see WRITES);
    ``writes=False`` for a long read, which must not hold writers up. The app's session
    factory and the request's session are taken at the call, so a streamed body can enter it
    after the request has ended (its session is then closed, and ending it does nothing)."""
    sessions = runtime().sessions
    if sessions is None:
        raise RuntimeError("the database is opened in before_serving")
    return _begun(sessions, g.get("db"), writes)


@asynccontextmanager
async def _begun(
    sessions: async_sessionmaker[AsyncSession], request_db: AsyncSession | None, writes: bool
) -> AsyncIterator[AsyncSession]:
    if request_db is not None:
        await _end(request_db)
    if writes:
        async with writing(sessions) as session:
            yield session
    else:
        async with sessions.begin() as session:
            yield session


async def finish_db(response: Response) -> Response:
    session: AsyncSession | None = g.pop("db", None)
    if session is None:
        return response
    try:
        if response.status_code < 400:
            await session.commit()
            if session.info.get(WRITES):  # may have changed the catalogue: show it at once
                runtime().worker_cache.expect_change()
            wake = runtime().wake_jobs
            if session.info.pop(QUEUED_FLAG, False) and wake is not None:
                wake.set()  # send the mail now, not at the next round
        else:
            await session.rollback()
    finally:
        # A disconnecting client cancels the task; the close must still run to the end.
        await asyncio.shield(session.close())
    return response


async def close_db(_exc: BaseException | None) -> None:
    session: AsyncSession | None = g.pop("db", None)
    if session is not None:
        await asyncio.shield(session.close())


def is_htmx() -> bool:
    """A fragment is wanted: htmx sent it, and it is neither restoring history nor following a
    boosted link (both swap the whole body, so they need the page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
        and request.headers.get("HX-Boosted") != "true"
    )


async def render(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """The whole page, or for htmx only the fragment that the page includes."""
    body = await render_template(fragment if is_htmx() else page, **context)
    response = Response(body, status)
    response.headers.add("Vary", "HX-Request")
    return response


def client_ip() -> str:
    return request.remote_addr or ""


def client_identity() -> str:
    """Who is asking, for per-client counting: the account when signed in (``g.account``, set
    by the guards before the view), else the address."""
    account = g.get("account")
    return f"user:{account.user.id}" if account is not None else f"ip:{client_ip()}"


def origin() -> Origin:
    """Where the request came from, for the events the services record."""
    return {"ip": client_ip(), "path": request.path}
