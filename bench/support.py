"""What the server benchmarks share: a temporary instance, hypercorn in its own process group,
and a real browser-like log-in (form GET for the cookie and CSRF token, then the POST)."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlencode

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def instance_env(folder: Path, **settings: str) -> dict[str, str]:
    """A SQLite instance in ``folder`` served over plain http, rate limits off (every request
    comes from one address), mail to files; ``settings`` are more ELECTRO_* values."""
    env = {**os.environ, "ELECTRO_INSTANCE_DIR": str(folder), "ELECTRO_DATABASE_URL": "",
           "ELECTRO_RATE_LIMITS": "0", "ELECTRO_COOKIE_SECURE": "0",
           "ELECTRO_SECRET_KEY": "bench-only-secret", "ELECTRO_SMTP_HOST": ""}
    env.update({f"ELECTRO_{name.upper()}": value for name, value in settings.items()})
    return env


PG_SERVER = ["-h", "127.0.0.1", "-p", "5432", "-U", "electro"]  # createdb/psql arguments
# The server the in-process benches (admin, backup, newsletter) make a scratch database on.
PG_URL = os.environ.get("ELECTRO_BENCH_PG_URL", "postgresql+asyncpg://electro@127.0.0.1:5432/test")


@asynccontextmanager
async def scratch_postgresql() -> AsyncIterator[str | None]:
    """A fresh database on the server at PG_URL for the block, dropped afterwards; None when
    no server answers there (the bench then runs on SQLite only, and says so)."""
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"electro_bench_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # any failure to connect or create means: not reachable
            print(f"(PostgreSQL not reachable at {PG_URL}: SQLite only; {type(exc).__name__})")
            yield None
            return
        try:
            yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@contextmanager
def database(kind: str) -> Iterator[str]:
    """The ELECTRO_DATABASE_URL of a fresh database until the block ends: "" (SQLite in the
    instance folder) or a PostgreSQL database of its own on 127.0.0.1:5432 (user electro, trust
    auth), dropped afterwards."""
    if kind == "sqlite":
        yield ""
        return
    name = f"electro_bench_{os.getpid()}"
    subprocess.run(["createdb", *PG_SERVER, name], check=True)
    try:
        yield f"postgresql+asyncpg://electro@127.0.0.1:5432/{name}"
    finally:
        subprocess.run(["dropdb", *PG_SERVER, "--force", name], check=True)


def electro(env: dict[str, str], *args: str) -> None:
    """Run an ``electro`` command on the instance (init-db, seed-demo, create-admin...)."""
    subprocess.run([BIN / "electro", *args], env=env, check=True, capture_output=True)


@contextmanager
def server(env: dict[str, str], workers: int = 1) -> Iterator[int]:
    """``electro serve`` on a free port until the block ends; yields the port."""
    port = free_port()
    log = Path(env["ELECTRO_INSTANCE_DIR"]) / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [BIN / "electro", "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_ready(port, proc, log)
        yield port
    except BaseException:
        print(f"server log (tail):\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers, nothing else
        proc.wait(timeout=15)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server did not answer /healthz within 30 s:\n{log.read_text()[-3000:]}")


def timed_get(port: int, path: str) -> float:
    """One GET on a new connection, timed; it must answer 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return elapsed


def timed_form_post(port: int, path: str, fields: dict[str, str], expect: int) -> float:
    """A fresh browser: GET the form page (cookie and CSRF token), then time only the POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    page = response.read().decode()
    cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match or not cookie:
        raise RuntimeError(f"{path} carries no CSRF token or session cookie")
    body = urlencode({"csrf_token": match.group(1), **fields})
    return timed_post(port, path, cookie, body, expect, conn=conn)


def timed_post(port: int, path: str, cookie: str, body: str, expect: int,
               headers: dict[str, str] | None = None,
               conn: http.client.HTTPConnection | None = None) -> float:
    """One url-encoded POST, timed (on ``conn`` if given, else a new connection), closed
    after; it must answer ``expect``."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, **(headers or {})})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != expect:
        raise RuntimeError(f"POST {path} answered {response.status}, not {expect}")
    return elapsed


def signed_in_cookie(port: int, login: str, password: str, attempts: int = 5) -> str:
    """A browser's Cookie header after a real log-in (form GET, then the POST), tried again
    after a 503 (on a loaded machine SQLite's write lock can take longer than busy_timeout)."""
    for _ in range(attempts - 1):
        try:
            return _log_in(port, login, password)
        except RuntimeError as exc:
            if "503" not in str(exc):
                raise
            time.sleep(2)
    return _log_in(port, login, password)


def _log_in(port: int, login: str, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookies = _cookies(response, {})
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("/login carries no CSRF token")
    conn.request("POST", "/login", body=urlencode(
        {"csrf_token": match.group(1), "login": login, "password": password}),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 302:
        raise RuntimeError(f"log-in answered {response.status}")
    return "; ".join(f"{k}={v}" for k, v in _cookies(response, cookies).items())


def _cookies(response: http.client.HTTPResponse, known: dict[str, str]) -> dict[str, str]:
    """``known`` updated with the cookies ``response`` sets (name=value only)."""
    for header in response.msg.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        known = {**known, name.strip(): value}
    return known


def timed_login(port: int, login: str, password: str, expect: int) -> float:
    return timed_form_post(port, "/login", {"login": login, "password": password}, expect)


@contextmanager
def login_load(port: int, login: str, password: str, per_second: float) -> Iterator[list[float]]:
    """Successful log-ins at a steady rate from another thread of this (non-server) process
    while the block runs; yields the list their latencies are appended to."""
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[Exception] = []

    def run() -> None:
        interval = 1 / per_second
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                latencies.append(timed_login(port, login, password, 302))
                next_at += interval
                stop.wait(max(0.0, next_at - time.monotonic()))
        except Exception as exc:  # reported by the caller's thread below
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        thread.join(timeout=30)
    if failures:
        raise failures[0]
