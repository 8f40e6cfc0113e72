"""Does the answer time tell whether an address has an account? (issue 11, finding 6)

Starts `electro serve` (1 worker, SQLite, rate limits off, mail to files), creates one account,
then sends 200 interleaved POST /password/reset for the account's address and for unknown
ones, each from a fresh browser (form GET for the cookie and token first, not
timed). Prints median and p99 per case in milliseconds, and z: the difference of the means over
its standard error. |z| below 2 is what chance alone gives; before the fix it was about 16.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import support

RUNS = 200
KNOWN = "bench@example.com"


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
                    support.timed_form_post(port, path, {"email": "warm@example.com"}, 200)
                known, unknown = [], []
                for n in range(RUNS):
                    known.append(support.timed_form_post(port, path, {"email": KNOWN}, 200))
                    unknown.append(support.timed_form_post(
                        port, path, {"email": f"nobody{n}@example.com"}, 200))
                z = f"{_z(known, unknown):.1f}"
                rows += [_row(f"{path}, registered address", known),
                         _row(f"{path}, unknown address", unknown, z)]
    print("1 worker, interleaved, milliseconds; z: (mean known - mean unknown) / its std error")
    print("| request                              |    n |     p50 |     p99 |      z |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
