"""What tests share besides fixtures (those live in the conftest.py files): the settings every
test app runs with, a client that sends the CSRF token like a browser, accounts and sessions
straight in the database, and the SMTP sink's mailbox.

Helpers by area sit beside this module: ``accounts``, ``admin``, ``shop``, ``accessibility``,
``nginx`` (the deployed site in front of app nodes);
``browser`` is the pytest plugin of the browser tests.
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import socket
import threading
from email.message import Message
from typing import Any

from electro.models import User
from electro.services import sessions

IN_CI = os.environ.get("CI") == "true"  # there, a missing service fails instead of skipping
# Set for the PostgreSQL pass of `make test`: every test database is then a PostgreSQL copy.
PG_URL = os.environ.get("ELECTRO_TEST_DATABASE_URL", "")

# Settings every test app shares; the databases, folders and SMTP port are per test.
TEST_SETTINGS: dict[str, Any] = {
    "secret_key": "test-secret-key-not-for-production",
    # Cheap argon2 parameters keep the suite fast; production keeps the library defaults.
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "argon2_parallelism": 1,
    "job_interval_seconds": 3600.0,
    # The suite's admins sign in through helpers without a code; tests of two-factor itself
    # (tests/accounts/test_two_factor.py, the URL-map walk) set "required", the default.
    "admin_two_factor": "optional",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


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
