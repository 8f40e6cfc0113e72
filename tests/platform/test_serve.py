"""`electro serve` starts, or says why not (issue 11): a worker that cannot start used to die
behind a parent that printed "serving on ..." and kept running; and a plain install (no extras)
must serve a page, since redis, asyncpg and uvloop are optional."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
ELECTRO = Path(sys.executable).parent / "electro"


def _serve_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {**os.environ, "ELECTRO_INSTANCE_DIR": str(tmp_path / "instance"),
           "ELECTRO_DATABASE_URL": "", "ELECTRO_REDIS_URL": "", "ELECTRO_SMTP_HOST": "",
           "ELECTRO_SECRET_KEY": "serve-test-secret", "ELECTRO_COOKIE_SECURE": "0"}
    env.update({f"ELECTRO_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.mark.parametrize(("settings", "reason"), [
    ({"database_url": "sqlite+aiosqlite:////nonexistent/folder/electro.db"},
     "unable to open database file"),
    ({"redis_url": "redis://127.0.0.1:1"}, "connecting to 127.0.0.1:1"),
])
def test_serve_that_cannot_start_exits_with_the_reason(
    tmp_path: Path, settings: dict[str, str], reason: str
) -> None:
    done = subprocess.run([ELECTRO, "serve", "--bind", f"127.0.0.1:{free_port()}"],
                          env=_serve_env(tmp_path, **settings), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    assert "cannot serve:" in done.stderr and reason in done.stderr
    assert "Traceback" not in done.stderr and "serving on" not in done.stdout


def _get(url: str, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - localhost
                return int(response.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.skipif(bool(os.environ.get("ELECTRO_TEST_DATABASE_URL")),
                    reason="needs no database: run once, with the SQLite suite")
def test_a_plain_install_serves_a_page(tmp_path: Path) -> None:
    """`pip install .` without extras (no redis, asyncpg or uvloop), then init-db and serve."""
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(ROOT / "electro", source / "electro",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    subprocess.run([venv / "bin" / "pip", "install", "-q", source], check=True, timeout=600,
                   capture_output=True)
    check = subprocess.run([venv / "bin" / "python", "-c", "import redis"], capture_output=True,
                           check=False)
    assert check.returncode != 0, "the plain install must not bring the redis extra"
    env = _serve_env(tmp_path)
    subprocess.run([venv / "bin" / "electro", "init-db"], env=env, check=True, timeout=120,
                   capture_output=True)
    port = free_port()
    server = subprocess.Popen([venv / "bin" / "electro", "serve", "--bind", f"127.0.0.1:{port}"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        assert _get(f"http://127.0.0.1:{port}/", time.monotonic() + 60) == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output, output
