"""Pages and fragments rendered once for everyone (issue 12), and their validators.

A render for everyone has no request-specific bits: where the asker's own go (the CSRF token in
forms and in htmx's headers, the header's basket count, the header's account links) it holds a
slot, an HTML comment that escaped user text can never contain, and ``personalise`` fills them
in per response. So anonymous and signed-in shoppers share one render; only a visitor with a
notice waiting (flashed messages are the visitor's own) gets a page of their own. Search result
fragments use the same render (worker_cache).

The shopper pages (home, category, product) are kept per catalogue version by the worker's
cache (electro.services.worker_cache): after a change anywhere they are at most
``search_cache_seconds`` stale, and this worker's own changes show at once.

Every such page answers a conditional GET: its ``ETag`` is a digest of the body as sent (so it
covers the visitor's own token and basket count, not only the catalogue version) and it is
``private, no-cache``: a browser keeps it and asks again, a shared cache does not keep it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from markupsafe import Markup
from quart import Response, g, render_template, request, session

from electro.web import db, is_htmx, runtime
from electro.web.csrf import CSRF_SLOT, csrf_token

SHARED_RENDER = "electro_shared_render"  # g flag: the template being rendered is for everyone
BASKET_SLOT = Markup("<!--basket-count-->")
ACCOUNT_SLOT = Markup("<!--account-links-->")
# The trending top 10 moves apart from the catalogue: pages that show it (home, search) hold
# this slot and put it in per response (it is kept for search_cache_seconds).
TRENDING_SLOT = Markup("<!--trending-->")
ACCOUNT_LINKS = "partials/account_links.html"
# The header's account links for (signed in, admin), rendered once per worker with CSRF slots:
# the template never changes while the app runs.
_account_links: dict[tuple[bool, bool], str] = {}
FLASHES = "_flashes"  # where Quart keeps flashed messages in the session


def rendering_for_everyone() -> bool:
    return bool(g.get(SHARED_RENDER))


def form_token() -> str:
    """For templates: the asker's CSRF token, or its slot in a render for everyone."""
    return CSRF_SLOT if rendering_for_everyone() else csrf_token()


async def render_for_everyone(template: str, **context: Any) -> str:
    """``template`` with slots for the asker's own bits (see the module's docstring)."""
    outer = g.get(SHARED_RENDER, False)
    setattr(g, SHARED_RENDER, True)
    try:
        return await render_template(template, **context)
    finally:
        setattr(g, SHARED_RENDER, outer)


async def personalise(html: str) -> str:
    """A render for everyone, with this asker's account links, CSRF token and basket count."""
    if ACCOUNT_SLOT in html:
        html = html.replace(ACCOUNT_SLOT, await _links_for_asker())
    if CSRF_SLOT in html:
        html = html.replace(CSRF_SLOT, csrf_token())
    if BASKET_SLOT in html:
        html = html.replace(BASKET_SLOT, str(g.get("basket_count", 0)))
    return html


async def _links_for_asker() -> str:
    account = g.get("account")
    role = (account is not None, account is not None and account.user.is_admin)
    if role not in _account_links:
        _account_links[role] = await render_for_everyone(
            ACCOUNT_LINKS, signed_in=role[0], is_admin=role[1])
    return _account_links[role]


async def shopper_page(
    page: str, fragment: str, context: Callable[[], Awaitable[dict[str, Any]]],
    slots: dict[Markup, str] | None = None,
) -> Response:
    """The page (or for htmx the fragment) with ``context()``: for a visitor without notices
    rendered once per catalogue version and URL, else for this visitor.
    ``slots``: parts that change apart from the catalogue, put in per response."""
    template = fragment if is_htmx() else page
    if not session.get(FLASHES):
        async def render() -> str:
            return await render_for_everyone(template, **await context())

        html = await runtime().worker_cache.remembered(
            db, ("page", template, request.full_path), render)
    else:
        html = await render_template(template, **await context())
    for slot, value in (slots or {}).items():
        html = html.replace(slot, value)
    response = Response(await personalise(html), content_type="text/html; charset=utf-8")
    response.headers.add("Vary", "HX-Request")
    return await validated(response)


async def validated(response: Response) -> Response:
    """An ETag on the body as sent, and 304 to a matching conditional GET."""
    body = await response.get_data(as_text=False)
    response.set_etag(hashlib.blake2b(body, digest_size=16).hexdigest())
    response.headers["Cache-Control"] = "private, no-cache"
    return await response.make_conditional(request)
