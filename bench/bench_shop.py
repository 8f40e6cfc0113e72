"""Shop load benchmark: 100,000 products, hypercorn with 1 and 2 (uvloop) workers.

Seeds a temporary SQLite instance with ``electro seed-demo``, serves it with ``electro serve``
(rate limits off: every request comes from one address) and drives each route with wrk at 8 and
32 connections (the cold search, a fresh query each time, only with 2 workers). Prints one table:
requests/s, p50, p99 and the throughput ratio to ``/healthz`` (a plain-text route on the same
server: the framework's own limit).

Run: ``.venv/bin/python bench/bench_shop.py`` (about 2-3 minutes). Load comes from wrk when
installed, else from a bundled asyncio client (``--client``) in its own process.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import support

PRODUCTS = 100_000
LOGINS_PER_SECOND = 5
PASSWORD = "lanterns over a quiet harbour"
SECONDS = 3
CONNECTIONS = (8, 32)
WORKERS = (1, 2)
BASELINE = "/healthz (baseline)"
# What shoppers type, including half-typed words (active search sends every pause).
QUERIES = [
    "lumen", "lumen phone", "smartphone pro", "wireless headphones", "cafe", "müller", "kestrel",
    "kestrel laptop", "usb-c ssd", "4k monitor", "noise-cancelling earbuds", "router", "mesh wi",
    "gaming mouse", "soundbar", "thermostat", "oled", "lap", "lapt", "laptop", "headph",
    "video doorbell", "smart plug", "élan", "bluetooth speaker", "hard drive", "mechanical",
    "e-reader", "tablet mini", "console max", "silent keyboard", "travel", "waterproof camera",
    "action cam", "ultrabook", "switch", "sonder", "quanta display", "helix", "orbital camera",
]
VOCABULARY = sorted({w for q in QUERIES for w in q.replace("-", " ").split()} | {
    "pro", "air", "mini", "max", "ultra", "lite", "plus", "studio", "go", "neo", "aluminium",
    "compact", "ergonomic", "hdr", "students", "creators", "family", "office", "energy",
})

LUA = """
local paths = %(paths)s
local headers = %(headers)s
init = function(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function() return wrk.format("GET", paths[math.random(#paths)], headers) end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _lua_list(items: list[str]) -> str:
    return "{" + ",".join(json.dumps(i) for i in items) + "}"


def _lua_table(items: dict[str, str]) -> str:
    return "{" + ",".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in items.items()) + "}"


def _routes(rng: random.Random) -> dict[str, tuple[list[str], dict[str, str]]]:
    htmx = {"HX-Request": "true"}
    cold = [f"/search?q={quote(f'{rng.choice(VOCABULARY)} {rng.choice(VOCABULARY)[:3]}')}"
            for _ in range(20_000)]
    return {
        BASELINE: (["/healthz"], {}),
        "search fragment": ([f"/search?q={quote(q)}" for q in QUERIES], htmx),
        # The same words through the API (B3): JSON, no fragment cache, a catalogue-version read.
        "API products?q=": ([f"/api/v1/products?q={quote(q)}" for q in QUERIES], {}),
        "trending fragment": (["/trending"], htmx),
        "product page": ([f"/products/{rng.randint(1, PRODUCTS)}" for _ in range(2000)], {}),
        "category page, sorted": ([
            f"/categories/{rng.randint(1, 12)}?sort={rng.choice(['name', 'company', 'price'])}"
            f"&dir={rng.choice(['asc', 'desc'])}&page={rng.randint(1, 300)}" for _ in range(2000)
        ], {}),
        # Last: its fresh queries push the warm ones out of the cache.
        "search fragment, cold": (cold, htmx),
    }


def _drive(base: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    """Load from a separate process: wrk with ``script`` (.lua), else the bundled asyncio
    client with the same paths (``script`` with .json)."""
    if shutil.which("wrk"):
        command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s",
                   "-s", str(script), base]
    else:
        command = [sys.executable, __file__, "--client", base, str(script.with_suffix(".json")),
                   str(connections), str(seconds)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests, duration, p50, p99, bad_status, socket_errors = map(int, line.split()[1:])
    return {"rps": requests / (duration / 1e6), "p50": p50 / 1000, "p99": p99 / 1000,
            "errors": bad_status + socket_errors}


async def _client(
    base: str, paths: list[str], headers: dict[str, str], connections: int, seconds: int
) -> None:
    """The fallback load generator: keep-alive HTTP/1.1 connections, each sending its next GET
    as soon as the last answer is read; prints the same RESULT line as the wrk script."""
    host, port = base.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.monotonic() < stop:
            path = random.choice(paths)
            sent = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            errors += not head.startswith(b"HTTP/1.1 2")
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    duration = time.monotonic() - started
    latencies.sort()
    p50, p99 = (latencies[int(q * (len(latencies) - 1))] for q in (0.5, 0.99))
    print(f"RESULT {len(latencies)} {int(duration * 1e6)} {int(p50 * 1e6)} {int(p99 * 1e6)} "
          f"{errors} 0")


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--client":
        base, spec, connections, seconds = sys.argv[2:]
        paths, headers = json.loads(Path(spec).read_text())
        asyncio.run(_client(base, paths, headers, int(connections), int(seconds)))
        return
    if not shutil.which("wrk"):
        print("wrk not found: using the bundled asyncio client (slower; it shares the CPU)")
    rng = random.Random(11)
    tmp = Path(tempfile.mkdtemp(prefix="electro-bench-"))
    env = support.instance_env(tmp, admin_password=PASSWORD)
    started = time.monotonic()
    support.electro(env, "init-db")
    support.electro(env, "seed-demo", "--products", str(PRODUCTS))
    support.electro(env, "create-admin", "--username", "bench", "--email", "bench@example.com")
    print(f"seeded {PRODUCTS:,} products in {time.monotonic() - started:.0f} s", flush=True)
    scripts = {}
    for n, (route, (paths, headers)) in enumerate(_routes(rng).items()):
        scripts[route] = tmp / f"route{n}.lua"
        scripts[route].write_text(LUA % {"paths": _lua_list(paths), "headers": _lua_table(headers)})
        scripts[route].with_suffix(".json").write_text(json.dumps([paths, headers]))
    rows = []
    try:
        for workers in WORKERS:
            with support.server(env, workers) as port:
                base = f"http://127.0.0.1:{port}"
                # Warm up: every worker's caches and the search records of this client.
                for route in ("search fragment", "trending fragment"):
                    _drive(base, scripts[route], 8, 1)
                for connections in CONNECTIONS:
                    # The machine is shared: the baseline is taken before and after the routes,
                    # and each ratio uses their mean, so a load change hits both sides alike.
                    before = _drive(base, scripts[BASELINE], connections, SECONDS)
                    measured = [
                        (route, _drive(base, script, connections, SECONDS))
                        for route, script in scripts.items()
                        if route != BASELINE
                        and not (route == "search fragment, cold" and workers == 1)
                    ]
                    if workers == 2 and connections == 8:
                        # argon2 runs in worker threads: log-ins must not stall the search.
                        with support.login_load(port, "bench", PASSWORD,
                                                LOGINS_PER_SECOND) as logins:
                            result = _drive(base, scripts["search fragment"], 8, SECONDS * 2)
                        result["logins"] = len(logins)
                        result["login_p50"] = statistics.median(logins) * 1000
                        measured.append(
                            (f"search, {LOGINS_PER_SECOND} logins/s", result))
                    after = _drive(base, scripts[BASELINE], connections, SECONDS)
                    baseline = {key: (before[key] + after[key]) / 2 for key in before}
                    for route, result in [(BASELINE, baseline), *measured]:
                        rows.append((route, workers, connections, result,
                                     result["rps"] / baseline["rps"]))
                    print(".", end="", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n\n{'route':24} {'workers':>7} {'conns':>5} {'req/s':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'vs base':>7} {'errors':>6}")
    for route, workers, connections, r, ratio in rows:
        print(f"{route:24} {workers:>7} {connections:>5} {r['rps']:>8.0f} {r['p50']:>7.2f} "
              f"{r['p99']:>7.2f} {ratio:>7.0%} {r['errors']:>6.0f}")
    goals = {(route, c): (r, ratio) for route, w, c, r, ratio in rows if w == 2}
    search, search_ratio = goals[("search fragment", 8)]
    _trend, trend_ratio = goals[("trending fragment", 8)]
    print(f"\ngoals (2 workers, 8 connections): search fragment {search_ratio:.0%} of baseline "
          f"(>= 50%) with p99 {search['p99']:.1f} ms (<= 15 ms); trending fragment "
          f"{trend_ratio:.0%} (>= 80%)")
    under_load = goals[(f"search, {LOGINS_PER_SECOND} logins/s", 8)][0]
    print(f"search fragment p99 while {LOGINS_PER_SECOND} log-ins/s run (argon2 t=3, 64 MiB): "
          f"{under_load['p99']:.1f} ms ({under_load['logins']} log-ins, "
          f"p50 {under_load['login_p50']:.0f} ms each)")
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
