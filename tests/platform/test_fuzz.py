"""A fuzz walk over the URL map (issue 11): hypothesis sends odd input to every route, every
method, as anonymous, a signed-in user and an admin, with valid CSRF tokens so requests get past
the guards, and every answer must be below 500, free of tracebacks, and a 4xx must say why.

The routes come from ``app.url_map`` and the field names from what the app reads (templates,
``.get("…")`` calls, the admin tables' declarations), so a route or field added later joins the
walk by itself.

Hypothesis drives sync functions only, and the app must live across examples (starting it per
example would cost more than the requests), so the test owns one event loop: the app starts on
it, and each example, a batch of requests, runs on it. The database keeps what the walk does
(rows it adds, accounts it deactivates): later requests meet that state, as a served shop would.
The size comes from the hypothesis profile (tests/conftest.py): ``ci`` by default,
``--hypothesis-profile=long`` for a long local run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from quart import request
from werkzeug.routing import Rule

import electro
from electro.app import STATIC, create_app
from electro.services.admin.tables import TABLES
from electro.services.registration import FIELDS
from electro.web import SAFE_METHODS
from electro.web.converters import IdConverter
from tests.support import TEST_PASSWORD, Client, make_user, sign_in
from tests.support.shop import CATALOGUE, add_catalogue

PACKAGE = Path(electro.__file__).parent
ROLES = ("anonymous", "user", "admin")
BATCH = 25  # requests per hypothesis example at most
ODD_METHODS = ("PUT", "DELETE", "PATCH")  # no route takes them: each must be a clear 405
RESTORE_ENDPOINT = "admin.backups_restore"
EXPORT_ENDPOINT = "admin.events_export"
T = TypeVar("T")


# ---------------------------------------------------------------- what the app reads


def _names_the_app_reads() -> list[str]:
    """Query and form field names: the templates' ``name="…"`` and field macros, every
    ``.get("…")`` / ``.getlist("…")`` / ``form_values("…")`` of the code, and the admin
    tables' editable fields and action inputs."""
    names: set[str] = set(FIELDS)
    for template in itertools.chain(PACKAGE.glob("templates/**/*.html"),
                                    PACKAGE.glob("partials/*.html")):
        text = template.read_text()
        names.update(re.findall(r'name="([a-z_]+)"', text))
        names.update(re.findall(r'field\("([a-z_]+)"', text))
    for module in PACKAGE.glob("**/*.py"):
        text = module.read_text()
        names.update(re.findall(r'\.(?:get|getlist)\(\s*"([a-z_]+)"', text))
        for call in re.findall(r"form_values\(([^)]*)\)", text):
            names.update(re.findall(r'"([a-z_]+)"', call))
    for table in TABLES.values():
        names.update(f.name for f in table.editable)
        names.update(i.name for action in table.actions for i in action.inputs)
    return sorted(names)


def _words_the_app_knows() -> list[str]:
    """Values that lead somewhere: table, column and action names, registration fields,
    static files."""
    words: set[str] = set(TABLES) | set(FIELDS) | {"asc", "desc", "yes", "no", "1", "RESTORE"}
    for table in TABLES.values():
        words.update(c.name for c in table.columns)
        words.update(a.name for a in table.actions)
    words.update(p.name for p in STATIC.iterdir())
    return sorted(words)


NAMES = _names_the_app_reads()
WORDS = _words_the_app_knows()
CATEGORIES = sorted({row[2] for row in CATALOGUE})  # the walk starts with this catalogue


# ---------------------------------------------------------------- nasty values


@dataclass(frozen=True)
class Raw:
    """Sent exactly as written, not percent-encoded: broken escapes and bytes that are not
    UTF-8 (a lone surrogate's %ED%A0%80, %FF), which no str can carry."""

    text: str


RAW_ESCAPES = ("%ED%A0%80", "%FF", "%C3", "%C0%AF", "%", "%zz", "%00", "%E2%82")
NUMBERS = ("0", "-1", "1", "2", "7", "2147483647", "2147483648", "99999999999999999999",
           "9" * 400, "²", "①", "٣", "١٢", "1_0", "0x10", "1e5", "1.5", "-0.01", "12.34",
           "1,000.00", "NaN", "inf", "1e308", " 3 ", "+1")
