"""Log-in latency with production argon2 parameters (t=3, 64 MiB, p=4).

Starts hypercorn on a temporary SQLite instance (rate limits off, plain-http cookies), creates
one account, then times 50 sequential POST /login of each kind (right password, wrong
password, unknown user: the last two must cost the same as the first) and the argon2 hash and
verification alone. Prints a table of p50/p99 in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import support

from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.migrate import upgrade
from electro.security.passwords import Passwords
from electro.services import users

RUNS = 50
PASSWORD = "lanterns over a quiet harbour"


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


def _row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    return f"| {name:<34} | {len(ms):>4} | {statistics.median(ms):>8.1f} | {p99:>8.1f} |"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="electro-bench-login-") as tmp:
        env = support.instance_env(Path(tmp), argon2_time_cost="3", argon2_memory_kib="65536",
                                   argon2_parallelism="4")
        results = asyncio.run(_prepare(env))
        with support.server(env) as port:
            support.timed_login(port, "bench", PASSWORD, 302)  # warm-up: dummy hash, caches
            kinds = {"POST /login, right password": ("bench", PASSWORD, 302),
                     "POST /login, wrong password": ("bench", "not the password", 200),
                     "POST /login, unknown user": ("nobody", PASSWORD, 200)}
            for name in kinds:
                results[name] = []
            # Interleaved, so a burst of load from elsewhere on the machine hits every kind
            # alike and the comparison between them stays fair.
            for _ in range(RUNS):
                for name, (login, password, expect) in kinds.items():
                    results[name].append(support.timed_login(port, login, password, expect))
    load = os.getloadavg()[0]  # a shared machine's load inflates every figure alike
    print(f"Log-in latency, argon2id t=3 m=64 MiB p=4, {RUNS} sequential runs each, "
          f"{os.cpu_count()} CPUs (load {load:.1f}), hypercorn 1 worker (uvloop), SQLite")
    print(f"| {'measure':<34} | {'runs':>4} | {'p50 ms':>8} | {'p99 ms':>8} |")
    print(f"|{'-' * 36}|{'-' * 6}|{'-' * 10}|{'-' * 10}|")
    for name, samples in results.items():
        print(_row(name, samples))


if __name__ == "__main__":
    main()
