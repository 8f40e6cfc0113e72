"""The thirteen tables of the admin panel (SPEC D1, D2), each one declaration.

A new table is one more ``Table(...)`` here and its name in ``TABLES``; a new action is one
``Action`` (see ``actions``) named in a table's ``actions``.
"""

from __future__ import annotations

from sqlalchemy import ScalarSelect, SQLColumnExpression, func, select

from electro.errors import NotFound
from electro.models import (
    AccountBlock,
    Backup,
    Category,
    Event,
    IpBlock,
    OneTimeKey,
    Order,
    OrderLine,
    OutboxMail,
    Product,
    SearchRecord,
    TwoFactor,
    User,
    UserSession,
)
from electro.services.admin import accounts
from electro.services.admin.actions import (
    ACTIVATE,
    BLOCK_ACCOUNTS,
    CANCEL_ORDERS,
    DEACTIVATE,
    DELETE,
    DELETE_ACCOUNTS,
    DELETE_INACTIVE,
    END_SESSIONS,
    LIFT,
    LIFT_ACCOUNT_BLOCKS,
    MAKE_ADMIN,
    MAKE_BACKUP,
    MARK_PAID,
    MARK_SHIPPED,
    REMOVE_ADMIN,
    RESET_TWO_FACTOR,
    RESTORE,
    SEND_TEST_MAIL,
)
from electro.services.admin.fields import (
    block_end,
    category_by_name,
    count,
    email,
    ip_address,
    money,
    show,
    show_money,
    show_short,
    text,
    username,
    yes_no,
)
from electro.services.admin.registry import Column, Field, Table


def _user_name(user_id: SQLColumnExpression[int | None]) -> ScalarSelect[str]:
    """The username for a user id column, as a correlated subquery (listable, searchable)."""
    return select(User.username).where(User.id == user_id).scalar_subquery()


# ---------------------------------------------------------------- the tables

# Empty while two-factor is off (or only being set up); the secret itself is never selected.
_two_factor_since = (
    select(TwoFactor.enabled_at).where(TwoFactor.user_id == User.id).scalar_subquery()
)
_users = Table(
    name="users", title="Users", model=User,
    columns=(
        Column("username", "Username", User.username),
        Column("email", "E-mail", User.email),
        Column("is_active", "Active", User.is_active),
        Column("is_admin", "Admin", User.is_admin),
        Column("failed_logins", "Failed log-ins", User.failed_logins),
        Column("locked_until", "Locked until", User.locked_until),
        Column("last_login_at", "Last log-in", User.last_login_at),
        Column("two_factor_since", "Two-factor since", _two_factor_since),
        Column("created_at", "Created", User.created_at),
    ),
    searchable=("username", "email"),
    sortable=("username", "email", "is_active", "is_admin", "failed_logins", "locked_until",
              "last_login_at", "created_at"),
    default_sort=("created_at", "desc"),
    editable=(
        Field("username", "username", username, unique=True),
        Field("email", "email", email, unique=True),
        Field("is_active", "is_active", yes_no, input="yes-no"),
    ),
    actions=(ACTIVATE, DEACTIVATE, DELETE_ACCOUNTS, DELETE_INACTIVE, SEND_TEST_MAIL, MAKE_ADMIN,
             REMOVE_ADMIN, BLOCK_ACCOUNTS, LIFT_ACCOUNT_BLOCKS, RESET_TWO_FACTOR),
    check_edit=accounts.check_edit,
)

_category_name = (
    select(Category.name).where(Category.id == Product.category_id).scalar_subquery()
)
_products = Table(
    name="products", title="Products", model=Product,
    columns=(
        Column("name", "Name", Product.name),
        Column("company", "Company", Product.company),
        Column("category", "Category", _category_name),
        Column("price", "Price", Product.price_cents, show_money),
        Column("stock", "Stock", Product.stock),
        Column("description", "Description", Product.description, show_short),
        Column("updated_at", "Updated", Product.updated_at),
    ),
    searchable=("name", "company", "category", "description"),
    sortable=("name", "company", "category", "price", "stock", "updated_at"),
    default_sort=("name", "asc"),
    editable=(
        Field("name", "name", text(200)),
        Field("company", "company", text(120, required=False)),
        Field("category", "category_id", category_by_name),
        Field("price", "price_cents", money(), input="number"),
        Field("stock", "stock", count, input="number"),
        Field("description", "description", text(5000, required=False), input="textarea",
              to_text=show),
    ),
    can_add=True,
    actions=(DELETE,),
)

