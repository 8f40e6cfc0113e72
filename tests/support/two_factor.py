"""Helpers for the two-factor tests: enrolling through the real pages, codes from the secret
shown on them (pyotp, as an authenticator app computes them)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pyotp

from electro import clock
from electro.security import totp
from tests.support import Client
from tests.support.accounts import log_in

SECRET_SHOWN = re.compile(r'id="two-factor-secret">([A-Z2-7]+)<')
RECOVERY_SHOWN = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")
PENDING = re.compile(r'name="pending" value="([^"]+)"')


def code_at(secret: str, offset: int = 0) -> str:
    """The code an app shows ``offset`` steps (30 s each) from now, by the app's clock."""
    return pyotp.TOTP(secret).generate_otp(totp.time_step(clock.now()) + offset)


async def steady_step() -> None:
    """Wait until at least 3 s of the current 30 s step remain, so a code computed now is
    judged in the same step by the server (drift tests must not cross a boundary)."""
    left = totp.STEP_SECONDS - clock.now().timestamp() % totp.STEP_SECONDS
    if left < 3:
        await asyncio.sleep(left + 0.1)


async def enrol(client: Client) -> tuple[str, list[str]]:
    """Set up two-factor on the signed-in ``client``'s account: the secret and recovery codes."""
    assert (await client.post("/account/two-factor/setup", scheme="https")).status_code == 302
    page = await (await client.get("/account/two-factor", scheme="https")).get_data(as_text=True)
    match = SECRET_SHOWN.search(page)
    assert match, "the secret is shown as text"
    secret = match.group(1)
    await steady_step()
    done = await client.post("/account/two-factor", {"code": code_at(secret)}, scheme="https")
    assert done.status_code == 200
    codes = RECOVERY_SHOWN.findall(await done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


async def password_step(client: Client, login: str = "ann", **kwargs: Any) -> str:
    """The right password: the code form's pending key (no session yet)."""
    response = await log_in(client, login, **kwargs)
    assert response.status_code == 200
    match = PENDING.search(await response.get_data(as_text=True))
    assert match, "the second step asks for a code"
    return match.group(1)


async def code_step(client: Client, pending: str, code: str, **kwargs: Any) -> Any:
    response = await client.post("/login/code", {"pending": pending, "code": code},
                                 scheme="https", **kwargs)
    if response.status_code == 302:
        client.token = ""
    return response
