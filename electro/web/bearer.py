"""Who an API request speaks for: the personal access token in ``Authorization: Bearer …``,
never a cookie (so the API needs no CSRF token). Resolved once per request and kept on ``g``:
the rate limiter asks first (a working token is limited as itself, anything else by address),
then the view."""

from __future__ import annotations

from quart import g, request
from werkzeug.exceptions import Unauthorized

from electro.services import api_tokens
from electro.services.api_tokens import Bearer
from electro.web import Explained, db, is_api_path, origin

_RESOLVED = "electro_bearer"  # on g: the Bearer, or None once looked up


def presented_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


async def current_bearer() -> Bearer | None:
    """The working token of this API request, or None (none sent, or one that does not work)."""
    if _RESOLVED not in g:
        clear = presented_token() if is_api_path(request.path) else None
        setattr(g, _RESOLVED, None if clear is None
                else await api_tokens.authenticate(db(), clear, origin()))
    bearer: Bearer | None = g.get(_RESOLVED)
    return bearer


class TokenRequired(Explained, Unauthorized):
    description = ("Send a personal access token as 'Authorization: Bearer <token>'; create one "
                   "on your account page. Expired and revoked tokens do not work.")


async def required_bearer() -> Bearer:
    bearer = await current_bearer()
    if bearer is None:
        raise TokenRequired()
    return bearer