DATES = ("9999-12-31T23:00-05:00", "0001-01-01T00:00+05:00", "2026-02-30", "9999-12-31",
         "0001-01-01", "2026-12-31T18:00", "2026-12-31", "2026-12-31 18:00:00+14:00",
         "2026-12-31T18:00Z", "2026-13-01", "2026-12-31T25:61", "+275760-09-13", "T",
         "2026-W53", "２０２６-01-01", "2099-01-01T00:00")
TEXTS = ("", " ", "\x00", "a\x00b", "x" * 5000, "é" * 3000, "<script>alert(1)</script>",
         "' OR 1=1 --", '"', "\\", "../../etc/passwd", "\u202e", "\ufeff", "𝔘𝔫𝔦",
         "admin", "ann", "ann@example.com", "a@b", "x@" + "y" * 300 + ".com",
         "10.0.0.1", "::1", "::ffff:10.0.0.1", "999.1.1.1", "1.2.3.4/24", "lumen",
         TEST_PASSWORD, "new password that is long enough 1", *CATEGORIES)
# The test client's own address (127.0.0.1) is never typed: an IP block on it would end the
# walk's own sessions for good (each re-signed session refused at once).

NASTY: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(NUMBERS + DATES + TEXTS),
    st.sampled_from(WORDS),
    st.integers(1, 40).map(str),  # ids and versions of rows the walk starts with or makes
    st.text(max_size=40),
)


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each as often as its weight (``st.one_of`` draws them alike)."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy)


VALUES: st.SearchStrategy[str | Raw] = weighted(
    (6, NASTY), (1, NASTY.map(lambda value: value + "\x00")),  # PostgreSQL's text refuses NUL
    (2, st.sampled_from(RAW_ESCAPES).map(Raw)))
FIELD_NAMES = weighted((2, st.sampled_from(NAMES)), (1, st.text(max_size=12)))
PAIRS = st.lists(st.tuples(FIELD_NAMES, VALUES), max_size=6)  # repeats: duplicate parameters

# Values that lead somewhere for the fields that name one of a few things (from the tables'
# declarations), so a whole form sometimes passes and the walk reaches what lies behind it.
def _meaningful() -> dict[str, tuple[str, ...]]:
    by_input = {"number": ("0", "7", "12.34", "250"), "yes-no": ("yes", "no")}
    values: dict[str, tuple[str, ...]] = {
        "action": tuple(sorted({a.name for t in TABLES.values() for a in t.actions})),
        "sort": tuple(sorted({c.name for t in TABLES.values() for c in t.columns})),
        "dir": ("asc", "desc"), "confirmed": ("1",), "confirm": ("RESTORE",),
        "category": tuple(CATEGORIES), "until": ("2099-01-01T00:00",), "ip": ("10.0.0.1",),
        "password": (TEST_PASSWORD,), "current_password": (TEST_PASSWORD,),
        "login": ("user0", "admin0"),  # the first accounts of the walk's roles (Walk.ready)
    }
    for table in TABLES.values():
        for f in table.editable:
            values.setdefault(f.name, by_input.get(f.input, ()))
    return {name: choices for name, choices in values.items() if choices}


MEANINGFUL = _meaningful()


def _value_for(name: str) -> st.SearchStrategy[str]:
    meaningful = MEANINGFUL.get(name)
    return st.one_of(st.sampled_from(meaningful), NASTY) if meaningful else NASTY


# Every field the app reads, each with a value (no broken escapes: one of so many would make
# every such form a 400): whichever form the route has is complete, and sometimes valid.
EVERY_FIELD = st.tuples(*(st.tuples(st.just(n), _value_for(n)) for n in NAMES)).map(list)


def _encoded(value: str | Raw) -> str:
    return value.text if isinstance(value, Raw) else quote(value, safe="")


def _query(pairs: list[tuple[str, str | Raw]]) -> str:
    return "&".join(f"{quote(name, safe='')}={_encoded(value)}" for name, value in pairs)


# ---------------------------------------------------------------- requests


@dataclass
class Plan:
    """One request of the walk, before the CSRF token is known."""

    role: str
    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    token_in: str = "header"  # or "form": the first field of a url-encoded body

    def describe(self) -> str:
        return f"{self.role} {self.method} {self.path} {self.headers} {self.body[:300]!r}"


