"""Two-factor sign-in (SPEC B4, issue 15): enrolment, the log-in's second step (code,
recovery code, replay, drift, lockout, the pending state), turning it off, the admin rule,
resets by an admin and by the CLI, and the secret sealed at rest."""

from __future__ import annotations

import asyncio
import gzip
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from electro import cli, clock
from electro.config import SettingsError, load_settings
from electro.models import RecoveryCode, TwoFactor, User, UserSession
from electro.security import totp
from electro.services import backups, two_factor
from tests.support import TEST_PASSWORD, Client, make_user, sign_in
from tests.support.accounts import (
    GENERIC,
    events_of,
    failure_row,
    queued_mail,
    session_rows,
    user_row,
)
from tests.support.two_factor import code_at, code_step, enrol, password_step, steady_step

STRANGER = "198.51.100.7"


def at(ip: str) -> dict[str, Any]:
    return {"scope_base": {"client": (ip, 4000)}}


@pytest.fixture
def required(settings_overrides: dict[str, Any]) -> None:
    """The production default (the suite's other tests run with "optional")."""
    settings_overrides["admin_two_factor"] = "required"


async def enrolled_ann(app: Any) -> tuple[User, str, list[str]]:
    user = await make_user(app, "ann")
    client = Client(app)
    await sign_in(app, client, user)
    secret, codes = await enrol(client)
    return user, secret, codes


async def text(response: Any) -> str:
    return str(await response.get_data(as_text=True))


# ---------------------------------------------------------------- enrolment


async def test_enrolment_needs_a_right_code_then_shows_ten_recovery_codes_once(
    app: Any, user_client: Client
) -> None:
    page = await text(await user_client.get("/account/two-factor"))
    assert "Two-factor sign-in is <strong>off</strong>" in page
    assert (await user_client.post("/account/two-factor/setup")).status_code == 302
    page = await text(await user_client.get("/account/two-factor"))
    assert '<svg role="img"' in page and "<script" not in page.split("<main")[-1]
    secret = page.split('id="two-factor-secret">')[1].split("<")[0]
    user = await user_row(app, "ann")
    async with app.extensions["electro"].sessions() as db:
        assert not await two_factor.is_enabled(db, user.id)  # only a code turns it on

    wrong = await user_client.post("/account/two-factor", {"code": "000000"})
    assert wrong.status_code == 422 and "That code is not right" in await text(wrong)
    await steady_step()
    done = await user_client.post("/account/two-factor", {"code": code_at(secret)})
    codes = [c for c in (await text(done)).split("<code>")[1:]]
    assert done.status_code == 200 and len(codes) == 10
    async with app.extensions["electro"].sessions() as db:
        assert await two_factor.is_enabled(db, user.id)
        hashes = set(await db.scalars(select(RecoveryCode.code_hash)))
    shown = [c.split("<")[0] for c in codes]
    assert hashes == {totp.hash_recovery_code(c) for c in shown}  # only hashes are stored
    assert await queued_mail(app, "two_factor_enabled") == 1
    assert [e.type for e in await events_of(app, "two_factor_enabled")] == ["two_factor_enabled"]
    again = await text(await user_client.get("/account/two-factor"))
    assert "Recovery codes left: 10" in again and shown[0] not in again  # shown once


# ---------------------------------------------------------------- the log-in's second step


async def test_log_in_with_a_code_and_no_session_before_it(app: Any) -> None:
    user, secret, _codes = await enrolled_ann(app)
    before = len(await session_rows(app, user.id))
    client = Client(app)
    response = await client.post("/login", {"login": "ann", "password": TEST_PASSWORD},
                                 scheme="https")
    assert response.status_code == 200 and 'name="code"' in await text(response)
    auth_cookie = app.extensions["QUART_AUTH"][0].cookie_name
    assert not any(c.startswith(auth_cookie + "=")  # no session cookie between the steps
                   for c in response.headers.getlist("Set-Cookie"))
    assert len(await session_rows(app, user.id)) == before
    pending = (await text(response)).split('name="pending" value="')[1].split('"')[0]
    await steady_step()
    done = await code_step(client, pending, code_at(secret, 1))  # the enrolment used step 0
    assert done.status_code == 302
    assert len(await session_rows(app, user.id)) == before + 1
    assert (await client.get("/account")).status_code == 200
    success = (await events_of(app, "authn_login_success"))[-1]
    assert success.details["second_factor"] == "totp"
    # The pending state works once.
    assert GENERIC not in await text(await code_step(Client(app), pending, code_at(secret, 1)))
    assert "Log in again" in await text(await code_step(Client(app), pending, code_at(secret)))


