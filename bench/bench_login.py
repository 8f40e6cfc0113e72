"""Log-in latency with production argon2 parameters (t=3, 64 MiB, p=4).

Starts hypercorn on a temporary SQLite instance (rate limits off, plain-http cookies), creates
one account, then times 50 sequential POST /login of each kind (right password, wrong
password, unknown user: the last two must cost the same as the first) and the argon2 hash and
verification alone. Prints a table of p50/p99 in milliseconds.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.migrate import upgrade
from electro.security.passwords import Passwords
from electro.services import users

RUNS = 50
PASSWORD = "lanterns over a quiet harbour"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare(env: dict[str, str]) -> dict[str, list[float]]:
    """Migrate the database, add the account, and time the hash functions in-process."""
    settings = load_settings(env)
    engine = make_engine(settings.database)
    await upgrade(engine)
    passwords = Passwords(settings)
    hashes, verifies = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        password_hash = await passwords.hash(PASSWORD)
        hashes.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert await passwords.verify(password_hash, PASSWORD)
        verifies.append(time.perf_counter() - start)
    async with make_sessionmaker(engine).begin() as db:
        await users.create_user(db, passwords, settings, username="bench",
                                email="bench@example.com", password=PASSWORD, actor="bench")
    await engine.dispose()
    return {"argon2 hash (in-process)": hashes, "argon2 verify (in-process)": verifies}


def _wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("hypercorn exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("hypercorn did not answer /healthz within 30 s")


def _timed_login(port: int, login: str, password: str, expect: int) -> float:
    """A fresh browser: GET the form (cookie and CSRF token), then time only the POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match or not cookie:
        raise SystemExit("the login form carries no CSRF token or session cookie")
    body = urlencode({"csrf_token": match.group(1), "login": login, "password": password})
    start = time.perf_counter()
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != expect:
        raise SystemExit(f"POST /login as {login!r} answered {response.status}, not {expect}")
    return elapsed


def _row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    return f"| {name:<34} | {len(ms):>4} | {statistics.median(ms):>8.1f} | {p99:>8.1f} |"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="electro-bench-login-") as tmp:
        port = _free_port()
        env = {**os.environ, "ELECTRO_INSTANCE_DIR": str(Path(tmp) / "instance"),
               "ELECTRO_DATABASE_URL": "", "ELECTRO_RATE_LIMITS": "0",
               "ELECTRO_COOKIE_SECURE": "0", "ELECTRO_SECRET_KEY": "bench-only-secret",
               "ELECTRO_ARGON2_TIME_COST": "3", "ELECTRO_ARGON2_MEMORY_KIB": "65536",
               "ELECTRO_ARGON2_PARALLELISM": "4", "ELECTRO_SMTP_HOST": ""}
        Path(env["ELECTRO_INSTANCE_DIR"]).mkdir()
        results = asyncio.run(_prepare(env))
        log = (Path(tmp) / "hypercorn.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "electro.asgi:app", "--bind",
             f"127.0.0.1:{port}"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(port, server)
            _timed_login(port, "bench", PASSWORD, 302)  # warm-up: dummy hash, caches
            kinds = {"POST /login, right password": ("bench", PASSWORD, 302),
                     "POST /login, wrong password": ("bench", "not the password", 200),
                     "POST /login, unknown user": ("nobody", PASSWORD, 200)}
            for name in kinds:
                results[name] = []
            # Interleaved, so a burst of load from elsewhere on the machine hits every kind
            # alike and the comparison between them stays fair.
            for _ in range(RUNS):
                for name, (login, password, expect) in kinds.items():
                    results[name].append(_timed_login(port, login, password, expect))
        finally:
            server.terminate()
            server.wait(timeout=10)
            log.close()
    load = os.getloadavg()[0]  # a shared machine's load inflates every figure alike
    print(f"Log-in latency, argon2id t=3 m=64 MiB p=4, {RUNS} sequential runs each, "
          f"{os.cpu_count()} CPUs (load {load:.1f}), hypercorn 1 worker, SQLite")
    print(f"| {'measure':<34} | {'runs':>4} | {'p50 ms':>8} | {'p99 ms':>8} |")
    print(f"|{'-' * 36}|{'-' * 6}|{'-' * 10}|{'-' * 10}|")
    for name, samples in results.items():
        print(_row(name, samples))


if __name__ == "__main__":
    main()
