"""Admin tables (SPEC D1): listing, inline edit, add and delete through real HTTP."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy import inspect as sa_inspect

from electro.models import Category, Event, IpBlock, OneTimeKey, Product, SearchRecord, User
from electro.models import UserSession as SessionRow
from electro.services.admin import crud
from electro.services.admin.crud import STALE
from electro.services.admin.tables import TABLES
from tests.support import Client, make_user
from tests.support.admin import (
    SECRET_BODY,
    fetch,
    hidden,
    one,
    row_ids,
    seed_catalogue,
    seed_every_table,
    seed_second_rows,
)

# --------------------------------------------------------------- listing


@pytest.mark.parametrize("table", sorted(TABLES))
async def test_every_table_lists_as_a_page_and_as_a_fragment(
    app: Any, admin_client: Client, table: str
) -> None:
    await seed_every_table(app)
    page = await admin_client.get(f"/admin/tables/{table}")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<html" in html and 'id="admin-table"' in html
    assert page.headers["Cache-Control"] == "no-store"
    assert row_ids(html), f"{table}: the seeded row is listed"
    fragment = await admin_client.get(f"/admin/tables/{table}", htmx=True)
    part = await fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    assert "<html" not in part and part.lstrip().startswith('<div id="admin-table"')
    assert row_ids(part) == row_ids(html)


async def test_the_tables_index_lists_every_table_with_its_count(
    app: Any, admin_client: Client
) -> None:
    await seed_catalogue(app, products=3)
    html = await (await admin_client.get("/admin/tables")).get_data(as_text=True)
    for name in TABLES:
        assert f'href="/admin/tables/{name}"' in html
    assert re.search(r'href="/admin/tables/products">Products</a>\s*<span class="count">\(3\)',
                     html)


async def test_no_secret_ever_reaches_a_table_page(app: Any, admin_client: Client) -> None:
    await seed_every_table(app)
    secrets = [v for (v,) in await fetch(app, select(User.password_hash))]
    secrets += [v for (v,) in await fetch(app, select(SessionRow.token_hash))]
    for key_hash, password_hash in await fetch(
        app, select(OneTimeKey.key_hash, OneTimeKey.password_hash)
    ):
        secrets += [key_hash, password_hash]
    secrets += [v for (v,) in await fetch(app, select(SearchRecord.client_hash))]
    secrets.append(SECRET_BODY)
    assert len(secrets) >= 6
    for table in TABLES:
        pages = [await admin_client.get(f"/admin/tables/{table}")]
        for row_id in row_ids(await pages[0].get_data(as_text=True)):
            pages.append(await admin_client.get(f"/admin/tables/{table}/{row_id}"))
            if TABLES[table].editable:
                pages.append(await admin_client.get(f"/admin/tables/{table}/{row_id}/edit"))
        for response in pages:
            assert response.status_code == 200
            html = await response.get_data(as_text=True)
            for secret in secrets:
                assert secret not in html, f"a secret leaked into {table}"
            assert "password_hash" not in html and "key_hash" not in html


async def test_search_matches_case_insensitively_and_escapes_like_wildcards(
    app: Any, admin_client: Client
) -> None:
    category, _ = await seed_catalogue(app, products=0)
    async with app.extensions["electro"].sessions.begin() as db:
        for name in ("50% OFF charger", "500 off cable", "a_b adapter", "axb adapter"):
            db.add(Product(name=name, category_id=category, price_cents=100))

    async def names(q: str) -> list[str]:
        html = await (await admin_client.get("/admin/tables/products", htmx=True,
                                             query_string={"q": q})).get_data(as_text=True)
        return re.findall(r'data-column="name">([^<]*)<', html)

    assert await names("50% off") == ["50% OFF charger"]
    assert await names("a_b") == ["a_b adapter"]
    assert sorted(await names("ADAPTER")) == ["a_b adapter", "axb adapter"]
    assert await names("phones") == ["50% OFF charger", "500 off cable", "a_b adapter",
                                     "axb adapter"]  # the category name is searchable too
    assert await names("nothing like it") == []


def test_the_registry_names_only_columns_it_lists() -> None:
    """A misspelt name would only fail when someone clicks it: sortable, searchable and
    editable names are listed columns, and every editable field writes a column of the model."""
    for name, table in TABLES.items():
        listed = {c.name for c in table.columns}
        named = {*table.searchable, *table.sortable, table.default_sort[0]}
        assert named <= listed, f"{name}: {named - listed} are not columns"
        model_columns = set(sa_inspect(table.model).columns.keys())
        for f in table.editable:
            assert f.name in listed, f"{name}: editable {f.name} is not a listed column"
            assert f.column in model_columns, f"{name}: {f.column} is not a column of the model"
        inputs = [i.name for action in table.actions for i in action.inputs]
        assert not {"csrf_token", "action", "ids", "confirmed", "q", "sort", "dir",
                    "page"} & set(inputs), f"{name}: an action input clashes with the form's own"


async def test_every_editor_form_and_action_renders_the_fields_it_declares(
    app: Any, admin_client: Client
) -> None:
    """The templates render what the declarations name: each editable field is an input of
    the editor (and of the add form), each action an option and each of its inputs an input of
    the actions form."""
    await seed_every_table(app)
    for name, table in TABLES.items():
        page = await (await admin_client.get(f"/admin/tables/{name}")).get_data(as_text=True)
        actions_form = page.split('id="actions-form"', 1)[-1].split("</form>", 1)[0]
        for action in table.actions:
            assert f'<option value="{action.name}">{action.label}</option>' in actions_form
            for wanted in action.inputs:
                assert re.search(rf'<label>{wanted.label} <input type="{wanted.type}" '
                                 rf'name="{wanted.name}"', actions_form), (name, wanted.name)
        add_form = page.split('id="add-form"', 1)[-1].split("</form>", 1)[0]
        row_id = row_ids(page)[0]
        editor = await _editor(admin_client, name, row_id) if table.editable else ""
        for f in table.editable:
            assert f'name="{f.name}"' in editor, (name, f.name)
            assert not table.can_add or f'name="{f.name}"' in add_form, (name, f.name)


async def test_every_table_sorts_by_every_sortable_column_with_a_search(
    app: Any, admin_client: Client
) -> None:
    """The rows come in the column's order both ways: a sort that silently fell back to the
    default would list them the same way for "asc" and "desc"."""
    await seed_every_table(app)
    await seed_second_rows(app)
    for name, table in TABLES.items():
        for column in table.sortable:
            listed = {}
            for way in ("asc", "desc"):
                response = await admin_client.get(
                    f"/admin/tables/{name}", query_string={"sort": column, "dir": way, "q": "a"})
                html = await response.get_data(as_text=True)
                assert response.status_code == 200, (name, column, way)
                header = "ascending" if way == "asc" else "descending"
                assert f'<th aria-sort="{header}">' in html and "<a aria-sort" not in html
                listed[way] = row_ids(html)
            ids = listed["asc"]
            assert 2 <= len(ids) <= 25, f"{name}: seed two rows that contain 'a', on one page"
            assert listed["desc"] == ids[::-1], (name, column)
            expr = table.column(column).expr
            in_order = select(table.model.id).where(table.model.id.in_(ids)).order_by(
                expr.asc(), table.model.id.asc())
            assert [i for (i,) in await fetch(app, in_order)] == ids, (name, column)


async def test_sort_by_any_sortable_column_both_ways(app: Any, admin_client: Client) -> None:
    _, ids = await seed_catalogue(app, products=4)  # named in id order
    # Price and stock in orders of their own, so each sort shows which column it used.
    prices, stocks = [300, 100, 400, 200], [7, 9, 5, 8]
    async with app.extensions["electro"].sessions.begin() as db:
        for product_id, cents, stock in zip(ids, prices, stocks, strict=True):
            await db.execute(update(Product).where(Product.id == product_id)
                             .values(price_cents=cents, stock=stock))

    async def order(**args: str) -> list[int]:
        response = await admin_client.get("/admin/tables/products", query_string=args)
        return row_ids(await response.get_data(as_text=True))

    by_price = [ids[i] for i in (1, 3, 0, 2)]
    assert await order(sort="price", dir="asc") == by_price
    assert await order(sort="price", dir="desc") == by_price[::-1]
    assert await order(sort="stock", dir="desc") == [ids[i] for i in (1, 3, 0, 2)]
    assert await order(sort="stock", dir="asc") == [ids[i] for i in (2, 0, 3, 1)]
    assert await order(sort="name", dir="desc") == ids[::-1]
    assert await order(sort="password_hash", dir="desc") == ids  # unknown: default (name asc)
    assert await order(sort="price", dir="sideways") == by_price  # unknown way: ascending


async def test_pagination_is_bounded_and_kept_in_the_links(
    app: Any, admin_client: Client
) -> None:
    _, ids = await seed_catalogue(app, products=30)

    async def page(value: Any) -> tuple[list[int], str]:
        response = await admin_client.get(
            "/admin/tables/products", query_string={"sort": "price", "page": value})
        html = await response.get_data(as_text=True)
        assert response.status_code == 200
        return row_ids(html), html

    first, html = await page(1)
    assert first == ids[:25] and "page 1 of 2" in html
    assert 'href="/admin/tables/products?sort=price&amp;dir=asc&amp;page=2"' in html
    assert (await page(2))[0] == ids[25:]
    assert (await page(0))[0] == ids[:25]
    assert (await page(10**9))[0] == ids[25:]
    assert (await page("junk"))[0] == ids[:25]
    assert (await page("-3"))[0] == ids[:25]


async def test_unknown_table_and_row_are_404(admin_client: Client) -> None:
    assert (await admin_client.get("/admin/tables/nope")).status_code == 404
    assert (await admin_client.get("/admin/tables/products/999")).status_code == 404
    assert (await admin_client.get("/admin/tables/products/999/edit")).status_code == 404
    assert (await admin_client.post("/admin/tables/nope/actions")).status_code == 404


# --------------------------------------------------------------- inline edit


async def _editor(client: Client, table: str, row_id: int) -> str:
    response = await client.get(f"/admin/tables/{table}/{row_id}/edit", htmx=True)
    assert response.status_code == 200
    return str(await response.get_data(as_text=True))


async def test_inline_edit_saves_a_price_exactly_and_returns_the_row(
    app: Any, admin_client: Client
) -> None:
    _, ids = await seed_catalogue(app, products=1)
    editor = await _editor(admin_client, "products", ids[0])
    assert 'class="row-editor"' in editor and 'name="price" value="1.00"' in editor
    version = hidden(editor, "version")
    response = await admin_client.post(
        f"/admin/tables/products/{ids[0]}/edit",
        {"version": version, "price": "12.34", "stock": "7"}, htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="row-{ids[0]}">')
    assert 'data-column="price">12.34<' in html and "row-editor" not in html
    product = await one(app, Product, ids[0])
    assert (product.price_cents, product.stock) == (1234, 7)
    assert product.version == int(version) + 1
    events = await fetch(app, select(Event.details).where(Event.type == "admin_update"))
    assert events[0][0]["ids"] == [ids[0]] and events[0][0]["fields"] == ["price", "stock"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("price", "12.345", "Enter a price like 12.99"),
    ("price", "twelve", "Enter a price like 12.99"),
    ("price", "-1", "Enter a price like 12.99"),
    ("stock", "-1", "Enter a whole number, 0 or more"),
    ("stock", "1.5", "Enter a whole number, 0 or more"),
    ("category", "Nope", "There is no category named &#39;Nope&#39;"),
    ("name", "", "This field is required"),
])
async def test_an_invalid_value_answers_422_with_the_editor_and_its_message(
    app: Any, admin_client: Client, field: str, value: str, message: str
) -> None:
    _, ids = await seed_catalogue(app, products=1)
    version = hidden(await _editor(admin_client, "products", ids[0]), "version")
    response = await admin_client.post(f"/admin/tables/products/{ids[0]}/edit",
                                       {"version": version, field: value}, htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'class="row-editor"' in html and message in html
    assert f'name="{field}" value="{value}"' in html  # the input keeps what was typed
    assert (await one(app, Product, ids[0])).version == int(version)  # nothing saved


async def test_a_stale_save_is_refused_and_the_row_keeps_the_other_edit(
    app: Any, admin_client: Client
) -> None:
    _, ids = await seed_catalogue(app, products=1)
    url = f"/admin/tables/products/{ids[0]}/edit"
    version = hidden(await _editor(admin_client, "products", ids[0]), "version")
    other = await admin_client.post(url, {"version": version, "price": "5.00"}, htmx=True)
    assert other.status_code == 200
    response = await admin_client.post(url, {"version": version, "price": "9.99"}, htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 409 and STALE in html and "row-editor" in html
    assert (await one(app, Product, ids[0])).price_cents == 500


async def test_tables_without_a_version_column_detect_stale_edits_by_value_hash(
    app: Any, admin_client: Client
) -> None:
    await seed_every_table(app)
    block_id = (await fetch(app, select(IpBlock.id)))[0][0]
    url = f"/admin/tables/ip_blocks/{block_id}/edit"
    version = hidden(await _editor(admin_client, "ip_blocks", block_id), "version")
    first = await admin_client.post(url, {"version": version, "reason": "first"}, htmx=True)
    assert first.status_code == 200
    second = await admin_client.post(url, {"version": version, "reason": "second"}, htmx=True)
    assert second.status_code == 409 and STALE in await second.get_data(as_text=True)
    assert (await one(app, IpBlock, block_id)).reason == "first"


async def test_cancel_returns_the_row_unchanged(app: Any, admin_client: Client) -> None:
    _, ids = await seed_catalogue(app, products=1)
    editor = await _editor(admin_client, "products", ids[0])
    cancel = re.search(r'class="cancel"[^>]*hx-get="([^"]+)"', editor)
    assert cancel and cancel.group(1) == f"/admin/tables/products/{ids[0]}"
    response = await admin_client.get(cancel.group(1), htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="row-{ids[0]}">') and "row-editor" not in html
    assert 'data-column="price">1.00<' in html


async def test_edit_without_javascript_is_a_page_and_a_redirect(
    app: Any, admin_client: Client
) -> None:
    _, ids = await seed_catalogue(app, products=2)
    page = await admin_client.get(f"/admin/tables/products/{ids[1]}/edit")
    html = await page.get_data(as_text=True)
    assert "<html" in html and f'<tr id="row-{ids[1]}-editor" class="row-editor">' in html
    assert html.count("<tr id=") == 1  # only that row
    form = {"version": hidden(html, "version"), "name": "Renamed", "company": "Acme",
            "category": "phones", "price": "3.50", "stock": "2",
            "description": "new"}
    bad = await admin_client.post(f"/admin/tables/products/{ids[1]}/edit",
                                  {**form, "price": "3,50"})
    assert bad.status_code == 422 and "<html" in await bad.get_data(as_text=True)
    saved = await admin_client.post(f"/admin/tables/products/{ids[1]}/edit", form)
    assert saved.status_code == 303 and saved.headers["Location"] == "/admin/tables/products"
    product = await one(app, Product, ids[1])
    assert (product.name, product.price_cents) == ("Renamed", 350)


async def test_user_fields_follow_the_account_rules(app: Any, admin_client: Client) -> None:
    await make_user(app, "Bob")
    ann = await make_user(app, "ann")
    url = f"/admin/tables/users/{ann.id}/edit"

    async def save(**form: str) -> tuple[int, str]:
        version = hidden(await _editor(admin_client, "users", ann.id), "version")
        response = await admin_client.post(url, {"version": version, **form}, htmx=True)
        return response.status_code, await response.get_data(as_text=True)

    assert (await save(username="BOB"))[0] == 422
    assert "BOB is already taken" in (await save(username="BOB"))[1]
    assert "3 to 32 characters" in (await save(username="a b"))[1]
    assert "3 to 32 characters" in (await save(username="ab"))[1]
    assert "That e-mail address is not valid" in (await save(email="not-an-address"))[1]
    assert "is already taken" in (await save(email="BOB@example.com"))[1]
    status, html = await save(username="Ann.B-2", email="Ann.New@Example.COM", is_active="no")
    assert status == 200 and 'data-column="username">Ann.B-2<' in html
    user = await one(app, User, ann.id)
    assert (user.username, user.email, user.is_active) == ("Ann.B-2", "ann.new@example.com",
                                                          False)


# --------------------------------------------------------------- mass assignment


@pytest.mark.parametrize("extra", [
    {"password_hash": "$argon2id$forged"}, {"is_admin": "yes"}, {"id": "999"},
    {"favourite": "x"}, {"version": "5", "key_hash": "00"},
])
async def test_edit_refuses_fields_outside_the_allow_list_and_changes_nothing(
    app: Any, admin_client: Client, extra: dict[str, str]
) -> None:
    ann = await make_user(app, "ann")
    version = hidden(await _editor(admin_client, "users", ann.id), "version")
    form = {"version": version, "username": "annie", **extra}
    form.setdefault("version", version)
    response = await admin_client.post(f"/admin/tables/users/{ann.id}/edit", form, htmx=True)
    html = await response.get_data(as_text=True)
    name = next(k for k in extra if k != "version")
    assert response.status_code == 422 and f"Field {name} cannot be edited." in html
    user = await one(app, User, ann.id)
    assert (user.username, user.is_admin, user.password_hash, user.version) == (
        "ann", False, ann.password_hash, ann.version)


async def test_add_refuses_fields_outside_the_allow_list(app: Any, admin_client: Client) -> None:
    await seed_catalogue(app, products=0)
    form = {"name": "Phone", "category": "Phones", "price": "1.00", "stock": "1", "id": "77",
            "version": "9", "password_hash": "x"}
    response = await admin_client.post("/admin/tables/products/add", form, htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    for name in ("id", "version", "password_hash"):
        assert f"Field {name} cannot be edited." in html
    assert (await fetch(app, select(func.count()).select_from(Product)))[0][0] == 0
    refused = await admin_client.post("/admin/tables/users/add", {"username": "x"})
    assert refused.status_code == 404  # users come from registration or create-admin


# --------------------------------------------------------------- add and delete


async def test_add_validates_and_saves_exact_money(app: Any, admin_client: Client) -> None:
    await seed_catalogue(app, products=0)
    bad = await admin_client.post("/admin/tables/products/add",
                                  {"name": "X", "category": "Phones", "price": "0.299",
                                   "stock": "1"}, htmx=True)
    html = await bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Enter a price like 12.99" in html
    assert 'name="name" value="X"' in html  # the form keeps what was typed
    good = await admin_client.post("/admin/tables/products/add",
                                   {"name": "Cable", "company": "", "category": "phones",
                                    "price": "0.29", "stock": "3",
                                    "description": ""}, htmx=True)
    assert good.status_code == 200 and good.headers["HX-Trigger"] == "admin-changed"
    assert "Added row" in await good.get_data(as_text=True)
    assert (await fetch(app, select(Product.price_cents, Product.stock)))[0] == (29, 3)


async def test_add_category_unique_ignoring_case_and_without_javascript(
    app: Any, admin_client: Client
) -> None:
    await seed_catalogue(app, products=0)
    taken = await admin_client.post("/admin/tables/categories/add", {"name": "PHONES"})
    assert taken.status_code == 422
    assert "PHONES is already taken" in await taken.get_data(as_text=True)
    added = await admin_client.post("/admin/tables/categories/add", {"name": "Tablets"})
    assert added.status_code == 303 and added.headers["Location"] == "/admin/tables/categories"
    assert sorted(n for (n,) in await fetch(app, select(Category.name))) == ["Phones", "Tablets"]


async def test_add_ip_block_records_who_added_it(app: Any, admin_client: Client) -> None:
    bad = await admin_client.post("/admin/tables/ip_blocks/add",
                                  {"ip": "999.1.1.1", "until": "2030-01-01T00:00"}, htmx=True)
    assert "Enter an IP address like" in await bad.get_data(as_text=True)
    bad_date = await admin_client.post("/admin/tables/ip_blocks/add",
                                       {"ip": "10.0.0.1", "until": "soon"}, htmx=True)
    assert "Enter a date and time like" in await bad_date.get_data(as_text=True)
    past = await admin_client.post("/admin/tables/ip_blocks/add",
                                   {"ip": "10.0.0.1", "until": "2020-01-01T00:00"}, htmx=True)
    assert past.status_code == 422
    assert "The block must end in the future" in await past.get_data(as_text=True)
    assert await fetch(app, select(IpBlock.id)) == []
    good = await admin_client.post("/admin/tables/ip_blocks/add",
                                   {"ip": "2001:DB8::1", "until": "2030-01-01T00:00",
                                    "reason": "abuse"}, htmx=True)
    assert good.status_code == 200
    block = (await fetch(app, select(IpBlock, User.username).join(
        User, User.id == IpBlock.created_by_id)))[0]
    assert (block[0].ip, block[0].reason, block[1]) == ("2001:db8::1", "abuse", "admin")


async def test_delete_removes_the_row_and_records_it(app: Any, admin_client: Client) -> None:
    _, ids = await seed_catalogue(app, products=2)
    response = await admin_client.post(f"/admin/tables/products/{ids[0]}/delete", htmx=True)
    assert response.status_code == 200 and await response.get_data(as_text=True) == ""
    assert [i for (i,) in await fetch(app, select(Product.id))] == [ids[1]]
    event = (await fetch(app, select(Event.details, Event.actor)
                         .where(Event.type == "admin_delete")))[0]
    assert event[0]["ids"] == [ids[0]] and event[0]["table"] == "products"
    assert event[1] == "admin"
    page = await admin_client.post(f"/admin/tables/products/{ids[1]}/delete")
    assert page.status_code == 200 and "Deleted 1 row." in await page.get_data(as_text=True)


async def test_a_category_with_products_is_not_deleted_and_says_why(
    app: Any, admin_client: Client
) -> None:
    category, _ = await seed_catalogue(app, products=2)
    response = await admin_client.post(f"/admin/tables/categories/{category}/delete", htmx=True)
    html = await response.get_data(as_text=True)
    assert response.status_code == 409
    assert "2 rows of products still refer to it" in html
    assert html.lstrip().startswith(f'<tr id="row-{category}">')  # the row stays, with the note
    assert (await fetch(app, select(func.count()).select_from(Category)))[0][0] == 1


async def test_events_and_backups_are_not_deletable(app: Any, admin_client: Client) -> None:
    await seed_every_table(app)
    event_id = (await fetch(app, select(Event.id)))[0][0]
    response = await admin_client.post(f"/admin/tables/events/{event_id}/delete", htmx=True)
    assert response.status_code == 409 and "cannot be deleted" in await response.get_data(
        as_text=True)
    assert (await one(app, Event, event_id)) is not None


async def test_a_constraint_race_answers_with_a_message_and_the_session_survives(
    app: Any, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a duplicate slips past the check (a concurrent save), the database's unique index
    refuses it; the savepoint keeps the request's session usable for the answer."""
    await make_user(app, "bob")
    ann = await make_user(app, "ann")

    async def never_taken(*_args: Any) -> bool:
        return False

    monkeypatch.setattr(crud, "_taken", never_taken)
    version = hidden(await _editor(admin_client, "users", ann.id), "version")
    response = await admin_client.post(f"/admin/tables/users/{ann.id}/edit",
                                       {"version": version, "username": "BOB"}, htmx=True)
    assert response.status_code == 422
    assert "just taken by another row" in await response.get_data(as_text=True)
    assert (await one(app, User, ann.id)).username == "ann"


