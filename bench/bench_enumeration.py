"""Does the answer time tell whether an address has an account? (issue 11, finding 6)

Starts `electro serve` (1 worker, SQLite, rate limits off, mail to files), creates one account,
then sends 200 interleaved POST /password/reset for the account's address and for unknown
ones, each from a fresh browser (form GET for the cookie and token first, not
timed). Prints median and p99 per case in milliseconds, and z: the difference of the means over
its standard error. |z| below 2 is what chance alone gives; before the fix it was about 16.
"""

from __future__ import annotations

import http.client
import re
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import support

RUNS = 200
KNOWN = "bench@example.com"


def _timed_post(port: int, path: str, email: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    page = response.read().decode()
    cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match or not cookie:
        raise RuntimeError(f"{path} carries no CSRF token or session cookie")
    body = urlencode({"csrf_token": match.group(1), "email": email})
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}")
    return elapsed


def _z(a: list[float], b: list[float]) -> float:
    error = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    return (statistics.fmean(a) - statistics.fmean(b)) / error


def _row(name: str, samples: list[float], z: str = "") -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    return f"| {name:<36} | {len(ms):>4} | {statistics.median(ms):>7.2f} | {p99:>7.2f} | {z:>6} |"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="electro-bench-enum-") as tmp:
        env = support.instance_env(Path(tmp), admin_password="correct horse battery staple")
        support.electro(env, "init-db")
        support.electro(env, "create-admin", "--username", "bench", "--email", KNOWN)
        rows = []
        with support.server(env, workers=1) as port:
            for path in ("/password/reset",):
                for _ in range(10):
                    _timed_post(port, path, "warm@example.com")
                known, unknown = [], []
                for n in range(RUNS):
                    known.append(_timed_post(port, path, KNOWN))
                    unknown.append(_timed_post(port, path, f"nobody{n}@example.com"))
                z = f"{_z(known, unknown):.1f}"
                rows += [_row(f"{path}, registered address", known),
                         _row(f"{path}, unknown address", unknown, z)]
    print("1 worker, interleaved, milliseconds; z: (mean known - mean unknown) / its std error")
    print("| request                              |    n |     p50 |     p99 |      z |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
