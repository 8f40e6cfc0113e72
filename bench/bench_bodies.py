"""Large form bodies against a served shop (issue 11, finding 1).

Starts `electro serve` with 2 workers on a temporary SQLite instance (rate limits off), then
times GET / alone, then again while 6 clients at once POST a 16 MiB url-encoded form (`a&`
repeated, no cookie, no token) to /logout, as an attacker would. Before the body limits each of
those posts cost about 4 s of CPU on the event loop and froze its worker. Prints a table of
latencies in milliseconds.
"""

from __future__ import annotations

import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import support

ATTACKERS = 6
ATTACK_BODY = b"a&" * (8 * 1024 * 1024 - 1)  # just under 16 MiB
GETS = 300


def _attack(port: int, answers: list[tuple[int, float]]) -> None:
    """One large post, sent as a client on a fast line would; the time from the first byte to
    the status line. The server may answer before the whole body has arrived (and close)."""
    head = (f"POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(ATTACK_BODY)}\r\n\r\n").encode()
    status, start = 0, time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.setblocking(False)
        pending = memoryview(head + ATTACK_BODY)
        reply = b""
        while b"\r\n" not in reply:
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 120)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
            elif writable:
                try:
                    pending = pending[sock.send(pending[:1 << 20]):]
                except OSError:
                    pending = pending[:0]  # closed by the server: wait for its answer
        elapsed = time.perf_counter() - start
        if reply.startswith(b"HTTP/1.1 "):
            status = int(reply[9:12])
    answers.append((status, elapsed))


def _row(name: str, samples: list[float], note: str = "") -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return (f"| {name:<40} | {len(ms):>4} | {statistics.median(ms):>8.1f} | {p99:>8.1f} | "
            f"{max(ms):>8.1f} | {note}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="electro-bench-bodies-") as tmp:
        env = support.instance_env(Path(tmp))
        support.electro(env, "init-db")
        support.electro(env, "seed-demo", "--products", "300")
        with support.server(env, workers=2) as port:
            for _ in range(20):
                support.timed_get(port, "/")  # warm up both workers
            alone = [support.timed_get(port, "/") for _ in range(GETS)]
            answers: list[tuple[int, float]] = []
            attackers = [threading.Thread(target=_attack, args=(port, answers))
                         for _ in range(ATTACKERS)]
            for thread in attackers:
                thread.start()
            during = []
            while any(t.is_alive() for t in attackers) or len(during) < GETS:
                during.append(support.timed_get(port, "/"))
            for thread in attackers:
                thread.join()
    statuses = sorted({status for status, _ in answers})
    print(f"2 workers, {ATTACKERS} parallel POST /logout of {len(ATTACK_BODY) / 2**20:.0f} MiB "
          f"(no cookie), GET / from one client; milliseconds")
    print("| request                                  |    n |      p50 |      p99 |      max | ")
    print("|---|---:|---:|---:|---:|---|")
    print(_row("GET / alone", alone))
    print(_row("GET / during the large posts", during))
    print(_row("16 MiB POST /logout, until its answer", [t for _, t in answers],
               f"statuses {statuses}"))
    if any(status not in (403, 413) for status, _ in answers):
        sys.exit("a large post was not refused")


if __name__ == "__main__":
    main()
