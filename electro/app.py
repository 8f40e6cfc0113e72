"""The application factory."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader
from quart import Quart, Response, g, request
from quart_auth import QuartAuth
from quart_rate_limiter import RateLimit

from electro import errors as domain_errors
from electro import tasks
from electro.api import init_api
from electro.config import load_settings, parse_rate, with_secret_key
from electro.db import make_sessionmaker, opened, writing
from electro.security.passwords import Passwords
from electro.services.catalog import format_price
from electro.services.search import highlight
from electro.services.view_buffer import ViewBuffer
from electro.services.worker_cache import WorkerCache
from electro.web import (
    Runtime,
    account,
    admin,
    admin_newsletters,
    admin_tables,
    auth,
    basket,
    close_db,
    errors,
    finish_db,
    newsletter,
    orders,
    recovery,
    register,
    runtime,
    search,
    shop,
    system,
    two_factor,
)
from electro.web.bodies import bound_request_bodies
from electro.web.converters import IdConverter
from electro.web.csrf import check_csrf
from electro.web.guards import ElectroUser, load_account
from electro.web.headers import is_private_path, security_headers
from electro.web.ratelimit import AtomicRateLimiter, client_key, make_store
from electro.web.shared import (
    ACCOUNT_SLOT,
    BASKET_SLOT,
    form_token,
    render_for_everyone,
    rendering_for_everyone,
)

PACKAGE = Path(__file__).parent
STATIC = PACKAGE.parent / "static"


class Electro(Quart):
    """Quart, but a static file name the file system refuses is a 404 like any missing file:
    a name past its length limit raises OSError (ENAMETOOLONG) where Quart checks whether the
    file exists (pathlib answers False for the other odd names)."""

    async def send_static_file(self, filename: str) -> Response:
        try:
            return await super().send_static_file(filename)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise domain_errors.NotFound("There is no such file.") from None


def create_app(overrides: dict[str, Any] | None = None) -> Quart:
    """Defaults, then ``ELECTRO_*`` variables, then ``overrides`` (tests)."""
    settings = with_secret_key(load_settings(overrides=overrides))
    app = Electro(__name__, static_folder=str(STATIC))
    app.url_map.converters["int"] = IdConverter  # before any route is added
    # Pages by plain name ("index.html"), fragments as "partials/<name>.html".
    app.jinja_loader = FileSystemLoader([PACKAGE / "templates", PACKAGE])
    app.extensions["electro"] = Runtime(settings, Passwords(settings),
                                        WorkerCache(settings, render_for_everyone),
                                        ViewBuffer(settings))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        BODY_TIMEOUT=settings.body_timeout_seconds,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        QUART_RATE_LIMITER_ENABLED=settings.rate_limits,
        TEMPLATES_AUTO_RELOAD=False,
    )
    # Created here, not at module level: a shared instance keeps the first app's settings.
    QuartAuth(
        app,
        user_class=ElectroUser,
        cookie_secure=settings.cookie_secure,
        cookie_samesite="Lax",
        duration=settings.session_max_days * 86400,
    )
    count, seconds = parse_rate(settings.default_rate_limit)
    AtomicRateLimiter(
        app,
        key_function=client_key,
        store=make_store(settings.redis_url or None),
        default_limits=[RateLimit(count, timedelta(seconds=seconds))],
    )
    app.jinja_env.globals["csrf_token"] = form_token
    app.add_template_filter(format_price, "money")
    app.add_template_filter(highlight, "highlight")
    app.context_processor(_template_context)
    app.before_request(check_csrf)
    app.before_request(load_account)
    app.before_request(basket.load_basket_count)  # after the account is known
    app.after_request(security_headers(settings.cookie_secure))
    app.after_request(finish_db)
    app.teardown_appcontext(close_db)
    errors.register_error_handlers(app)
    for area in (shop, search, auth, account, two_factor, basket, orders, register, recovery,
                 newsletter, admin, admin_tables, admin_newsletters, system):
        app.register_blueprint(area.bp)
    init_api(app)
    bound_request_bodies(app, settings)
    # while_serving generators unwind in reverse: jobs stop before the engine is disposed.
    app.while_serving(_database)
    app.while_serving(tasks.run_while_serving)
    if settings.trusted_proxy_hops:
        from hypercorn.middleware import ProxyFixMiddleware

        app.asgi_app = ProxyFixMiddleware(  # type: ignore[method-assign]
            app.asgi_app, mode="legacy", trusted_hops=settings.trusted_proxy_hops
        )
    logging.basicConfig(level=logging.INFO)
    return app


async def _database() -> AsyncGenerator[None, None]:
    rt = runtime()
    async with opened(rt.settings.database) as rt.engine:
        rt.sessions = make_sessionmaker(rt.engine)
        try:
            yield
            sessions = rt.sessions
            await rt.view_buffer.flush(lambda: writing(sessions))  # the views this worker kept
        finally:
            rt.engine = rt.sessions = None


def _template_context() -> dict[str, Any]:
    """For every template: ``account`` (the signed-in SignedIn or None), ``private_page``
    (account and admin pages keep no htmx history cache), ``basket_count`` and
    ``account_slot`` (the header's; in a render for everyone, slots: electro.web.shared)."""
    shared = rendering_for_everyone()
    return {"account": None if shared else g.get("account"),
            "private_page": is_private_path(request.path),
            "basket_count": BASKET_SLOT if shared else g.get("basket_count", 0),
            "account_slot": ACCOUNT_SLOT if shared else None}
