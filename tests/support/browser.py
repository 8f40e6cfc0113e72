"""Browser test harness: the real app served by hypercorn in a subprocess, driven by Debian's
Chromium through Playwright's async API (never ``playwright install``).

Tests run on a function-scoped event loop, and a Playwright connection belongs to the loop that
opened it, so every test launches its own Chromium: about 1.2 s (driver start, launch, close),
plus about 1 s for the server. One Chromium shared over CDP still needs the driver per test and
saved only ~0.3 s, not worth an orphanable process.

Registered by ``pytest_plugins = ["tests.support.browser"]`` in tests/conftest.py. Use::

    @pytest.mark.browser
    async def test_x(live_server, page, browser_errors): ...

``axe_violations(page)`` audits the page as it is now with the vendored axe-core
(tests/assets/axe-core), WCAG 2.0/2.1 A and AA rules only.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from electro.app import create_app
from electro.models import User
from electro.services import sessions
from tests.support import IN_CI, TEST_SETTINGS, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_TIMEOUT_SECONDS = 15.0
AXE_FILE = Path(__file__).parents[1] / "assets" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1
# The success criteria of WCAG 2.1 level AA (EN 301 549's reference), as axe-core tags them.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]


@pytest.fixture
def live_server_env(
    database_url: str, tmp_path: Path, smtp_server: tuple[Any, int]
) -> dict[str, str]:
    """The server's ``ELECTRO_*`` environment; update it in a test before ``live_server``."""
    settings = {**TEST_SETTINGS, "database_url": database_url,
                "instance_dir": tmp_path / "live-instance", "cookie_secure": "0",
                "smtp_host": "127.0.0.1", "smtp_port": smtp_server[1], "rate_limits": "0"}
    return {f"ELECTRO_{name.upper()}": str(value) for name, value in settings.items()}


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)  # the server is still importing or binding
    process.terminate()
    process.wait(timeout=10)
    pytest.fail(
        f"the live server at {url} did not answer /healthz within {STARTUP_TIMEOUT_SECONDS} s "
        f"(exit code {process.returncode}); its stderr:\n{log.read_text(errors='replace')}"
    )


@pytest.fixture
def live_server(live_server_env: dict[str, str], tmp_path: Path) -> Iterator[LiveServer]:
    """hypercorn serving ``electro.asgi:app`` on a free port, on this test's database."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ELECTRO_BASE_URL": url, **live_server_env}
    log = tmp_path / "live-server.log"
    # A file, not a pipe: nobody reads a pipe while the test runs, and a full one blocks the server.
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "electro.asgi:app", "--bind", f"127.0.0.1:{port}"],
            env=env,
            stdout=stderr,
            stderr=stderr,
        )
    try:
        _wait_until_healthy(process, url, log)
        yield LiveServer(url=url, env=env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install --no-install-recommends chromium)"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true, so browser tests must run")
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A Chromium for this test (a Playwright connection cannot outlive its event loop)."""
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def browser_errors() -> list[str]:
    """Console errors (CSP violations are reported as such) and uncaught page errors, from
    ``page`` and ``js_disabled_page``; a test asserts it stays empty."""
    return []


def watch_errors(page: Any, errors: list[str]) -> None:
    """Collect ``page``'s console errors and uncaught errors into ``errors``."""
    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))


@pytest.fixture
async def page(browser: Any, browser_errors: list[str]) -> AsyncIterator[Any]:
    context = await browser.new_context()
    tab = await context.new_page()
    watch_errors(tab, browser_errors)
    yield tab
    await context.close()


@pytest.fixture
async def js_disabled_page(browser: Any, browser_errors: list[str]) -> AsyncIterator[Any]:
    """A page with JavaScript off, for progressive-enhancement tests (forms work without htmx)."""
    context = await browser.new_context(java_script_enabled=False)
    tab = await context.new_page()
    watch_errors(tab, browser_errors)
    yield tab
    await context.close()


async def session_cookie(live_server: LiveServer, db: AsyncSession, user: User) -> dict[str, str]:
    """A live session for ``user``, started in ``db``'s transaction in the server's database,
    and its cookie signed with the server's secret key, as quart-auth's log-in would set it."""
    signer = create_app({"secret_key": live_server.env["ELECTRO_SECRET_KEY"],
                         "instance_dir": Path(live_server.env["ELECTRO_INSTANCE_DIR"])})
    token = await sessions.start_session(db, signer.extensions["electro"].settings, user,
                                         "127.0.0.1", "chromium")
    auth = signer.extensions["QUART_AUTH"][0]
    return {"name": auth.cookie_name, "value": auth.dump_token(token, app=signer),
            "url": live_server.url}


@functools.cache
def axe_source() -> str:
    """The vendored axe-core, refused unless it is byte for byte the recorded release."""
    data = AXE_FILE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != AXE_SHA256:
        raise AssertionError(f"{AXE_FILE} has SHA-256 {digest}, not the recorded {AXE_SHA256}: "
                             "restore it (tests/assets/axe-core/README.md says how)")
    return data.decode()


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is now.

    Evaluated through the DevTools protocol, which the page's CSP does not govern: the page
    keeps its real policy (a ``<script>`` tag of ours would be refused, as it should be)."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    result: list[dict[str, Any]] = await page.evaluate(
        """async tags => (await axe.run(document, {runOnly: {type: "tag", values: tags},
                                                  resultTypes: ["violations"]})).violations
               .map(v => ({id: v.id, impact: v.impact, help: v.help,
                           nodes: v.nodes.map(n => ({target: n.target.join(" "),
                                                     html: n.html}))}))""",
        WCAG_21_AA,
    )
    return result


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """Per rule: its id, impact and help text, then each node that breaks it (its CSS
    selector and the start of its HTML)."""
    return "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']}"
        + "".join(f"\n    {n['target']}  {n['html'][:120]}" for n in v["nodes"])
        for v in violations
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # a 303 after a plain-form save is the answer, not a page to fetch


_OPENER = urllib.request.build_opener(_NoRedirect)


def live_request(url: str, cookie: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(status, body, Set-Cookie) of a GET, or of a POST of ``form``, to the live server; a
    redirect is the answer, not followed."""
    assert url.startswith("http://127.0.0.1:")
    data = None if form is None else urlencode(form).encode()
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=60) as response:
            return (response.status, response.read().decode(),
                    response.headers.get("Set-Cookie", ""))
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), ""