def _path_value(converter: Any) -> st.SearchStrategy[str]:
    """Mostly what the route can find (ids of the first rows, table and field names: repeats
    in a list weigh them), so the walk gets past the 404s to the forms; else odd values."""
    if isinstance(converter, IdConverter):
        ids = [str(n) for n in range(1, 41)] + [str(n) for n in range(1, 13)] * 4
        return weighted((2, st.sampled_from(ids)),
                        (1, st.sampled_from(NUMBERS).map(lambda n: quote(n, safe=""))))
    # Tables with forms weigh more: the others answer edits and adds with a 404.
    tables = [n for n, t in sorted(TABLES.items()) for _ in range(1 + 2 * bool(t.editable))]
    names = tables * 5 + list(FIELDS) * 3 + WORDS
    return weighted((2, st.sampled_from(names)), (1, VALUES.map(_encoded).filter(bool)))


def _paths(rule: Rule) -> st.SearchStrategy[str]:
    parts = re.split(r"<(?:[^:>]+:)?([^>]+)>", rule.rule)  # text, name, text, name, ...
    pieces = [st.just(p) if i % 2 == 0 else _path_value(rule._converters[p])
              for i, p in enumerate(parts)]
    return st.tuples(*pieces).map("".join)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), NASTY, st.just("\ud800")),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(FIELD_NAMES, inner, max_size=3)),
    max_leaves=8)
ODD_TYPES = ("text/plain", "application/xml", "multipart/form-data", "application/json",
             "application/x-www-form-urlencoded; charset=latin-1", "image/png", "")


@st.composite
def _multipart(draw: st.DrawFn) -> tuple[str, bytes]:
    """Fields and file parts, some of them odd: no name, a name that is not UTF-8, a huge
    filename, a part with no headers at all, a body cut before its final boundary."""
    boundary = draw(st.sampled_from(["b0undary", "x" * 70, "a b"]))
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["field", "file", "noname", "badname", "bare"]))
        name = draw(FIELD_NAMES).encode("utf-8", "surrogatepass")
        value = _encoded(draw(VALUES)).encode()
        headers = {
            "field": b'Content-Disposition: form-data; name="%s"' % name,
            "file": b'Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    b"Content-Type: application/zip" % (name, draw(st.sampled_from(
                        [b"backup.zip", b"", b"../../x.zip", b"\xff.zip", b"a" * 500]))),
            "noname": b"Content-Disposition: form-data",
            "badname": b'Content-Disposition: form-data; name="\xff\xfe"',
            "bare": b"",
        }[kind]
        content = draw(st.one_of(st.just(value), st.binary(max_size=200),
                                 st.just(b"PK\x03\x04" + b"\x00" * 26)))
        out += b"--%s\r\n%s\r\n\r\n%s\r\n" % (boundary.encode(), headers, content)
    if draw(st.booleans()):
        out += b"--%s--\r\n" % boundary.encode()
    return f'multipart/form-data; boundary="{boundary}"', out


