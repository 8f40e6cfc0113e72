"""The shop through nginx (issue 12): two app nodes beside one node, behind the same nginx.

As README's "Scaling out" deploys it: nginx with deploy/nginx-site.conf in front, each node with
its own ELECTRO_INSTANCE_DIR, one PostgreSQL database (created for the run on 127.0.0.1:5432,
user electro, trust auth, dropped afterwards), one Redis (database 2, emptied first),
ELECTRO_TRUSTED_PROXY_HOPS=1. The same worker count either way (WORKERS in all), so the table
shows what spreading them over nodes costs. bench_shop's pages (seeded with 100,000 demo
products) at 8 and 32 connections, each beside the bare route ``/healthz`` through the same
nginx, measured in the same run.

Run: ``.venv/bin/python bench/bench_nodes.py`` (about 3 minutes; needs nginx, PostgreSQL and
Redis, which ``make bench`` prepares with scripts/test-services.sh).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import bench_shop
import redis
import support

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import nginx

REDIS_URL = "redis://127.0.0.1:6379/2"
WORKERS = 2  # in all: one node with 2, or two nodes with 1 each
CONNECTIONS = (8, 32)
SECONDS = 3
BARE = "bare route /healthz"
SETUPS = {"one node": [WORKERS], "two nodes": [WORKERS // 2] * 2}


def _pages() -> dict[str, tuple[list[str], dict[str, str]]]:
    """bench_shop's pages, its baseline and the cold search (a cache-filling load) left out;
    the bare route first."""
    pages = {name: spec for name, spec in bench_shop.shop_routes(random.Random(11)).items()
             if name != bench_shop.BASELINE and "cold" not in name}
    return {BARE: (["/healthz"], {}), **pages}



@contextmanager
def behind_nginx(folder: Path, env: dict[str, str], workers: list[int]) -> Iterator[str]:
    """Nodes with ``workers`` each (own instance folders, the same database and Redis) behind
    nginx; yields nginx's base URL."""
    with ExitStack() as stack:
        ports = []
        for n, count in enumerate(workers):
            instance = folder / f"node{n}"
            instance.mkdir()
            ports.append(stack.enter_context(support.server(
                {**env, "ELECTRO_INSTANCE_DIR": str(instance)}, count)))
        port = support.free_port()
        proxy = nginx.start(folder / "nginx", [f"127.0.0.1:{p}" for p in ports], port)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base, proxy)
            yield base
        finally:
            proxy.terminate()
            proxy.wait(timeout=15)


def _wait(base: str, proxy: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proxy.poll() is not None:
            sys.exit("nginx exited: see its error.log")
        try:
            support.timed_get(int(base.rsplit(":", 1)[1]), "/healthz")
            return
        except (OSError, RuntimeError):  # not listening yet, or a 502 while it starts
            time.sleep(0.1)
    sys.exit("nginx did not answer within 15 s")


def main() -> None:
    if not Path(nginx.NGINX).exists():
        sys.exit("nginx is not installed: scripts/test-services.sh installs it")
    redis.Redis.from_url(REDIS_URL).flushdb()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="electro-nodes-"))
    rows = []
    try:
        with support.database("postgresql") as url:
            env = support.instance_env(tmp, database_url=url, redis_url=REDIS_URL,
                                       trusted_proxy_hops="1")
            support.electro(env, "init-db")
            support.electro(env, "seed-demo", "--products", str(bench_shop.PRODUCTS))
            print(f"seeded {bench_shop.PRODUCTS:,} products on PostgreSQL in "
                  f"{time.monotonic() - started:.0f} s", flush=True)
            scripts = {page: bench_shop.load_script(tmp / f"page{n}.lua", *spec)
                       for n, (page, spec) in enumerate(_pages().items())}
            for setup, workers in SETUPS.items():
                folder = tmp / setup.replace(" ", "-")
                folder.mkdir()
                with behind_nginx(folder, env, workers) as base:
                    for script in scripts.values():  # warm up every worker
                        bench_shop.drive(base, script, 8, 1)
                    for connections in CONNECTIONS:
                        results = {page: bench_shop.drive(base, script, connections, SECONDS)
                                   for page, script in scripts.items()}
                        for page, result in results.items():
                            rows.append((page, setup, workers, connections, result,
                                         result["rps"] / results[BARE]["rps"]))
                print(".", end="", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n\nPostgreSQL + Redis behind nginx, {bench_shop.PRODUCTS:,} products, "
          f"{os.cpu_count()} cores\n")
    print("| page | setup | conns | req/s | p50 ms | p99 ms | vs bare | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for page, setup, workers, connections, r, ratio in sorted(
            rows, key=lambda row: (row[3], list(scripts).index(row[0]), row[1] != "one node")):
        nodes = " + ".join(map(str, workers))
        print(f"| {page} | {setup} ({nodes} workers) | {connections} | {r['rps']:,.0f} | "
              f"{r['p50']:.2f} | {r['p99']:.1f} | {ratio:.2f} | {r['errors']:.0f} |")
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
