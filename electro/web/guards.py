"""Who is signed in, checked on every request, and the guards for routes (SPEC A4, A5).

quart-auth only signs the cookie; ``ElectroUser`` turns its ``auth_id`` into a live server-side
session (electro.services.sessions) once per request, before the view runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from quart import Response, current_app, g, redirect, request
from quart_auth import AuthUser, login_user, logout_user
from werkzeug.exceptions import Forbidden, Unauthorized

from electro.models import User
from electro.services import events, sessions, two_factor
from electro.services.sessions import SignedIn
from electro.web import (
    db,
    is_api_path,
    is_htmx,
    origin,
    own_transaction,
    runtime,
)
from electro.web.csrf import rotate_csrf_token

P = ParamSpec("P")
T = TypeVar("T")


class ElectroUser(AuthUser):
    """quart-auth's user: authenticated only while its server-side session is live."""

    def __init__(self, auth_id: str | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(auth_id, *args, **kwargs)
        self._checked = False
        self._account: SignedIn | None = None

    async def account(self) -> SignedIn | None:
        if not self._checked:
            self._checked = True
            if self.auth_id is not None:
                self._account = await _check(self.auth_id)
        return self._account

    @property
    async def is_authenticated(self) -> bool:
        return await self.account() is not None


async def _check(token: str) -> SignedIn | None:
    rt = runtime()
    result = await sessions.resolve(db(), rt.settings, token, origin())
    if isinstance(result, SignedIn):
        return result
    if result.reason != "unknown":
        # The ending and its event must stick even if this request ends in an error that rolls
        # its transaction back.
        async with own_transaction() as own:
            await sessions.end_refused(own, result, origin())
    logout_user()  # the cookie is worthless now: delete it
    return None


async def current_account() -> SignedIn | None:
    """The signed-in account for this request, or None (checked once per request). The API
    never takes a cookie as authentication, only a Bearer token (electro.web.bearer), so a
    forged cross-site request to it carries no credential: none is signed in there."""
    if is_api_path(request.path):
        return None
    user = current_app.extensions["QUART_AUTH"][0].load_user()
    if not isinstance(user, ElectroUser):
        return None
    return await user.account()


async def signed_in() -> SignedIn:
    """The account of a request behind login_required or admin_required (they ran first; this
    only narrows the type, and refuses if a view is ever left unguarded)."""
    account = await current_account()
    if account is None:
        raise Unauthorized()
    return account


async def acting() -> events.Actor:
    """The signed-in account and this request's origin, for the events of what it does."""
    user = (await signed_in()).user
    return events.Actor(user.id, user.username, **origin())


async def load_account() -> None:
    """before_request: every request with a session cookie re-checks it (A5), and templates
    see ``g.account``. Static files need no account: no query for them."""
    g.account = None if request.endpoint == "static" else await current_account()


def sign_in(token: str) -> None:
    """After sessions.start_session: write the cookie; a fresh CSRF token (no fixation)."""
    login_user(ElectroUser(token))
    rotate_csrf_token()


async def sign_out() -> None:
    """End the session on the server, not only in the browser."""
    user = current_app.extensions["QUART_AUTH"][0].load_user()
    if user.auth_id is not None:
        await sessions.end_session_by_token(db(), user.auth_id, "logout")
    logout_user()
    rotate_csrf_token()


def local_path(target: str | None, default: str = "/") -> str:
    """Only same-site paths for ``next`` (no open redirect to //evil.example). Browsers drop
    tabs and line breaks from a URL and read a backslash as a slash, so "/", a tab, then
    "/evil.example" would also leave the site: a control character or backslash refuses it.
    What passes is sent percent-encoded: a look-alike such as '／' (U+FF0F) reaches the browser
    as %EF%BC%8F, plainly part of the path."""
    if (target and target.startswith("/") and not target.startswith("//")
            and not any(c < " " or c in "\\\x7f" for c in target)):
        return quote(target, safe="/?&=%#:;@+,!$'()*~-._")
    return default


def login_redirect() -> Response:
    """To the log-in page, coming back afterwards; htmx gets HX-Redirect so a login form is
    never swapped into a table cell."""
    target = "/login?next=" + quote(request.full_path.rstrip("?"), safe="/")
    if is_htmx():
        return Response("", 401, headers={"HX-Redirect": target})
    return redirect(target)  # type: ignore[return-value]


def enrol_redirect() -> Response:
    """To /account/two-factor, coming back afterwards (htmx: HX-Redirect, as login_redirect)."""
    target = "/account/two-factor?next=" + quote(request.full_path.rstrip("?"), safe="/")
    if is_htmx():
        return Response("", 403, headers={"HX-Redirect": target})
    return redirect(target)  # type: ignore[return-value]


def _guard(
    view: Callable[P, Awaitable[T]], allowed: Callable[[User], bool], *,
    admin: bool = False,
) -> Callable[P, Awaitable[T | Response]]:
    @wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | Response:
        account = await current_account()
        if account is None:
            return login_redirect()
        if not allowed(account.user):
            raise Forbidden()
        if (admin and runtime().settings.admin_two_factor == "required"
                and not await two_factor.is_enabled(db(), account.user.id)):
            return enrol_redirect()
        return await view(*args, **kwargs)

    return wrapper


def login_required(view: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | Response]]:
    """Below the route and rate-limit decorators: anonymous users go to /login."""
    return _guard(view, lambda _user: True)


def admin_required(view: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | Response]]:
    """Anonymous users go to /login; signed-in non-admins get 403 (recorded as authz_fail);
    with ELECTRO_ADMIN_TWO_FACTOR=required, an admin without two-factor goes to enrol first
    (SPEC B4), whatever the page or action."""
    return _guard(view, lambda user: user.is_admin, admin=True)
