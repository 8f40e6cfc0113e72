"""The skeleton: pages, headers, CSRF, errors, htmx vendoring, settings, migrations."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from electro.app import create_app
from electro.config import SettingsError, load_settings, with_secret_key
from electro.db import Base, make_engine
from electro.migrate import current_revision, head_revision, include_name, upgrade
from electro.models import Category, Event
from tests.support import PG_URL, Client

HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
ROOT = Path(__file__).resolve().parents[2]


def test_vendored_htmx_is_the_pinned_release() -> None:
    data = (ROOT / "static" / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256


async def test_a_static_file_name_the_file_system_refuses_is_a_404(client: Any) -> None:
    """Past the length a file name may have (found by the fuzz walk: it was a 500)."""
    for name in ("x" * 300, "a/" * 2100 + "b", "htmx.min.js\x00", "../README.md"):
        response = await client.get("/static/" + quote(name))
        assert response.status_code == 404, name
        assert 'role="alert"' in await response.get_data(as_text=True)


async def test_home_page_lists_categories_with_htmx_configured(app: Any, client: Any) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        db.add(Category(name="Cameras & <Lenses>"))
    response = await client.get("/")
    body = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Cameras &amp; &lt;Lenses&gt;" in body  # autoescaped
    assert '"allowEval": false' in body and '"selfRequestsOnly": true' in body
    assert "/static/htmx.min.js" in body
    assert "HX-Request" in response.headers["Vary"]


async def test_htmx_request_gets_only_the_fragment(client: Any) -> None:
    page = await (await client.get("/")).get_data(as_text=True)
    fragment = await (await client.get("/", htmx=True)).get_data(as_text=True)
    assert "<html" in page and 'id="categories"' in page
    assert "<html" not in fragment and 'id="categories"' in fragment
    restore = await client.get(
        "/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in await restore.get_data(as_text=True)


async def test_security_headers_on_every_response(client: Any) -> None:
    for path in ("/", "/healthz", "/no-such-page"):
        h = (await client.get(path)).headers
        assert "script-src" not in h["Content-Security-Policy"]  # default-src 'self' only
        assert "default-src 'self'" in h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "unsafe" not in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Cross-Origin-Opener-Policy"] == "same-origin"


async def test_session_cookie_is_httponly_lax_secure(client: Any) -> None:
    response = await client.get("/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


async def test_unsafe_request_without_csrf_token_is_refused(app: Any, client: Any) -> None:
    await client.refresh_token()
    no_token = await client.raw.post("/", form={})
    wrong = await client.raw.post("/", form={"csrf_token": "x" * 43})
    cross_site = await client.post("/", headers={"Sec-Fetch-Site": "cross-site"})
    # Not ASCII (a form field, or a Latin-1 header): refused like any wrong token, not a 500.
    accented = await client.raw.post("/", form={"csrf_token": "é" * 43})
    header = await client.raw.post("/", headers={"X-CSRF-Token": "é".encode().decode("latin-1")})
    for response in (no_token, wrong, cross_site, accented, header):
        assert response.status_code == 403
        assert "form expired" in await response.get_data(as_text=True)
    # With the right token the request passes the check and meets the route's method rule.
    assert (await client.post("/")).status_code == 405


async def test_errors_render_page_or_fragment_and_record_events(app: Any, client: Any) -> None:
    page = await client.get("/missing")
    fragment = await client.get("/missing", htmx=True)
    assert page.status_code == fragment.status_code == 404
    assert "<html" in await page.get_data(as_text=True)
    assert "<html" not in await fragment.get_data(as_text=True)
    async with app.extensions["electro"].sessions() as db:
        types = list(await db.scalars(select(Event.type)))
    assert types.count("http_not_found") == 2


async def test_a_busy_database_is_a_503_to_try_again(app: Any, client: Any) -> None:
    @app.get("/locked")
    async def locked() -> str:
        raise OperationalError("UPDATE products ...", {}, Exception("database is locked"))

    response = await client.get("/locked")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "try again" in await response.get_data(as_text=True)


async def test_text_the_database_cannot_hold_is_a_400_not_a_500(
    app: Any, admin_client: Client
) -> None:
    """A NUL character wherever a value reaches a query (found by the fuzz walk): PostgreSQL
    refuses it in text (SQLSTATE 22021), which was a 500 on every such route; SQLite takes it."""
    await admin_client.refresh_token()
    answers = [await admin_client.get("/admin/tables/users?q=a%00b"),
               await admin_client.post("/admin/tables/categories/add", {"name": "a\x00b"}),
               await admin_client.post("/login", {"login": "a\x00b", "password": "x"})]
    for response in answers:
        if PG_URL:
            assert response.status_code == 400
            assert "NUL character" in await response.get_data(as_text=True)
        else:
            assert response.status_code in (200, 303)


async def test_unexpected_exception_is_a_500_page_without_traceback(app: Any, client: Any) -> None:
    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals")

    response = await client.get("/boom")
    body = await response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in body and "Traceback" not in body
    assert "Something went wrong" in body


async def test_body_over_the_configured_limit_is_413(settings_overrides: dict[str, Any]) -> None:
    """ELECTRO_MAX_FORM_BYTES reaches the app through the factory, and a real route refuses
    a larger body with the 413 page."""
    app = create_app({**settings_overrides, "max_form_bytes": 1024})
    async with app.test_app():
        client = Client(app)
        await client.refresh_token()
        response = await client.raw.post("/login", data=b"x" * 5000, headers={
            "X-CSRF-Token": client.token, "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 413
        assert "too large" in await response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ELECTRO_DATABASE_URL": "not a url"}, "ELECTRO_DATABASE_URL"),
        ({"ELECTRO_DATABASE_URL": "mysql://x/y"}, r"sqlite\+aiosqlite or postgresql\+asyncpg"),
        ({"ELECTRO_SMTP_PORT": "twenty-five"}, "ELECTRO_SMTP_PORT must be a whole number"),
        ({"ELECTRO_SMTP_PORT": "70000"}, "ELECTRO_SMTP_PORT must be 1-65535"),
        ({"ELECTRO_COOKIE_SECURE": "maybe"}, "ELECTRO_COOKIE_SECURE"),
        ({"ELECTRO_BASE_URL": "example.com"}, "ELECTRO_BASE_URL"),
        ({"ELECTRO_SESSION_IP_POLICY": "lax"}, "ELECTRO_SESSION_IP_POLICY"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)


def test_settings_read_from_environment(tmp_path: Path) -> None:
    s = load_settings(environ={"ELECTRO_INSTANCE_DIR": str(tmp_path), "ELECTRO_SMTP_PORT": "2525",
                               "ELECTRO_COOKIE_SECURE": "0", "ELECTRO_RATE_LIMITS": "0"})
    assert (s.smtp_port, s.cookie_secure, s.rate_limits) == (2525, False, False)
    assert s.database == f"sqlite+aiosqlite:///{tmp_path / 'electro.db'}"


def test_generated_secret_key_is_kept_private_and_stable(tmp_path: Path) -> None:
    s = load_settings(environ={"ELECTRO_INSTANCE_DIR": str(tmp_path)})
    first, second = with_secret_key(s), with_secret_key(s)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_workers_starting_together_agree_on_one_generated_key(tmp_path: Path) -> None:
    """`electro serve --workers N` creates the app in N processes at once on a first start."""
    for attempt in range(10):
        s = load_settings(environ={"ELECTRO_INSTANCE_DIR": str(tmp_path / str(attempt))})
        start = threading.Barrier(8)

        def key(settings: Any = s, barrier: threading.Barrier = start) -> str:
            barrier.wait()
            return with_secret_key(settings).secret_key

        with ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _: key(), range(8)))
        assert len(keys) == 1 and len(keys.pop()) >= 48
        assert [p.name for p in (tmp_path / str(attempt)).iterdir()] == ["secret_key"]


# SQLite cannot reflect the lower(...) unique indexes; the migration creates them by hand.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_migrations_match_models_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)  # already at head: nothing to do
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    # The search index (0002) is dialect-specific DDL without a model.
                    MigrationContext.configure(c, opts={"include_name": include_name}),
                    Base.metadata,
                )
            )
        assert diff == []
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(Category)) == 0
    finally:
        await engine.dispose()


async def test_an_error_after_a_write_still_records_its_event(app: Any, user_client: Any) -> None:
    """The failed request's open write must not hold the (SQLite) lock against the event."""
    from sqlalchemy import update
    from werkzeug.exceptions import NotFound

    from electro.models import User
    from electro.web import db

    @app.get("/probe/write-then-fail")
    async def write_then_fail() -> str:
        await db().execute(update(User).where(User.id == -1).values(failed_logins=0))
        raise NotFound()

    response = await user_client.get("/probe/write-then-fail")
    assert response.status_code == 404
    assert 'href="/account"' in await response.get_data(as_text=True)  # still signed in
    async with app.extensions["electro"].sessions() as session:
        recorded = await session.scalar(
            select(func.count(Event.id)).where(Event.path == "/probe/write-then-fail")
        )
    assert recorded == 1