async def test_a_replayed_code_is_refused(app: Any) -> None:
    _user, secret, _codes = await enrolled_ann(app)
    client = Client(app)
    pending = await password_step(client)
    # The code that confirmed the enrolment, again, in its own window.
    refused = await code_step(client, pending, code_at(secret))
    assert refused.status_code == 200 and "used already" in await text(refused)
    await steady_step()
    assert (await code_step(client, pending, code_at(secret, 1))).status_code == 302
    again = await code_step(Client(app), await password_step(Client(app)), code_at(secret, 1))
    assert "used already" in await text(again)


async def test_a_recovery_code_works_once(app: Any, mailbox: Any) -> None:
    _user, _secret, codes = await enrolled_ann(app)
    client = Client(app)
    typed = codes[3].upper().replace("-", " ")  # as read off paper
    assert (await code_step(client, await password_step(client), typed)).status_code == 302
    assert (await events_of(app, "authn_login_success"))[-1].details["second_factor"] == (
        "recovery")
    other = Client(app)
    refused = await code_step(other, await password_step(other), codes[3])
    assert "That code is not right" in await text(refused)


async def test_one_step_of_drift_either_way_is_allowed_two_are_not(app: Any) -> None:
    _user, secret, _codes = await enrolled_ann(app)
    await steady_step()
    client = Client(app)
    pending = await password_step(client)
    for offset in (2, -2):
        refused = await code_step(client, pending, code_at(secret, offset))
        assert "That code is not right" in await text(refused)
    assert (await code_step(client, pending, code_at(secret, 1))).status_code == 302
    clock.advance(timedelta(seconds=90))  # three steps on: the app's clock lags one behind
    await steady_step()
    late = Client(app)
    assert (await code_step(late, await password_step(late), code_at(secret, -1))
            ).status_code == 302


async def test_wrong_codes_count_towards_the_lock_and_a_password_does_not_reset_them(
    app: Any
) -> None:
    _user, secret, _codes = await enrolled_ann(app)
    client = Client(app)
    pending = await password_step(client, **at(STRANGER))
    for _ in range(3):
        await code_step(client, pending, "123456", **at(STRANGER))
    pending = await password_step(client, **at(STRANGER))  # the right password again
    row = await failure_row(app, "ann", STRANGER)
    assert row is not None and row.failures == 3
    for _ in range(2):
        await code_step(client, pending, "123456", **at(STRANGER))
    row = await failure_row(app, "ann", STRANGER)
    assert row is not None and row.failures == 5 and row.locked_until is not None
    assert [e.details["scope"] for e in await events_of(app, "authn_login_lock")] == ["address"]
    # Locked from that address: even the right code is refused now.
    await steady_step()
    refused = await code_step(client, pending, code_at(secret, 1), **at(STRANGER))
    assert refused.status_code == 200 and "Log in again" in await text(refused)
    assert (await events_of(app, "authn_login_fail"))[-1].details["reason"] == (
        "locked_from_address")


async def test_the_pending_state_lasts_five_minutes_and_spends_on_wrong_codes(
    app: Any, settings_overrides: dict[str, Any]
) -> None:
    _user, secret, _codes = await enrolled_ann(app)
    client = Client(app)
    pending = await password_step(client)
    clock.advance(timedelta(minutes=5, seconds=1))
    await steady_step()
    expired = await code_step(client, pending, code_at(secret, 1))
    assert "Log in again" in await text(expired) and 'id="login-form"' in await text(expired)

    pending = await password_step(client)
    for _ in range(app.extensions["electro"].settings.key_max_attempts):
        await code_step(client, pending, "999999")
    await steady_step()
    assert "Log in again" in await text(await code_step(client, pending, code_at(secret, 1)))
    forged = await code_step(client, "not-a-pending-key", code_at(secret, 1))
    assert "Log in again" in await text(forged)