_categories = Table(
    name="categories", title="Categories", model=Category,
    columns=(Column("name", "Name", Category.name),
             Column("created_at", "Created", Category.created_at)),
    searchable=("name",), sortable=("name", "created_at"), default_sort=("name", "asc"),
    editable=(Field("name", "name", text(80), unique=True),),
    can_add=True, actions=(DELETE,),
)

_account_blocks = Table(
    name="account_blocks", title="Account blocks", model=AccountBlock,
    columns=(
        Column("user", "Account", _user_name(AccountBlock.user_id)),
        Column("until", "Until", AccountBlock.until),
        Column("reason", "Reason", AccountBlock.reason),
        Column("created_by", "By", _user_name(AccountBlock.created_by_id)),
        Column("created_at", "Created", AccountBlock.created_at),
        Column("lifted_at", "Lifted", AccountBlock.lifted_at),
    ),
    searchable=("user", "reason", "created_by"),
    sortable=("user", "until", "reason", "created_by", "created_at", "lifted_at"),
    default_sort=("created_at", "desc"),
    editable=(Field("until", "until", block_end), Field("reason", "reason", text(500, False))),
    actions=(LIFT, DELETE),
)

_ip_blocks = Table(
    name="ip_blocks", title="IP blocks", model=IpBlock,
    columns=(
        Column("ip", "IP address", IpBlock.ip),
        Column("until", "Until", IpBlock.until),
        Column("reason", "Reason", IpBlock.reason),
        Column("created_by", "By", _user_name(IpBlock.created_by_id)),
        Column("created_at", "Created", IpBlock.created_at),
        Column("lifted_at", "Lifted", IpBlock.lifted_at),
    ),
    searchable=("ip", "reason", "created_by"),
    sortable=("ip", "until", "reason", "created_by", "created_at", "lifted_at"),
    default_sort=("created_at", "desc"),
    editable=(Field("ip", "ip", ip_address), Field("until", "until", block_end),
              Field("reason", "reason", text(500, False))),
    can_add=True, actions=(LIFT, DELETE),
)

_sessions = Table(
    name="sessions", title="Sessions", model=UserSession,
    columns=(
        Column("user", "Account", _user_name(UserSession.user_id)),
        Column("ip", "IP address", UserSession.ip),
        Column("user_agent", "Device", UserSession.user_agent, show_short),
        Column("created_at", "Started", UserSession.created_at),
        Column("last_seen_at", "Last seen", UserSession.last_seen_at),
        Column("ended_at", "Ended", UserSession.ended_at),
        Column("end_reason", "Why", UserSession.end_reason),
    ),
    searchable=("user", "ip", "user_agent", "end_reason"),
    sortable=("user", "ip", "created_at", "last_seen_at", "ended_at", "end_reason"),
    default_sort=("last_seen_at", "desc"),
    actions=(END_SESSIONS, DELETE),
)

_one_time_keys = Table(
    name="one_time_keys", title="One-time keys", model=OneTimeKey,
    columns=(  # metadata only: never key_hash nor a pending registration's password_hash
        Column("purpose", "Purpose", OneTimeKey.purpose),
        Column("user", "Account", func.coalesce(_user_name(OneTimeKey.user_id),
                                                 OneTimeKey.username)),
        Column("email", "E-mail", OneTimeKey.email),
        Column("attempts", "Attempts", OneTimeKey.attempts),
        Column("expires_at", "Expires", OneTimeKey.expires_at),
        Column("created_at", "Created", OneTimeKey.created_at),
        Column("used_at", "Used", OneTimeKey.used_at),
    ),
    searchable=("purpose", "user", "email"),
    sortable=("purpose", "user", "email", "attempts", "expires_at", "created_at", "used_at"),
    default_sort=("created_at", "desc"),
    actions=(DELETE,),
)

_searches = Table(
    name="searches", title="Searches", model=SearchRecord,
    columns=(  # not client_hash: it identifies a client
        Column("query", "Query", SearchRecord.query),
        Column("results", "Results", SearchRecord.results),
        Column("hour_start", "Hour", SearchRecord.hour_start),
        Column("created_at", "Time", SearchRecord.created_at),
    ),
    searchable=("query",), sortable=("query", "results", "hour_start", "created_at"),
    default_sort=("created_at", "desc"),
    actions=(DELETE,),
)