# --------------------------------------------------------------- who may


ENDPOINTS = [
    ("GET", "/admin/tables"), ("GET", "/admin/tables/products"),
    ("GET", "/admin/tables/products/1"), ("GET", "/admin/tables/products/1/edit"),
    ("POST", "/admin/tables/products/1/edit"), ("POST", "/admin/tables/products/1/delete"),
    ("POST", "/admin/tables/products/add"), ("POST", "/admin/tables/users/actions"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_a_non_admin_htmx_request_gets_403_and_anonymous_goes_to_login(
    app: Any, user_client: Client, client: Client, method: str, path: str
) -> None:
    await seed_catalogue(app, products=1)
    form = {"price": "0.01", "action": "make_admin", "ids": "1"}
    if method == "GET":
        refused = await user_client.get(path, htmx=True)
        anonymous = await client.get(path, htmx=True)
    else:
        refused = await user_client.post(path, form, htmx=True)
        anonymous = await client.post(path, form, htmx=True)
    assert refused.status_code == 403
    assert anonymous.status_code == 401 and anonymous.headers["HX-Redirect"].startswith("/login")
    product = (await fetch(app, select(Product.price_cents)))[0][0]
    assert product == 100
    assert (await fetch(app, text("SELECT count(*) FROM users WHERE is_admin")))[0][0] == 0