async def test_codes_are_rate_limited_per_address_like_passwords(app: Any) -> None:
    _user, _secret, _codes = await enrolled_ann(app)
    client = Client(app)
    pending = await password_step(client)
    for _ in range(10):
        assert (await code_step(client, pending, "000000")).status_code == 200
    assert (await code_step(client, pending, "000000")).status_code == 429
    elsewhere = await code_step(client, pending, "000000", **at(STRANGER))
    assert elsewhere.status_code == 200  # the limit is per client address


# ---------------------------------------------------------------- turning it off


async def test_turning_off_needs_the_password_and_a_current_code(
    app: Any, mailbox: Any
) -> None:
    user = await make_user(app, "ann")
    client = Client(app)
    await sign_in(app, client, user)
    secret, _codes = await enrol(client)
    wrong_password = await client.post("/account/two-factor/disable",
                                       {"current_password": "nope", "code": code_at(secret)})
    assert "That is not your current password" in await text(wrong_password)
    wrong_code = await client.post("/account/two-factor/disable",
                                   {"current_password": TEST_PASSWORD, "code": "000000"})
    assert "That code is not right" in await text(wrong_code)
    assert (await user_row(app, "ann")).failed_logins == 2  # both counted as guesses
    await steady_step()
    done = await client.post("/account/two-factor/disable",
                             {"current_password": TEST_PASSWORD, "code": code_at(secret, 1)})
    assert done.status_code == 302
    async with app.extensions["electro"].sessions() as db:
        assert await db.get(TwoFactor, user.id) is None
        assert not list(await db.scalars(select(RecoveryCode)))
    assert await queued_mail(app, "two_factor_disabled") == 1
    assert len(await events_of(app, "two_factor_disabled")) == 1
    plain = Client(app)
    assert (await plain.post("/login", {"login": "ann", "password": TEST_PASSWORD},
                             scheme="https")).status_code == 302


# ---------------------------------------------------------------- admins


async def test_an_admin_without_two_factor_is_sent_to_enrol_first(
    required: None, app: Any, admin_client: Client
) -> None:
    response = await admin_client.get("/admin/tables/users?sort=username&dir=asc")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "/account/two-factor?next=/admin/tables/users%3Fsort%3Dusername%26dir%3Dasc")
    htmx = await admin_client.get("/admin", htmx=True)
    assert htmx.headers["HX-Redirect"].startswith("/account/two-factor?next=")
    action = await admin_client.post("/admin/tables/users/actions",
                                     {"action": "send_test_mail", "ids": "1"})
    assert action.status_code == 302 and await queued_mail(app, "test") == 0
    page = await text(await admin_client.get(response.headers["Location"]))
    assert "Admins must turn it on" in page and "next=/admin/tables/users" in page
    await enrol(admin_client)
    assert (await admin_client.get("/admin")).status_code == 200


async def test_optional_lets_an_admin_in_without_two_factor(
    app: Any, admin_client: Client
) -> None:
    assert app.extensions["electro"].settings.admin_two_factor == "optional"
    assert (await admin_client.get("/admin")).status_code == 200


async def test_the_setting_is_checked() -> None:
    with pytest.raises(SettingsError, match="ELECTRO_ADMIN_TWO_FACTOR"):
        load_settings({"ELECTRO_ADMIN_TWO_FACTOR": "sometimes"})
    assert load_settings({}).admin_two_factor == "required"


async def test_an_admin_resets_another_admins_two_factor_never_their_own(
    required: None, app: Any
) -> None:
    me = Client(app)
    await sign_in(app, me, await make_user(app, "admin", is_admin=True))
    await enrol(me)
    other = await make_user(app, "bob", is_admin=True)
    bob = Client(app)
    await sign_in(app, bob, other)
    await enrol(bob)
    mine = (await user_row(app, "admin")).id
    await me.refresh_token()
    own = await me.post("/admin/tables/users/actions",
                        {"action": "reset_two_factor", "ids": str(mine)}, htmx=True)
    assert own.status_code == 422 and "cannot reset your own" in await text(own)
    done = await me.post("/admin/tables/users/actions",
                         {"action": "reset_two_factor", "ids": str(other.id)}, htmx=True)
    assert done.status_code == 200 and "Reset two-factor of 1 account" in await text(done)
    async with app.extensions["electro"].sessions() as db:
        assert await two_factor.is_enabled(db, mine)
        assert not await two_factor.is_enabled(db, other.id)
    assert await queued_mail(app, "two_factor_reset") == 1
    (event,) = await events_of(app, "two_factor_reset")
    assert event.actor == "admin" and event.details["ids"] == [other.id]
    assert (await bob.get("/admin")).status_code == 302  # bob enrols again
    listing = await text(await me.get("/admin/tables/users?sort=username&dir=asc"))
    assert "Two-factor since" in listing