@st.composite
def _body(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(content type, body, where the token goes)."""
    kind = draw(st.sampled_from(["form", "form", "every", "every", "multipart", "json", "odd",
                                 "none"]))
    if kind in ("form", "every"):
        pairs = draw(PAIRS if kind == "form" else EVERY_FIELD)
        return ("application/x-www-form-urlencoded", _query(pairs).encode(),
                draw(st.sampled_from(["form", "form", "header"])))
    if kind == "multipart":
        content_type, body = draw(_multipart())
        return content_type, body, "header"
    if kind == "json":  # JSON where a form is expected
        return "application/json", json.dumps(draw(JSON_VALUES)).encode(), "header"
    if kind == "odd":  # a form under a wrong content type, or raw bytes
        body = draw(st.one_of(st.binary(max_size=300), PAIRS.map(_query).map(str.encode)))
        return draw(st.sampled_from(ODD_TYPES)), body, "header"
    return "", b"", "header"


HTMX = st.sampled_from([{}, {}, {"HX-Request": "true"},
                        {"HX-Request": "true", "HX-Boosted": "true"},
                        {"HX-Request": "true", "HX-History-Restore-Request": "true"}])


def _role(rule: Rule) -> st.SearchStrategy[str]:
    """Mostly an admin under /admin: others only meet the guard there (tests/test_url_map)."""
    if rule.rule.startswith("/admin"):
        return st.sampled_from(("admin", "admin", "admin", "admin", "user", "anonymous"))
    return st.sampled_from(ROLES)


@st.composite
def plans(draw: st.DrawFn, rules: list[Rule]) -> Plan:
    # Rules that take a body come twice: there is more to try on them.
    rule = draw(st.sampled_from(rules + [r for r in rules if "POST" in (r.methods or ())]))
    methods = sorted((rule.methods or set()) - {"OPTIONS"})
    method = draw(st.sampled_from(methods) if draw(st.integers(0, 9))
                  else st.sampled_from(("OPTIONS", *ODD_METHODS)))
    path = draw(_paths(rule))
    query = draw(PAIRS)
    if query:
        path += "?" + _query(query)
    plan = Plan(draw(_role(rule)), rule.endpoint, method, path, dict(draw(HTMX)))
    if method not in SAFE_METHODS:
        content_type, plan.body, plan.token_in = draw(_body())
        if content_type:
            plan.headers["Content-Type"] = content_type
    return plan


# ---------------------------------------------------------------- the walk


TRACES = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.exc", "asyncpg.",
          "sqlite3.", "Background on this error", "jinja2.exceptions")


def problems_with(plan: Plan, status: int, headers: Any, body: str) -> list[str]:
    """What is wrong with one answer (an empty list: nothing)."""
    found = []
    if status >= 500:
        found.append(f"status {status}")
    found += [f"{trace!r} in the body" for trace in TRACES if trace in body]
    if (400 <= status < 500 and plan.method != "HEAD"
            and not _says_why(plan.endpoint, status, headers, body)):
        found.append(f"a {status} without a message")
    return found


def _says_why(endpoint: str, status: int, headers: Any, body: str) -> bool:
    """A 4xx is a page or fragment with a message: the error partial and the forms' refusals
    carry role="alert", a re-rendered form marks its fields aria-invalid; htmx gets a 401 with
    HX-Redirect to the log-in page; the events export refuses a filter in plain text (a
    download link: no page around it); the API answers RFC 9457 problems with a detail."""
    if 'role="alert"' in body or 'aria-invalid="true"' in body:
        return True
    if headers.get("Content-Type", "") == "application/problem+json":
        try:
            return bool(json.loads(body).get("detail"))
        except ValueError:
            return False
    if status == 401 and headers.get("HX-Redirect", "").startswith("/login"):
        return True
    return (endpoint == EXPORT_ENDPOINT and bool(body.strip())
            and headers.get("Content-Type", "").startswith("text/plain"))


@dataclass
class Walk:
    """The app on its own loop, a client per role, and what was sent."""

    app: Any
    loop: asyncio.AbstractEventLoop
    clients: dict[str, Client] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _made: Counter[str] = field(default_factory=Counter)  # accounts made per role
    _checked: set[str] = field(default_factory=set)  # roles known good since the last POST

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    async def ready(self, role: str) -> Client:
        """The role's client, signed in as it should be, with its CSRF token. The walk may have
        ended the session (/logout, ending sessions, deactivating, blocking or deleting the
        account, making the user an admin): then a new account is made and signed in. Only
        an unsafe request can do that, so a role is checked again only after one."""
        client = self.clients.get(role)
        if client is not None and role in self._checked:
            return client
        if client is None or not await self._is_still(role, client):
            client = self.clients[role] = Client(self.app)
            if role != "anonymous":
                user = await make_user(self.app, f"{role}{self._made[role]}",
                                       is_admin=role == "admin")
                self._made[role] += 1
                await sign_in(self.app, client, user)
            await client.refresh_token()
            assert await self._is_still(role, client), f"could not make a {role} session"
        self._checked.add(role)
        return client

    async def _is_still(self, role: str, client: Client) -> bool:
        page = await (await client.raw.get("/", scheme="https")).get_data(as_text=True)
        match = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
        if match is None:
            return False
        client.token = match.group(1)
        signed_in, admin = 'href="/account"' in page, 'href="/admin"' in page
        return {"anonymous": not signed_in, "user": signed_in and not admin,
                "admin": admin}[role]

    async def send(self, plan: Plan) -> None:
        client = await self.ready(plan.role)
        headers, body = dict(plan.headers), plan.body
        if plan.endpoint == RESTORE_ENDPOINT:
            # Never confirmed: the walk would restore one of the backups it made into the middle
            # of itself (a restore's refusals are walked; an upload is never a valid backup).
            body = body.replace(b"RESTORE", b"RESTORX")
        if plan.token_in == "header":
            headers["X-CSRF-Token"] = client.token
        elif plan.token_in == "form":  # first: the check reads the first of repeated fields
            body = b"csrf_token=" + client.token.encode() + b"&" + body
        # Over https, as served: the session cookie is Secure (quart-auth warns on http).
        response = await client.raw.open(plan.path, method=plan.method, headers=headers,
                                         data=body, scheme="https")
        text = (await response.get_data()).decode("utf-8", "replace")
        self.statuses[response.status_code] += 1
        if plan.method not in SAFE_METHODS:
            self._checked.clear()
        for problem in problems_with(plan, response.status_code, response.headers, text):
            self.failures.append(f"{problem}: {plan.describe()}\n{text[:2000]}")


def fuzzable_rules(app: Any) -> list[Rule]:
    """Every rule of the URL map: a route added later joins the walk by itself."""
    return list(app.url_map.iter_rules())


@pytest.fixture
def walk(settings_overrides: dict[str, Any]) -> Iterator[Walk]:
    settings_overrides["rate_limits"] = False  # the walk sends far more than a person would
    app = create_app(settings_overrides)
    loop = asyncio.new_event_loop()
    walk = Walk(app, loop)
    loop.run_until_complete(app.startup())
    loop.run_until_complete(add_catalogue(app))
    try:
        yield walk
    finally:
        loop.run_until_complete(app.shutdown())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def walk_over(walk: Walk, rules: list[Rule], **overrides: Any) -> None:
    """Batches of planned requests over ``rules``, as many as the hypothesis profile says
    (``overrides`` for the walk's own tests); each batch fails on the answers it got wrong,
    each named with its request. No shrinking: the database has moved on, so a replay rarely
    fails the same way, and shrinking took minutes to give up."""

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large],
              deadline=None, database=None, phases=[Phase.generate], **overrides)
    @given(st.lists(plans(rules), min_size=1, max_size=BATCH, unique_by=Plan.describe))
    def batch(planned: list[Plan]) -> None:
        for plan in planned:
            walk.run(walk.send(plan))
        failures, walk.failures = walk.failures, []
        assert not failures, "\n\n".join(failures)

    batch()


def test_fuzz_walk_gets_a_clear_answer_everywhere(
    walk: Walk, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = fuzzable_rules(walk.app)
    started = time.monotonic()
    walk_over(walk, rules)
    with capsys.disabled():
        print(f"\nfuzz walk: {walk.sent} requests over {len(rules)} rules in "
              f"{time.monotonic() - started:.0f} s; statuses {dict(sorted(walk.statuses.items()))}")


def test_the_walk_reaches_a_route_added_later_and_reports_its_500(walk: Walk) -> None:
    """A route added to the URL map joins the walk, and an answer the walk must refuse fails
    it: the walk can fail."""
    @walk.app.get("/probe/<int:row>")
    async def probe(row: int) -> str:
        return str(sum(int(v) for v in request.args.values()) + row)  # odd values: a 500

    rules = [r for r in fuzzable_rules(walk.app) if r.rule == "/probe/<int:row>"]
    with pytest.raises(AssertionError, match=r"status 500: .* (GET|HEAD) /probe/"):
        walk_over(walk, rules, max_examples=200)


@pytest.mark.parametrize(("status", "headers", "body", "problem"), [
    (200, {}, "<p>Traceback (most recent call last):</p>", "'Traceback (most recent call last)'"),
    (422, {}, "<form>no message</form>", "a 422 without a message"),
    (404, {}, 'File "/srv/electro/app.py", line 1', "'File \"/' in the body"),
    (503, {}, '<div role="alert">busy</div>', "status 503"),
    (422, {"Content-Type": "text/plain"}, "since is wrong", "a 422 without a message"),
])
def test_the_walk_refuses_tracebacks_silent_refusals_and_5xx(
    status: int, headers: dict[str, str], body: str, problem: str
) -> None:
    plan = Plan("admin", "admin.dashboard_page", "GET", "/admin", {})
    assert any(problem in found for found in problems_with(plan, status, headers, body))


@pytest.mark.parametrize(("status", "headers", "body"), [
    (422, {}, '<p class="field-error" role="alert">Enter a whole number</p>'),
    (200, {}, '<input name="email" aria-invalid="true">'),
    (401, {"HX-Redirect": "/login?next=/admin"}, ""),
    (303, {"Location": "/admin/tables/users"}, ""),
])
def test_the_walk_accepts_clear_answers(status: int, headers: dict[str, str], body: str) -> None:
    plan = Plan("admin", "admin.dashboard_page", "GET", "/admin", {})
    assert problems_with(plan, status, headers, body) == []


def test_the_walk_accepts_the_exports_plain_text_refusal() -> None:
    plan = Plan("admin", EXPORT_ENDPOINT, "GET", "/admin/events/export?since=x", {})
    assert problems_with(plan, 422, {"Content-Type": "text/plain"}, "'since' must be") == []
