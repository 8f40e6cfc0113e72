"""Two machines behind one address (issue 12): two app nodes, each with its own instance
folder as two hosts would have, sharing one PostgreSQL, one Redis and a backup folder, behind
nginx with ELECTRO_TRUSTED_PROXY_HOPS=1. Nothing may depend on which node a request reaches.

nginx serves the README's site (deploy/nginx-site.conf), balancing round robin, and names the
node that answered in an ``X-Node`` header (added for this test only), so each check can show
that both nodes took part."""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from sqlalchemy import select

from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.models import Category, Event, Product
from electro.security.passwords import Passwords
from electro.services import users
from tests.support import IN_CI, PG_URL, TEST_PASSWORD, TEST_SETTINGS, Mailbox, free_port, nginx

pytestmark = pytest.mark.two_nodes
ELECTRO = Path(sys.executable).parent / "electro"
REDIS_DB = 1  # this test's own Redis database, emptied first: limits start from nothing


@dataclass
class Cluster:
    url: str
    database_url: str
    nodes: list[str] = field(default_factory=list)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer /healthz:\n{log.read_text()[-3000:]}")


@pytest.fixture
def cluster(
    database_url: str, tmp_path: Path, redis_url: str, smtp_server: tuple[Mailbox, int]
) -> Iterator[Cluster]:
    if not PG_URL:
        pytest.skip("two nodes share PostgreSQL: runs in the PostgreSQL pass of make test")
    if not Path(nginx.NGINX).exists():
        reason = "nginx is not installed (scripts/test-services.sh installs it)"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)
    shared_redis = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(shared_redis).flushdb()
    proxy_port, ports = free_port(), [free_port(), free_port()]
    url = f"http://127.0.0.1:{proxy_port}"
    common = {
        **{f"ELECTRO_{k.upper()}": str(v) for k, v in TEST_SETTINGS.items()},
        "ELECTRO_DATABASE_URL": database_url, "ELECTRO_REDIS_URL": shared_redis,
        "ELECTRO_BACKUP_DIR": str(tmp_path / "shared-backups"),
        "ELECTRO_TRUSTED_PROXY_HOPS": "1", "ELECTRO_COOKIE_SECURE": "0", "ELECTRO_BASE_URL": url,
        "ELECTRO_SMTP_HOST": "127.0.0.1", "ELECTRO_SMTP_PORT": str(smtp_server[1]),
        "ELECTRO_JOB_INTERVAL_SECONDS": "1", "ELECTRO_SEARCH_CACHE_SECONDS": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n, port in enumerate(ports):
            log = tmp_path / f"node{n}.log"
            env = {**os.environ, **common, "ELECTRO_INSTANCE_DIR": str(tmp_path / f"node{n}")}
            with log.open("wb") as out:
                processes.append(subprocess.Popen(
                    [ELECTRO, "serve", "--bind", f"127.0.0.1:{port}"], env=env, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True))
            _wait_healthy(f"http://127.0.0.1:{port}", processes[-1], log)
        prefix = tmp_path / "nginx"
        processes.append(nginx.start(prefix, [f"127.0.0.1:{p}" for p in ports], proxy_port,
                                     http_extra="add_header X-Node $upstream_addr always;"))
        _wait_healthy(url, processes[-1], prefix / "error.log")
        yield Cluster(url, database_url, [f"127.0.0.1:{p}" for p in ports])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


class Browser:
    """A browser's cookies, through nginx; every answer says which node gave it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect)
        self.token = ""

    def open(self, path: str, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, str, dict[str, str]]:
        """(status, body, node, headers)."""
        data = None if form is None else urlencode(
            {"csrf_token": self.token, **form}).encode()
        request = urllib.request.Request(self.url + path, data=data,  # noqa: S310 - loopback
                                         headers=headers or {})
        try:
            with self.opener.open(request, timeout=60) as response:
                body, status, got = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            body, status, got = error.read(), error.code, error.headers
        text = body.decode(errors="replace")
        if match := re.search(r'name="csrf_token" value="([^"]+)"', text):
            self.token = match.group(1)
        return status, text, got.get("X-Node", ""), dict(got.items())

    def log_in(self, login: str) -> str:
        self.open("/login")
        status, _, node, _ = self.open("/login", {"login": login, "password": TEST_PASSWORD})
        assert status == 302
        return node


async def _seed(database_url: str) -> int:
    """An admin, a shopper and one product; returns the product's id."""
    settings = load_settings(environ={}, overrides={**TEST_SETTINGS,
                                                    "database_url": database_url})
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            passwords = Passwords(settings)
            for name in ("admin", "ann"):
                await users.create_user(db, passwords, settings, username=name,
                                        email=f"{name}@example.com", password=TEST_PASSWORD,
                                        is_admin=name == "admin", actor="test")
            category = Category(name="Lamps")
            db.add(category)
            await db.flush()
            product = Product(name="Lantern", company="Acme", category_id=category.id,
                              price_cents=1999, stock=5)
            db.add(product)
            await db.flush()
            return product.id
    finally:
        await engine.dispose()


async def _latest_event(database_url: str, type_: str) -> Event:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            event = await db.scalar(select(Event).where(Event.type == type_)
                                    .order_by(Event.id.desc()).limit(1))
            assert event is not None, type_
            return event
    finally:
        await engine.dispose()


def _both_nodes(browser: Browser, path: str) -> list[tuple[int, str]]:
    """GET ``path`` until both nodes have answered (round robin: two or three requests)."""
    answers: dict[str, int] = {}
    for _ in range(4):
        status, _, node, _ = browser.open(path)
        answers[node] = status
        if len(answers) == 2:
            return sorted((status, node) for node, status in answers.items())
    raise AssertionError(f"nginx did not alternate: {answers}")


async def test_nothing_depends_on_the_node(cluster: Cluster, mailbox: Mailbox) -> None:
    product_id = await _seed(cluster.database_url)
    shopper, admin = Browser(cluster.url), Browser(cluster.url)

    # A session started on one node works on the other; logging out on one ends it on both.
    shopper.log_in("ann")
    assert [status for status, _ in _both_nodes(shopper, "/account")] == [200, 200]
    shopper.open("/account")
    assert shopper.open("/logout", {})[0] == 302
    assert [status for status, _ in _both_nodes(shopper, "/account")] == [302, 302]

    # A product edited through one node shows in search served by the other within the
    # search cache's staleness (1 s here).
    admin.log_in("admin")
    admin.open(f"/admin/tables/products/{product_id}/edit")
    status, *_ = admin.open(f"/admin/tables/products/{product_id}/edit",
                            {"version": "1", "name": "Zephyr Lantern"})
    assert status == 303
    seen_on: set[str] = set()
    deadline = time.monotonic() + 5
    while seen_on != set(cluster.nodes) and time.monotonic() < deadline:
        status, body, node, _ = admin.open("/search?q=zephyr", headers={"HX-Request": "true"})
        if "Zephyr" in body:
            seen_on.add(node)
        await asyncio.sleep(0.1)
    assert seen_on == set(cluster.nodes)

    # A backup made on one node is listed, downloadable and restorable from the other.
    admin.open("/admin/backups")
    status, body, *_ = admin.open("/admin/backups/create", {})
    assert status == 200 and "created" in body
    filename = re.search(r"Backup (electro-backup-\S+\.zip) created", body)
    assert filename
    for status, _ in _both_nodes(admin, "/admin/backups"):
        assert status == 200
    backup_id = re.search(r'/admin/backups/(\d+)/download', admin.open("/admin/backups")[1])
    assert backup_id
    downloads = [admin.open(f"/admin/backups/{backup_id.group(1)}/download") for _ in range(2)]
    assert [status for status, *_ in downloads] == [200, 200]
    assert {node for _, _, node, _ in downloads} == set(cluster.nodes)
    admin.open("/admin/backups")
    status, body, *_ = admin.open(f"/admin/backups/{backup_id.group(1)}/restore",
                                  {"confirm": "RESTORE"})
    assert status == 200 and "Restored" in body, body[-500:]

    # Each mail goes out once, though both nodes run the outbox every second.
    reset = Browser(cluster.url)
    reset.open("/password/reset")
    assert reset.open("/password/reset", {"email": "ann@example.com"})[0] == 200
    await mailbox.wait_for("ann@example.com")
    await asyncio.sleep(2.5)
    assert len(mailbox.to("ann@example.com")) == 1

    # Client addresses come from the proxy; one a client sends cannot spoof them past it.
    liar = Browser(cluster.url)
    liar.open("/login")
    liar.open("/login", {"login": "ann", "password": "wrong"},
              headers={"X-Forwarded-For": "203.0.113.9"})
    assert (await _latest_event(cluster.database_url, "authn_login_fail")).ip == "127.0.0.1"

    # Rate limits are exact across both nodes: 10 a minute means 10, not 20.
    asker = Browser(cluster.url)
    asker.open("/activate")
    answers = [asker.open("/activate", {"email": f"n{n}@example.com"}) for n in range(14)]
    assert [status for status, *_ in answers].count(200) == 10
    assert {node for status, _, node, _ in answers if status == 200} == set(cluster.nodes)
    assert [status for status, *_ in answers][10:] == [429] * 4
