"""``electro create-admin`` through the real command, on the test database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from electro import cli
from electro.config import load_settings
from electro.db import make_engine, make_sessionmaker
from electro.models import Event, User
from electro.security.passwords import Passwords

GOOD_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("ELECTRO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELECTRO_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.setenv("ELECTRO_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ELECTRO_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("ELECTRO_ARGON2_PARALLELISM", "1")
    monkeypatch.delenv("ELECTRO_ADMIN_PASSWORD", raising=False)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the operator types at the password prompts (no echo: getpass)."""
    answers: list[str] = []
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    yield answers
    assert not answers, "every typed answer was asked for"


async def run(*argv: str) -> int:
    # The command runs its own event loop (asyncio.run), so it cannot share the test's.
    return await asyncio.to_thread(cli.main, ["create-admin", *argv])


async def all_users(db: AsyncSession) -> list[User]:
    return list(await db.scalars(select(User).order_by(User.id)))


async def test_creates_an_active_admin_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ELECTRO_ADMIN_PASSWORD", GOOD_PASSWORD)
    assert await run("--username", "Root.Admin", "--email", "Root@Electro.Example") == 0
    assert "admin account created: Root.Admin <root@electro.example>" in capsys.readouterr().out
    [user] = await all_users(db)
    assert (user.username, user.email) == ("Root.Admin", "root@electro.example")
    assert user.is_admin and user.is_active
    assert user.password_hash.startswith("$argon2id$")
    assert await Passwords(load_settings()).verify(user.password_hash, GOOD_PASSWORD)
    event = await db.scalar(select(Event).where(Event.type == "user_created"))
    assert event is not None
    assert event.details == {"user_id": user.id, "username": "Root.Admin", "is_admin": True}
    assert GOOD_PASSWORD not in str(event.details)


async def test_prompts_twice_without_echo(typed: list[str], db: AsyncSession) -> None:
    typed.extend([GOOD_PASSWORD, GOOD_PASSWORD])
    assert await run("--username", "boss", "--email", "boss@example.com") == 0
    [user] = await all_users(db)
    assert await Passwords(load_settings()).verify(user.password_hash, GOOD_PASSWORD)


async def test_refuses_differing_passwords(
    typed: list[str], db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    typed.extend([GOOD_PASSWORD, GOOD_PASSWORD + "!"])
    assert await run("--username", "boss", "--email", "boss@example.com") == 2
    assert "The two passwords differ." in capsys.readouterr().err
    assert await all_users(db) == []


@pytest.mark.parametrize(
    ("argv", "password", "message"),
    [
        (["--username", "ab", "--email", "a@example.com"], GOOD_PASSWORD, "3 to 32 characters"),
        (["--username", "bad name", "--email", "a@example.com"], GOOD_PASSWORD, "letters, digits"),
        (["--username", "boss", "--email", "not-an-address"], GOOD_PASSWORD, "not valid"),
        (["--username", "boss", "--email", "a@example.com"], "short", "at least 12 characters"),
        (["--username", "boss", "--email", "a@example.com"], "password1234", "most common"),
        (["--username", "boss", "--email", "a@example.com"], "boss-is-the-best-1", "username"),
    ],
)
async def test_refuses_bad_input_with_a_clear_message(
    argv: list[str],
    password: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    db: AsyncSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ELECTRO_ADMIN_PASSWORD", password)
    assert await run(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("not created: ") and message in err
    assert await all_users(db) == []


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["--username", "BOSS", "--email", "other@example.com"], "username"),
        (["--username", "other", "--email", "Boss@EXAMPLE.com"], "e-mail address"),
    ],
)
async def test_refuses_a_taken_username_or_email_ignoring_case(
    argv: list[str],
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    db: AsyncSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ELECTRO_ADMIN_PASSWORD", GOOD_PASSWORD)
    assert await run("--username", "boss", "--email", "boss@example.com") == 0
    assert await run(*argv) == 2
    assert f"That {what} is already taken." in capsys.readouterr().err
    assert [u.username for u in await all_users(db)] == ["boss"]


async def test_generates_a_password_only_when_there_is_no_admin(
    db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("--username", "admin", "--email", "admin@electro.example", "--generate-if-no-admin")
    assert await run(*argv) == 0
    out = capsys.readouterr().out
    match = re.search(r"username: admin\n  password: (\S+)\n", out)
    assert match, out
    [user] = await all_users(db)
    assert user.is_admin and user.is_active
    assert await Passwords(load_settings()).verify(user.password_hash, match.group(1))

    assert await run(*argv) == 0
    assert capsys.readouterr().out == "admin account exists\n"
    assert len(await all_users(db)) == 1



async def test_the_first_run_says_how_to_set_up_two_factor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make run`'s admin must enrol before the admin pages (SPEC B4): its output says how."""
    argv = ("--username", "admin", "--email", "admin@electro.example", "--generate-if-no-admin")
    assert await run(*argv) == 0
    out = capsys.readouterr().out
    assert "two-factor: required for admins" in out and "/account/two-factor" in out
    assert "ELECTRO_ADMIN_TWO_FACTOR=optional" in out


async def test_with_two_factor_optional_nothing_is_said_about_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ELECTRO_ADMIN_TWO_FACTOR", "optional")
    argv = ("--username", "admin", "--email", "admin@electro.example", "--generate-if-no-admin")
    assert await run(*argv) == 0
    assert "two-factor" not in capsys.readouterr().out