_events = Table(
    name="events", title="Events", model=Event,
    columns=(
        Column("created_at", "Time", Event.created_at),
        Column("type", "Type", Event.type),
        Column("actor", "Actor", Event.actor),
        Column("actor_id", "Actor id", Event.actor_id),
        Column("ip", "IP address", Event.ip),
        Column("path", "Path", Event.path),
        Column("details", "Details", Event.details, show_short),
    ),
    searchable=("type", "actor", "ip", "path"),
    sortable=("created_at", "type", "actor", "actor_id", "ip", "path"),
    default_sort=("created_at", "desc"),
    # No delete: the audit trail; only the retention job deletes events.
)

_outbox = Table(
    name="outbox", title="Outbox", model=OutboxMail,
    columns=(  # not the body: a queued mail may carry a clear one-time key
        Column("to_addr", "To", OutboxMail.to_addr),
        Column("subject", "Subject", OutboxMail.subject),
        Column("template", "Template", OutboxMail.template),
        Column("status", "Status", OutboxMail.status),
        Column("attempts", "Attempts", OutboxMail.attempts),
        Column("next_attempt_at", "Next attempt", OutboxMail.next_attempt_at),
        Column("last_error", "Last error", OutboxMail.last_error, show_short),
        Column("created_at", "Queued", OutboxMail.created_at),
        Column("sent_at", "Sent", OutboxMail.sent_at),
    ),
    searchable=("to_addr", "subject", "template", "status"),
    sortable=("to_addr", "subject", "template", "status", "attempts", "next_attempt_at",
              "created_at", "sent_at"),
    default_sort=("created_at", "desc"),
    actions=(DELETE,),
)

_backups = Table(
    name="backups", title="Backups", model=Backup,
    columns=(
        Column("filename", "File", Backup.filename),
        Column("created_at", "Taken", Backup.created_at),
        Column("size_bytes", "Bytes", Backup.size_bytes),
        Column("sha256", "SHA-256", Backup.sha256),
        Column("schema_revision", "Schema", Backup.schema_revision),
        Column("row_counts", "Rows", Backup.row_counts, show_short),
    ),
    searchable=("filename", "sha256"), sortable=("filename", "created_at", "size_bytes"),
    default_sort=("created_at", "desc"),
    # No delete: a backup row and its file go together; the backups service owns both.
    actions=(MAKE_BACKUP, RESTORE),
)

_orders = Table(
    name="orders", title="Orders", model=Order,
    columns=(
        Column("number", "Number", Order.number),
        Column("status", "Status", Order.status),
        Column("email", "E-mail", Order.email),
        Column("name", "Name", Order.name),
        Column("total", "Total", Order.total_cents, show_money),
        Column("payment", "Payment", Order.payment),
        Column("city", "City", Order.city),
        Column("country", "Country", Order.country),
        Column("created_at", "Placed", Order.created_at),
        Column("paid_at", "Paid", Order.paid_at),
        Column("shipped_at", "Shipped", Order.shipped_at),
        Column("cancelled_at", "Cancelled", Order.cancelled_at),
    ),
    searchable=("number", "email", "name"),
    sortable=("number", "status", "email", "name", "total", "payment", "created_at", "paid_at",
              "shipped_at", "cancelled_at"),
    default_sort=("created_at", "desc"),
    # No edits and no delete: an order changes only through the state machine's actions.
    actions=(MARK_PAID, MARK_SHIPPED, CANCEL_ORDERS),
)

_order_number = select(Order.number).where(Order.id == OrderLine.order_id).scalar_subquery()
_order_lines = Table(
    name="order_lines", title="Order lines", model=OrderLine,
    columns=(  # read-only: what was bought, as it was
        Column("order", "Order", _order_number),
        Column("name", "Product", OrderLine.name),
        Column("unit_price", "Price", OrderLine.unit_price_cents, show_money),
        Column("quantity", "Quantity", OrderLine.quantity),
    ),
    searchable=("order", "name"), sortable=("order", "name", "unit_price", "quantity"),
    default_sort=("order", "asc"),
)

TABLES: dict[str, Table] = {t.name: t for t in (
    _users, _products, _categories, _account_blocks, _ip_blocks, _sessions, _one_time_keys,
    _searches, _events, _outbox, _backups, _orders, _order_lines,
)}


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise NotFound(f"There is no table {name!r}.") from None
