"""Group actions on ticked rows (SPEC D2): set-based, guarded, each recorded as one event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from electro import clock
from electro.errors import InvalidInput
from electro.models import AccountBlock, Backup, Event, IpBlock, OutboxMail, User, UserSession
from electro.services.admin import crud
from electro.services.admin.accounts import LockOut
from electro.services.admin.crud import MAX_IDS, parse_ids
from electro.services.admin.fields import parse_when
from electro.services.admin.tables import TABLES
from electro.services.events import Actor
from tests.support import Client, Mailbox, body_of, make_user, sign_in
from tests.support.admin import act, fetch, hidden, one, seed_every_table, seed_users


async def admin_id(app: Any) -> int:
    return int((await fetch(app, select(User.id).where(User.username == "admin")))[0][0])


async def test_deactivate_ends_the_accounts_sessions_at_once(
    app: Any, admin_client: Client
) -> None:
    bob = await make_user(app, "bob", is_admin=True)  # an admin: his next request is guarded
    bob_client = Client(app)
    await sign_in(app, bob_client, bob)
    assert (await bob_client.get("/admin/tables")).status_code == 200
    status, html, response = await act(admin_client, "users", "deactivate", [bob.id])
    assert status == 200 and "Deactivated 1 account; ended 1 session." in html
    assert response.headers["HX-Trigger"] == "admin-changed"
    refused = await bob_client.get("/admin/tables")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert (await one(app, User, bob.id)).is_active is False
    status, html, _ = await act(admin_client, "users", "activate", [bob.id])
    assert status == 200 and "Activated 1 account." in html
    assert (await one(app, User, bob.id)).is_active


async def test_each_action_records_one_event_with_actor_table_and_ids(
    app: Any, admin_client: Client
) -> None:
    ids = await seed_users(app, 3)
    await act(admin_client, "users", "deactivate", ids)
    rows = await fetch(app, select(Event.actor, Event.actor_id, Event.details)
                       .where(Event.type == "admin_deactivate"))
    assert len(rows) == 1
    actor, actor_id, details = rows[0]
    assert (actor, actor_id) == ("admin", await admin_id(app))
    assert details["table"] == "users" and details["ids"] == ids and details["count"] == 3


@pytest.mark.parametrize("action", ["deactivate", "delete", "remove_admin"])
async def test_an_admin_cannot_lock_themselves_out(
    app: Any, admin_client: Client, action: str
) -> None:
    me = await admin_id(app)
    others = await seed_users(app, 2)
    status, html, _ = await act(admin_client, "users", action, [me, *others])
    assert status == 422 and "your own account" in html
    user = await one(app, User, me)
    assert user.is_active and user.is_admin
    assert [u for (u,) in await fetch(app, select(User.id).where(User.id.in_(others)))] == others
    assert await fetch(app, select(Event.id).where(Event.type == f"admin_{action}")) == []
    assert (await admin_client.get("/admin/tables")).status_code == 200


async def test_inline_edit_cannot_deactivate_yourself(app: Any, admin_client: Client) -> None:
    """The rule holds on the inline edit as on the group actions (issue 11, finding 3)."""
    me = await admin_id(app)
    editor = await admin_client.get(f"/admin/tables/users/{me}/edit", htmx=True)
    version = hidden(await editor.get_data(as_text=True), "version")
    response = await admin_client.post(f"/admin/tables/users/{me}/edit",
                                       {"version": version, "is_active": "no"}, htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 422 and 'class="row-editor"' in html
    assert "You cannot deactivate your own account." in html
    active_admins = select(func.count()).select_from(User).where(
        User.is_admin.is_(True), User.is_active.is_(True))
    assert (await fetch(app, active_admins))[0][0] == 1
    assert await fetch(app, select(Event.id).where(Event.type == "admin_update")) == []
    assert (await admin_client.get("/admin/tables")).status_code == 200


async def test_the_last_active_admin_is_never_demoted(app: Any) -> None:
    """Through the service with an actor who is not an admin (say a script): the guard still
    keeps one active admin."""
    (lone,) = await seed_users(app, 1, prefix="boss", is_admin=True)
    script = Actor(None, "script")
    async with app.extensions["electro"].sessions.begin() as db:
        for action in ("remove_admin", "deactivate", "delete"):
            with pytest.raises(LockOut, match="no active admin"):
                await crud.run_action(db, app.extensions["electro"].settings,
                                      TABLES["users"], action, [str(lone)], {}, actor=script)
    assert (await one(app, User, lone)).is_admin


async def test_make_and_remove_admin(app: Any, admin_client: Client) -> None:
    ids = await seed_users(app, 2)
    status, html, _ = await act(admin_client, "users", "make_admin", ids)
    assert status == 200 and "Made 2 accounts admin." in html
    assert {a for (a,) in await fetch(app, select(User.is_admin).where(User.id.in_(ids)))} == {
        True}
    status, html, _ = await act(admin_client, "users", "remove_admin", ids[:1])
    assert status == 200 and "Removed admin rights from 1 account." in html
    assert not (await one(app, User, ids[0])).is_admin and (await one(app, User, ids[1])).is_admin


async def test_delete_inactive_counts_first_then_deletes_only_inactive_accounts(
    app: Any, admin_client: Client
) -> None:
    active = await seed_users(app, 2, prefix="on")
    inactive = await seed_users(app, 3, prefix="off", is_active=False)
    ticked = [*active, *inactive[:2]]
    status, html, response = await act(admin_client, "users", "delete_inactive", ticked)
    assert status == 200 and "2 of the 4 ticked accounts are inactive" in html
    assert "HX-Trigger" not in response.headers and 'name="confirmed" value="1"' in html
    assert len(await fetch(app, select(User.id).where(User.id.in_(ticked)))) == 4
    status, html, _ = await act(admin_client, "users", "delete_inactive", ticked, confirmed="1")
    assert status == 200 and "Deleted 2 inactive accounts." in html
    left = {u for (u,) in await fetch(app, select(User.id))}
    assert set(active) <= left and inactive[2] in left and not set(inactive[:2]) & left


async def test_delete_users_takes_their_sessions_along(app: Any, admin_client: Client) -> None:
    ann = await make_user(app, "ann")
    ann_client = Client(app)
    await sign_in(app, ann_client, ann)
    status, html, _ = await act(admin_client, "users", "delete", [ann.id])
    assert status == 200 and "Deleted 1 row." in html
    assert await fetch(app, select(UserSession.id).where(UserSession.user_id == ann.id)) == []


async def test_send_test_mail_goes_through_the_outbox_to_smtp(
    app: Any, admin_client: Client, mailbox: Mailbox
) -> None:
    ann = await make_user(app, "ann")
    bob = await make_user(app, "bob")
    status, html, _ = await act(admin_client, "users", "send_test_mail", [ann.id, bob.id])
    assert status == 200 and "Queued 2 test e-mails." in html
    (message,) = await mailbox.wait_for("ann@example.com")
    assert message["Subject"] == "E-lectro test e-mail" and "Hello ann," in body_of(message)
    await mailbox.wait_for("bob@example.com")
    assert len(await fetch(app, select(OutboxMail.id))) == 2


async def test_lift_blocks_and_end_sessions(app: Any, admin_client: Client) -> None:
    await seed_every_table(app)
    (block,) = [b for (b,) in await fetch(app, select(IpBlock.id))]
    status, html, _ = await act(admin_client, "ip_blocks", "lift", [block])
    assert status == 200 and "Lifted 1 block." in html
    assert (await one(app, IpBlock, block)).lifted_at is not None
    status, html, _ = await act(admin_client, "ip_blocks", "lift", [block])
    assert status == 200 and "Lifted 0 blocks." in html  # already lifted: history stays as it was
    async with app.extensions["electro"].sessions.begin() as db:  # a block already over
        over = IpBlock(ip="198.51.100.4", until=clock.now() - timedelta(days=1), reason="old")
        db.add(over)
    status, html, _ = await act(admin_client, "ip_blocks", "lift", [over.id])
    assert "Lifted 0 blocks." in html
    assert (await one(app, IpBlock, over.id)).lifted_at is None  # history keeps its own end
    ann = await make_user(app, "ann", is_admin=True)
    ann_client = Client(app)
    await sign_in(app, ann_client, ann)
    (session,) = [s for (s,) in await fetch(
        app, select(UserSession.id).where(UserSession.user_id == ann.id))]
    status, html, _ = await act(admin_client, "sessions", "end", [session])
    assert status == 200 and "Ended 1 session." in html
    assert (await ann_client.get("/admin/tables")).status_code == 302


async def test_refusals_say_what_to_do(app: Any, admin_client: Client) -> None:
    ids = await seed_users(app, 1)
    assert "Choose an action." in (await act(admin_client, "users", "", ids))[1]
    assert "Choose an action." in (await act(admin_client, "users", "drop_table", ids))[1]
    status, html, _ = await act(admin_client, "users", "deactivate", [])
    assert status == 422 and "Tick at least one row." in html
    assert "Tick at least one row." in (await act(admin_client, "users", "activate", [99999]))[1]
    junk = await act(admin_client, "users", "activate", ["x", "-1", "1e3", "٣"])  # type: ignore[list-item]
    assert "Tick at least one row." in junk[1]


async def test_more_than_the_cap_is_refused_before_touching_anything(
    app: Any, admin_client: Client
) -> None:
    with pytest.raises(InvalidInput, match=r"At most 10,000 rows at a time; 10,001 were ticked."):
        parse_ids(str(i) for i in range(1, MAX_IDS + 2))
    # A form carries at most a page of ticks (200 rows): past the form's field limit it is
    # refused before it is read into the service at all.
    status, html, _ = await act(admin_client, "users", "deactivate", list(range(1, 1002)))
    assert status == 413 and "too many fields" in html
    assert (await admin_client.get("/admin/tables")).status_code == 200


async def test_an_action_without_javascript_answers_with_the_whole_page(
    app: Any, admin_client: Client
) -> None:
    ids = await seed_users(app, 2)
    status, html, _ = await act(admin_client, "users", "deactivate", ids, htmx=False,
                                q="u0000", sort="username", dir="asc", page="1")
    assert status == 200 and "<html" in html and "Deactivated 2 accounts" in html
    assert 'name="q" value="u0000"' in html  # back at the same place in the list


async def test_a_group_action_costs_the_same_statements_for_20_rows_as_for_900(
    app: Any, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mail sender stays asleep, so only the requests' own statements are counted.
    monkeypatch.setattr(app.extensions["electro"], "wake_jobs", None)
    few, many = await seed_users(app, 20, prefix="few"), await seed_users(app, 900)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def statements_for(action: str, ids: list[int]) -> int:
        statements.clear()
        status, html, _ = await act(admin_client, "users", action, ids, until=until)
        assert status == 200, html
        return len(statements)

    until = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    engine = app.extensions["electro"].engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await statements_for("activate", few)  # warm-up: first-request work (caches) aside
        for action in ("deactivate", "activate", "send_test_mail", "block_accounts",
                       "lift_account_blocks", "delete"):
            per_few = await statements_for(action, few)
            assert per_few == await statements_for(action, many) < 15, action
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (await fetch(app, select(func.count()).select_from(User)))[0][0] == 1
    assert (await fetch(app, select(func.count()).select_from(OutboxMail)))[0][0] == 1840


async def test_block_dates_in_forms_are_parsed_as_utc(app: Any) -> None:
    assert parse_when("2030-01-01T02:00+02:00") == datetime(2030, 1, 1, 0, 0)
    assert parse_when("2030-01-01 00:00") == datetime(2030, 1, 1, 0, 0)
    assert parse_when("2030-01-01T00:00:00.123") == datetime(2030, 1, 1)


async def test_block_until_a_date_refuses_the_blocked_session_at_once(
    app: Any, admin_client: Client, mailbox: Mailbox
) -> None:
    bob = await make_user(app, "bob", is_admin=True)
    bob_client = Client(app)
    await sign_in(app, bob_client, bob)
    until = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    status, html, _ = await act(admin_client, "users", "block_accounts", [bob.id],
                                until=until, reason="chargeback fraud")
    assert status == 200 and "Blocked 1 account until" in html
    refused = await bob_client.get("/admin/tables")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    block = (await fetch(app, select(AccountBlock)))[0][0]
    assert (block.user_id, block.reason, block.created_by_id) == (
        bob.id, "chargeback fraud", await admin_id(app))
    events = await fetch(app, select(Event.type, Event.actor, Event.path)
                         .where(Event.type.like("admin_%")))
    # One event, the blocking service's, naming the admin and the request like every other.
    assert events == [("admin_block_accounts", "admin", "/admin/tables/users/actions")]
    assert "chargeback fraud" in body_of((await mailbox.wait_for("bob@example.com"))[0])

    status, html, _ = await act(admin_client, "users", "lift_account_blocks", [bob.id])
    assert status == 200 and "Lifted 1 block." in html
    assert (await fetch(app, select(AccountBlock.lifted_at)))[0][0] is not None
    await sign_in(app, bob_client, bob)
    assert (await bob_client.get("/admin/tables")).status_code == 200


@pytest.mark.parametrize(("until", "message"), [
    ("", "Enter a date and time like"),
    ("next week", "Enter a date and time like"),
    ("2001-01-01T00:00", "must end in the future"),
])
async def test_block_needs_a_future_date(
    app: Any, admin_client: Client, until: str, message: str
) -> None:
    ids = await seed_users(app, 1)
    status, html, _ = await act(admin_client, "users", "block_accounts", ids, until=until)
    assert status == 422 and message in html
    assert await fetch(app, select(AccountBlock.id)) == []


async def test_an_admin_cannot_block_themselves(app: Any, admin_client: Client) -> None:
    until = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    status, html, _ = await act(admin_client, "users", "block_accounts", [await admin_id(app)],
                                until=until)
    assert status == 422 and "You cannot block your own account." in html
    assert await fetch(app, select(AccountBlock.id)) == []


async def test_make_a_backup_then_restore_it_from_the_backups_table(
    app: Any, admin_client: Client
) -> None:
    status, html, _ = await act(admin_client, "backups", "make_backup", [])
    assert status == 200 and "Backup electro-backup-" in html
    (backup_id, filename) = (await fetch(app, select(Backup.id, Backup.filename)))[0]
    assert (app.extensions["electro"].settings.backup_folder / filename).exists()
    types = [t for (t,) in await fetch(app, select(Event.type))]
    assert "backup_created" in types and "admin_make_backup" not in types  # the service's one
    await seed_users(app, 3, prefix="late")  # made after the backup: the restore drops them
    # The action only asks, with the backups page's own typed-RESTORE form: one restore path.
    for confirmed in ("", "1"):  # a second click on the action restores nothing either
        status, html, response = await act(admin_client, "backups", "restore", [backup_id],
                                           confirmed=confirmed)
        assert status == 200 and f"Restoring {filename} replaces every table" in html
        assert f'action="/admin/backups/{backup_id}/restore"' in html
        assert 'name="confirm" placeholder="type RESTORE"' in html
        assert 'name="confirmed"' not in html and "HX-Trigger" not in response.headers
    assert len(await fetch(app, select(User.id).where(User.username.like("late%")))) == 3
    # That form's post is the backups page's: a wrong word is refused and recorded...
    refused = await admin_client.post(f"/admin/backups/{backup_id}/restore", {"confirm": "yes"})
    assert refused.status_code == 422 and "Type RESTORE" in await refused.get_data(as_text=True)
    assert [t for (t,) in await fetch(app, select(Event.type).where(
        Event.type == "admin_backup_refused"))] == ["admin_backup_refused"]
    # ...and RESTORE restores.
    done = await admin_client.post(f"/admin/backups/{backup_id}/restore", {"confirm": "RESTORE"})
    assert done.status_code == 200 and "safety" in await done.get_data(as_text=True)
    assert await fetch(app, select(User.id).where(User.username.like("late%"))) == []
    # The events table is the backup's again, plus the restore's own event.
    types = [t for (t,) in await fetch(app, select(Event.type))]
    assert "backup_restored" in types and "admin_restore" not in types
    # Restored sessions all end, the admin's too: signing in again is the way back.
    assert (await admin_client.get("/admin/tables")).headers["Location"].startswith("/login")


async def test_restore_needs_exactly_one_sound_backup(app: Any, admin_client: Client) -> None:
    await act(admin_client, "backups", "make_backup", [])
    await act(admin_client, "backups", "make_backup", [])
    rows = await fetch(app, select(Backup.id, Backup.filename).order_by(Backup.id))
    status, html, _ = await act(admin_client, "backups", "restore", [r[0] for r in rows])
    assert status == 422 and "Tick exactly one backup to restore." in html
    (app.extensions["electro"].settings.backup_folder / rows[0][1]).write_bytes(b"not a backup")
    await seed_users(app, 1, prefix="kept")
    response = await admin_client.post(f"/admin/backups/{rows[0][0]}/restore",
                                       {"confirm": "RESTORE"})
    assert response.status_code == 422
    assert "Nothing was restored" in await response.get_data(as_text=True)
    assert len(await fetch(app, select(User.id).where(User.username.like("kept%")))) == 1