async def test_the_cli_resets_the_last_admins_two_factor(
    app: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, _secret, _codes = await enrolled_ann(app)
    monkeypatch.setenv("ELECTRO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELECTRO_INSTANCE_DIR", str(tmp_path / "cli-instance"))
    argv = ["two-factor", "reset", "--username", "ann"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert "two-factor reset for ann" in capsys.readouterr().out
    async with app.extensions["electro"].sessions() as db:
        assert not await two_factor.is_enabled(db, user.id)
    assert await queued_mail(app, "two_factor_reset") == 1
    assert (await events_of(app, "two_factor_reset"))[0].actor == "cli"
    assert await asyncio.to_thread(cli.main, argv) == 1  # nothing left to reset
    assert "has no two-factor" in capsys.readouterr().err


# ---------------------------------------------------------------- the secret at rest


async def test_the_secret_is_in_neither_the_database_file_nor_a_backup(
    app: Any, database_url: str
) -> None:
    user, secret, _codes = await enrolled_ann(app)
    rt = app.extensions["electro"]
    async with rt.sessions() as db:
        sealed = (await db.get(TwoFactor, user.id)).sealed_secret
    assert secret not in sealed
    assert totp.unseal([rt.settings.secret_key], sealed, user.id) == (secret, False)
    with pytest.raises(totp.SealBroken):  # another key, or another account, opens nothing
        totp.unseal(["another secret key"], sealed, user.id)
    with pytest.raises(totp.SealBroken):
        totp.unseal([rt.settings.secret_key], sealed, user.id + 1)
    forms = {secret.encode(), secret.lower().encode()}
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"two_factor" in stored and not any(f in stored for f in forms)
    made = await backups.create_backup(rt.engine, rt.settings)
    with zipfile.ZipFile(backups.backup_path(rt.settings, made)) as zf:
        everything = b"".join(gzip.decompress(zf.read(n)) if n.endswith(".gz") else zf.read(n)
                              for n in zf.namelist())
    assert sealed.encode() in everything and not any(f in everything for f in forms)


async def test_after_a_key_rotation_old_secrets_still_work_and_are_sealed_again(
    app: Any, settings_overrides: dict[str, Any]
) -> None:
    """README's rotation: the old key as ELECTRO_PREVIOUS_SECRET_KEY, the new one as
    ELECTRO_SECRET_KEY; each secret is sealed under the new key at its next use."""
    rt = app.extensions["electro"]
    user = await make_user(app, "ann")
    secret = totp.new_secret()
    async with rt.sessions.begin() as db:
        db.add(TwoFactor(user_id=user.id, enabled_at=clock.now(),
                         sealed_secret=totp.seal("the old key", secret, user.id)))
    rt.settings = rt.settings.__class__(**{**rt.settings.__dict__,
                                           "previous_secret_key": "the old key"})
    client = Client(app)
    await steady_step()
    assert (await code_step(client, await password_step(client), code_at(secret))
            ).status_code == 302
    async with rt.sessions() as db:
        sealed = (await db.get(TwoFactor, user.id)).sealed_secret
    assert totp.unseal([rt.settings.secret_key], sealed, user.id) == (secret, False)


async def test_sessions_of_other_devices_are_untouched_by_enrolment(app: Any) -> None:
    user, _secret, _codes = await enrolled_ann(app)
    async with app.extensions["electro"].sessions() as db:
        live = list(await db.scalars(select(UserSession).where(
            UserSession.user_id == user.id, UserSession.ended_at.is_(None))))
    assert len(live) == 1


async def test_a_secret_key_changed_without_the_previous_one_says_what_to_do(app: Any) -> None:
    user = await make_user(app, "ann")
    async with app.extensions["electro"].sessions.begin() as db:
        db.add(TwoFactor(user_id=user.id, enabled_at=clock.now(),
                         sealed_secret=totp.seal("a key long gone", totp.new_secret(), user.id)))
    client = Client(app)
    refused = await code_step(client, await password_step(client), "123456")
    assert refused.status_code == 409 and "Ask an admin to reset" in await text(refused)
