"""Two-factor in a real Chromium (SPEC B4): an admin is sent to enrol, scans nothing but reads
the secret shown on the page (pyotp computes the codes, as an app would), gets recovery codes,
then logs in again with a code. No console or CSP errors; both pages pass the axe sweep."""

from __future__ import annotations

import re
from typing import Any

import pytest
from argon2 import PasswordHasher

from electro.db import make_engine, make_sessionmaker
from electro.models import User
from tests.support import TEST_PASSWORD
from tests.support.browser import axe_violations, describe_violations
from tests.support.two_factor import code_at, steady_step

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_env(live_server_env: dict[str, str]) -> dict[str, str]:
    return {**live_server_env, "ELECTRO_ADMIN_TWO_FACTOR": "required"}


async def _admin(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as db:
            db.add(User(username="boss", email="boss@example.com", is_admin=True,
                        password_hash=PasswordHasher(time_cost=1, memory_cost=1024,
                                                     parallelism=1).hash(TEST_PASSWORD)))
    finally:
        await engine.dispose()


async def _log_in(page: Any) -> None:
    await page.fill("#login", "boss")
    await page.fill("#password", TEST_PASSWORD)
    await page.click("#login-form button[type=submit]")


async def test_enrol_then_log_in_with_a_code_from_the_secret_on_the_page(
    live_server: Any, page: Any, browser_errors: list[str], database_url: str
) -> None:
    await _admin(database_url)
    await page.goto(live_server.url + "/admin")
    await _log_in(page)  # no two-factor yet: the password signs in, the guard sends to enrol
    await page.wait_for_url(re.compile(r"/account/two-factor\?next=/admin$"))
    await page.get_by_role("button", name="Set up two-factor").click()
    await page.wait_for_selector("#two-factor-secret")
    assert await page.get_by_role("img", name="QR code for your authenticator app").count() == 1
    assert (violations := await axe_violations(page)) == [], describe_violations(violations)
    secret = await page.locator("#two-factor-secret").inner_text()
    await steady_step()
    await page.fill("#code", code_at(secret))
    await page.get_by_role("button", name="Turn two-factor on").click()
    await page.wait_for_selector("#recovery-codes")
    assert await page.locator("#recovery-codes li").count() == 10
    assert (violations := await axe_violations(page)) == [], describe_violations(violations)
    await page.get_by_role("link", name="Continue").click()
    await page.wait_for_url(live_server.url + "/admin")

    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(live_server.url + "/")
    await page.goto(live_server.url + "/login?next=/admin")
    await _log_in(page)
    await page.wait_for_selector("#login-code-form")
    assert "QUART_AUTH" not in {c["name"] for c in await page.context.cookies()}  # no session
    assert (violations := await axe_violations(page)) == [], describe_violations(violations)
    await page.fill("#code", "000000")
    await page.click("#login-code-form button[type=submit]")
    await page.wait_for_selector("#code-error:has-text('not right')")
    await steady_step()
    await page.fill("#code", code_at(secret, 1))  # the enrolment used this step's code
    await page.click("#login-code-form button[type=submit]")
    await page.wait_for_url(live_server.url + "/admin")
    await page.goto(live_server.url + "/account/two-factor")  # now on: the form to turn it off
    await page.get_by_role("button", name="Turn two-factor off").wait_for()
    assert (violations := await axe_violations(page)) == [], describe_violations(violations)
    assert browser_errors == []
