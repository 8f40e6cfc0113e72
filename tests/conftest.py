"""Test harness: a fresh database per test (a copy of one migrated template), the app inside
``test_app()`` so serving hooks run, and a client that sends the CSRF token like a browser."""

from __future__ import annotations

import asyncio
import email
import os
import re
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import Message
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
from electro.models import User
from electro.services import sessions
from tests.environment import IN_CI, TEST_SETTINGS, free_port

pytest_plugins = ["tests.browser"]
PG_URL = os.environ.get("ELECTRO_TEST_DATABASE_URL", "")

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


class Mailbox:
    """Messages a real SMTP server (aiosmtpd, in its own thread) received from aiosmtplib."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.peers: list[Any] = []  # the client address of each message's connection
        self._lock = threading.Lock()

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
            self.peers.append(session.peer)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, count: int = 1) -> list[Message]:
        """The first ``count`` mails to ``address``, waiting (5 s at most) for the outbox."""
        try:
            async with asyncio.timeout(5):
                while len(self.to(address)) < count:  # noqa: ASYNC110 - another thread fills it
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(
                f"{count} mail(s) to {address} not received; got {self.to(address)}"
            ) from None
        return self.to(address)[:count]


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


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


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
async def app(settings_overrides: dict[str, Any]) -> AsyncIterator[Any]:
    application = create_app(settings_overrides)
    async with application.test_app():
        yield application


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


class Client:
    """The Quart test client, plus the CSRF token a browser would echo back."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.raw = app.test_client()
        self.token = ""

    async def refresh_token(self) -> str:
        page = await (await self.raw.get("/")).get_data(as_text=True)
        match = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
        assert match, "every page carries the CSRF token"
        self.token = match.group(1)
        return self.token

    async def get(self, path: str, htmx: bool = False, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return await self.raw.get(path, headers=headers, **kwargs)

    async def post(
        self, path: str, form: dict[str, Any] | None = None, htmx: bool = False, **kwargs: Any
    ) -> Any:
        if not self.token:
            await self.refresh_token()
        headers = kwargs.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        form = {"csrf_token": self.token, **(form or {})}
        return await self.raw.post(path, form=form, headers=headers, **kwargs)


@pytest.fixture
def client(app: Any) -> Client:
    return Client(app)


TEST_PASSWORD = "correct horse battery staple"


async def make_user(
    app: Any, username: str = "ann", *, email: str | None = None, is_admin: bool = False,
    is_active: bool = True, password: str = TEST_PASSWORD,
) -> User:
    """An account straight in the database (argon2id hash of ``password``)."""
    rt = app.extensions["electro"]
    user = User(username=username, email=email or f"{username.lower()}@example.com",
                password_hash=await rt.passwords.hash(password), is_admin=is_admin,
                is_active=is_active)
    async with rt.sessions.begin() as db:
        db.add(user)
    return user


async def sign_in(app: Any, client: Client, user: User, user_agent: str = "pytest") -> str:
    """Give ``client`` a live session of ``user`` (as a log-in would); returns the clear id."""
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        token = await sessions.start_session(db, rt.settings, user, "<local>", user_agent)
    auth = app.extensions["QUART_AUTH"][0]
    client.raw.set_cookie(
        auth.cookie_domain, auth.cookie_name, auth.dump_token(token, app=app),
        path=auth.cookie_path, domain=auth.cookie_domain, secure=auth.cookie_secure,
        httponly=auth.cookie_http_only, samesite=auth.cookie_samesite,
    )
    client.token = ""  # a new session gets a new CSRF token at log-in
    return token


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
