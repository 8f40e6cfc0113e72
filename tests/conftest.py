"""Test fixtures: a fresh database per test (a copy of one migrated template), the app inside
``test_app()`` so serving hooks run, clients (anonymous, user, admin), the SMTP sink, Redis.

Fixtures only: what tests share besides fixtures is in ``tests.support`` (no test imports a
conftest). Tests live in one folder per area: accounts, shop, admin, platform."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from hypothesis import settings
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from electro import clock
from electro.app import create_app
from electro.db import make_engine
from electro.migrate import upgrade
from tests.support import (
    IN_CI,
    PG_URL,
    TEST_SETTINGS,
    Client,
    Mailbox,
    free_port,
    make_user,
    sign_in,
)
from tests.support.newsletters import BASE_URL as NEWSLETTER_BASE_URL

pytest_plugins = ["tests.support.browser"]

# Sized for the fuzz walk (tests/test_fuzz.py), which takes its example count from the profile:
# "ci" (the default) about 3,500 requests, under a minute on a busy 2-core machine; "long"
# (--hypothesis-profile=long) over 20,000. The other @given tests are pure and cheap at either.
settings.register_profile("ci", max_examples=700)
settings.register_profile("long", max_examples=4500)
settings.load_profile("ci")


def pytest_report_header() -> str:
    return f"electro database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (temporary files)'}"


async def _admin_execute(sql: str) -> None:
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The schema, migrated once with alembic; each test gets a copy."""
    if PG_URL:
        name = f"electro_tmpl_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
        url = _with_database(PG_URL, name)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('template') / 'electro.db'}"

    async def migrate() -> None:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    yield url
    if PG_URL:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))


@pytest.fixture
async def database_url(template_db: str, tmp_path: Path) -> AsyncIterator[str]:
    if PG_URL:
        name = f"electro_t_{uuid.uuid4().hex[:10]}"
        template = make_url(template_db).database
        await _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield _with_database(PG_URL, name)
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path / "electro.db"
        shutil.copy(make_url(template_db).database or "", path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Mailbox, int]) -> Mailbox:
    """This test's mail: the shared server's inbox, emptied first."""
    box = smtp_server[0]
    box.messages.clear()
    box.peers.clear()
    return box


@pytest.fixture
def settings_overrides(
    database_url: str, tmp_path: Path, smtp_server: tuple[Mailbox, int]
) -> dict[str, Any]:
    """Override per test by requesting this fixture and updating the dict."""
    return {
        **TEST_SETTINGS,
        "database_url": database_url,
        "instance_dir": tmp_path / "instance",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server[1],
    }


@pytest.fixture
def https_links(settings_overrides: dict[str, Any]) -> None:
    """Mailed links on an https base URL, as in production (newsletter unsubscribe links)."""
    settings_overrides["base_url"] = NEWSLETTER_BASE_URL


@pytest.fixture
async def app(settings_overrides: dict[str, Any]) -> AsyncIterator[Any]:
    application = create_app(settings_overrides)
    async with application.test_app():
        yield application


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture
def client(app: Any) -> Client:
    return Client(app)


@pytest.fixture
async def admin_client(app: Any) -> Client:
    """A client signed in as an admin (``admin``)."""
    client = Client(app)
    await sign_in(app, client, await make_user(app, "admin", is_admin=True))
    return client


@pytest.fixture
async def user_client(app: Any) -> Client:
    """A client signed in as an ordinary account (``ann``)."""
    client = Client(app)
    await sign_in(app, client, await make_user(app, "ann"))
    return client


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis URL, or skip (fail under CI=true) when the server is not reachable."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        client.close()
    yield REDIS_URL
