"""Wrong passwords lock an account from the guessing address first, and for everyone only at a
higher threshold (issue 11 finding 7: five anonymous guesses used to lock out any owner)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from electro import clock, tasks
from electro.app import create_app
from electro.config import SettingsError, load_settings
from electro.models import LoginFailure, User
from electro.services import accounts
from tests.support import Client, Mailbox, body_of, make_user
from tests.support.accounts import (
    GENERIC,
    count_rows,
    events_of,
    failure_row,
    log_in,
    mask_csrf,
    queued_mail,
    user_row,
)

STRANGER = "198.51.100.7"
OWNER = "192.0.2.10"


def at(ip: str) -> dict[str, Any]:
    return {"scope_base": {"client": (ip, 4000)}}


async def guess(app: Any, ip: str, times: int = 1, login: str = "ann") -> None:
    client = Client(app)
    for _ in range(times):
        assert (await log_in(client, login, "a wrong guess", **at(ip))).status_code == 200


async def test_a_stranger_locks_the_account_from_their_address_only(
    app: Any, mailbox: Mailbox
) -> None:
    await make_user(app, "ann")
    await guess(app, STRANGER, 5)
    assert (await log_in(Client(app), "ann", **at(OWNER))).status_code == 302  # the owner

    # From the stranger's address even the right password is refused, in the same words.
    stranger = Client(app)
    wrong = await log_in(stranger, "ann", "a wrong guess", **at(STRANGER))
    right = await log_in(stranger, "ann", **at(STRANGER))
    assert right.status_code == 200 and GENERIC in await right.get_data(as_text=True)
    assert mask_csrf(await right.get_data(as_text=True)) == mask_csrf(
        await wrong.get_data(as_text=True))
    assert [e.details["reason"] for e in await events_of(app, "authn_login_fail")][-2:] == [
        "wrong_password", "locked_from_address"]
    pair = await failure_row(app, "ann", STRANGER)
    assert pair is not None and pair.failures == 6 and pair.locked_until is not None
    assert (await user_row(app, "ann")).locked_until is None
    [mail] = await mailbox.wait_for("ann@example.com")
    assert mail["Subject"] == "Your E-lectro account is locked from one address"
    assert STRANGER in body_of(mail) and "sign in from anywhere else" in body_of(mail)


async def test_one_address_alone_never_locks_the_account_for_everyone(
    settings_overrides: dict[str, Any],
) -> None:
    """Guesses from an address that is locked already cannot succeed, so they are counted
    there but not for the account: only other addresses bring it to the higher threshold."""
    low = create_app({**settings_overrides, "login_account_lock_threshold": 6})
    async with low.test_app():
        await make_user(low, "ann")
        await guess(low, STRANGER, 10)  # the per-IP rate limit allows ten a minute
        pair = await failure_row(low, "ann", STRANGER)
        assert pair is not None and pair.failures == 10
        user = await user_row(low, "ann")
        assert (user.failed_logins, user.locked_until) == (5, None)
        assert (await log_in(Client(low), "ann", **at(OWNER))).status_code == 302

        await guess(low, "203.0.113.1", 5)
        await guess(low, "203.0.113.2", 1)  # the sixth for the account since the owner's log-in
        user = await user_row(low, "ann")
        assert (user.failed_logins, user.locked_until is not None) == (6, True)
        refused = await log_in(Client(low), "ann", **at(OWNER))
        assert refused.status_code == 200 and GENERIC in await refused.get_data(as_text=True)
        assert (await events_of(low, "authn_login_fail"))[-1].details["reason"] == "locked"
        locks = await events_of(low, "authn_login_lock")
        assert [(e.ip, e.details["scope"]) for e in locks] == [
            (STRANGER, "address"), ("203.0.113.1", "address"), ("203.0.113.2", "account")]


async def test_a_locked_address_unlocks_after_the_lock_time(app: Any) -> None:
    await make_user(app, "ann")
    await guess(app, STRANGER, 5)
    assert (await log_in(Client(app), "ann", **at(OWNER))).status_code == 302  # not locked
    pair = await failure_row(app, "ann", STRANGER)
    assert pair is not None and pair.locked_until is not None
    assert timedelta(minutes=14) < pair.locked_until - clock.now() <= timedelta(minutes=15)
    clock.advance(pair.locked_until - clock.now() - timedelta(seconds=3))
    assert (await log_in(Client(app), "ann", **at(STRANGER))).status_code == 200
    clock.advance(timedelta(seconds=4))  # the lock lifts by its date alone
    assert (await log_in(Client(app), "ann", **at(STRANGER))).status_code == 302
    assert await failure_row(app, "ann", STRANGER) is None  # a success forgets the count


async def test_lock_mails_come_once_per_period_but_the_lock_for_everyone_always(
    settings_overrides: dict[str, Any],
) -> None:
    low = create_app({**settings_overrides, "login_account_lock_threshold": 12})
    async with low.test_app():
        await make_user(low, "ann")
        await guess(low, "203.0.113.1", 5)
        await guess(low, "203.0.113.2", 5)  # a second address locked: no second mail
        assert await queued_mail(low, "account_locked") == 1
        await guess(low, "203.0.113.3", 2)  # the twelfth: locked for everyone, mailed
        assert await queued_mail(low, "account_locked") == 2
        clock.advance(timedelta(minutes=16))
        await guess(low, "203.0.113.4", 5)  # a new period: mailed again
        assert await queued_mail(low, "account_locked") == 3


@pytest.mark.parametrize(("ip", "key"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4 as a dual-stack socket reports it
    ("", ""),
])
def test_addresses_are_counted_by_network_for_ipv6(ip: str, key: str) -> None:
    assert accounts.address_key(ip) == key


async def test_rotating_ipv6_addresses_in_one_network_does_not_help(app: Any) -> None:
    await make_user(app, "ann")
    for host in range(1, 6):
        await guess(app, f"2001:db8:1:2::{host}")
    assert (await log_in(Client(app), "ann", **at("2001:db8:1:3::1"))).status_code == 302
    assert (await log_in(Client(app), "ann", **at("2001:db8:1:2::99"))).status_code == 200
    pair = await failure_row(app, "ann", "2001:db8:1:2::/64")
    assert pair is not None and pair.failures == 5 and pair.locked_until is not None


async def test_stale_counts_are_purged_and_live_ones_kept(app: Any) -> None:
    assert "purge_stale_failures" in [job.__name__ for job in tasks.JOBS]
    rt = app.extensions["electro"]
    await make_user(app, "ann")
    await guess(app, "203.0.113.1", 5)  # locked for 15 minutes
    clock.advance(timedelta(minutes=10))
    await guess(app, "203.0.113.2", 1)
    clock.advance(timedelta(minutes=6))  # the first window and lock have passed
    async with rt.sessions.begin() as db:
        assert await accounts.purge_stale_failures(db, rt.settings) == 1
    assert await failure_row(app, "ann", "203.0.113.1") is None
    assert await failure_row(app, "ann", "203.0.113.2") is not None
    async with rt.sessions.begin() as db:
        await db.execute(delete(User))
    assert await count_rows(app, LoginFailure) == 0  # ON DELETE CASCADE


async def test_a_failure_for_a_deleted_account_counts_nothing(app: Any) -> None:
    rt = app.extensions["electro"]
    ann = await make_user(app, "ann")
    async with rt.sessions.begin() as db:
        await db.execute(delete(User))
    async with rt.sessions.begin() as db:
        assert await accounts.record_failure(db, rt.settings, ann, STRANGER) is False
    assert await count_rows(app, LoginFailure) == 0


@pytest.mark.parametrize("values", [
    {"ELECTRO_LOGIN_ACCOUNT_LOCK_THRESHOLD": "5"},
    {"ELECTRO_LOGIN_LOCK_THRESHOLD": "60"},
    {"ELECTRO_LOGIN_LOCK_THRESHOLD": "0"},
])
def test_the_account_threshold_must_exceed_the_address_threshold(
    values: dict[str, str],
) -> None:
    assert load_settings(environ={}).login_account_lock_threshold == 50
    with pytest.raises(SettingsError, match=r"ELECTRO_LOGIN_ACCOUNT_LOCK_THRESHOLD .* must be "
                                             r"greater than ELECTRO_LOGIN_LOCK_THRESHOLD"):
        load_settings(environ=values)
