"""ORM models for the whole domain. All times are naive UTC (see electro.clock)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from electro import clock
from electro.db import Base, Identified


class User(Identified):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))  # stored normalised, lower case
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consent to the newsletter (SPEC B2): opt-in, so off until the account ticks it; every
    # change is a ``newsletter_consent`` event (time and address: the proof of consent).
    newsletter: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    failed_window_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, onupdate=clock.now)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's API
    __table_args__ = (
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("uq_users_email_lower", func.lower(email), unique=True),
    )


class OneTimeKey(Identified):
    """A mailed key: register (pending registration), reset, activate or email_change."""

    __tablename__ = "one_time_keys"
    purpose: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex, never the key
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str | None] = mapped_column(String(32))  # pending registration
    email: Mapped[str | None] = mapped_column(String(254))  # target address
    password_hash: Mapped[str | None] = mapped_column(String(255))  # pending registration
    newsletter: Mapped[bool] = mapped_column(Boolean, default=False)  # pending registration
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserSession(Identified):
    """A signed-in device. quart-auth's auth_id is the clear id; only its SHA-256 is here."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class ApiToken(Identified):
    """A personal access token for the API (B3): only its SHA-256 is stored, like session ids;
    the clear token is shown once, when it is created."""

    __tablename__ = "api_tokens"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_ip: Mapped[str] = mapped_column(String(45), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountBlock(Identified):
    __tablename__ = "account_blocks"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    until: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True  # deleting a user looks here
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime)


class IpBlock(Identified):
    __tablename__ = "ip_blocks"
    ip: Mapped[str] = mapped_column(String(45), index=True)
    until: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True  # deleting a user looks here
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Category(Identified):
    __tablename__ = "categories"
    name: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)


class Product(Identified):
    __tablename__ = "products"
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str] = mapped_column(String(120), default="")
    # No index of its own: the three sort indexes below all lead with category_id.
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    # Exact money: integer cents, never float. Every change is kept in ``price_history``.
    price_cents: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    stock: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, onupdate=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's API
    # A category page sorted by any of these reads its rows in index order (migration 0002).
    # "id" by name: the column is declared on Identified.
    __table_args__ = (
        Index("ix_products_category_name", category_id, name, "id"),
        Index("ix_products_category_company", category_id, company, "id"),
        Index("ix_products_category_price", category_id, price_cents, "id"),
    )


class PriceChange(Base):
    """A product's price from ``changed_at`` until its next row (SPEC B1). Written only by the
    database's trigger on ``products`` (migration 0008), in the transaction that changes the
    price, so no write path (admin, CLI, bulk SQL) can forget it. A product whose price never
    changed has no rows; its first change also writes the price it had, dated ``created_at``.
    The key is the product and the moment: a transaction that sets one price twice keeps the
    last one."""

    __tablename__ = "price_history"
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    changed_at: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    price_cents: Mapped[int] = mapped_column(Integer)


class SearchRecord(Identified):
    """One client's search of one normalised query in one hour (the unique key stops pumping)."""

    __tablename__ = "searches"
    query: Mapped[str] = mapped_column(String(200))
    # Indexed for a shopper's own recent searches, which tune their recommendations (B6).
    client_hash: Mapped[str] = mapped_column(String(64), index=True)
    hour_start: Mapped[datetime] = mapped_column(DateTime)
    results: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, index=True)
    __table_args__ = (UniqueConstraint("query", "client_hash", "hour_start"),)


class SearchDaily(Base):
    """Distinct clients per query per day, updated as searches arrive (feeds the trending rank)."""

    __tablename__ = "search_daily"
    query: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clients: Mapped[int] = mapped_column(Integer, default=0)


class Event(Identified):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no FK: history outlives accounts
    actor: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")
    path: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboxMail(Identified):
    __tablename__ = "outbox"
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class Backup(Identified):
    __tablename__ = "backups"
    filename: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    row_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    schema_revision: Mapped[str] = mapped_column(String(32))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True  # deleting a user looks here
    )


class LoginFailure(Base):
    """Wrong passwords for one account from one client address (IPv6: its /64), counted in a
    window like ``users.failed_logins``; reaching ELECTRO_LOGIN_LOCK_THRESHOLD locks the account
    from that address only (issue 11 finding 7). The key (user_id, ip) makes counting one
    atomic upsert; rows past their window and lock are dead and purged by a tidy-up job."""

    __tablename__ = "login_failures"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True  # the key leads with it
    )
    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class TwoFactor(Base):
    """An account's TOTP secret (SPEC B4), sealed with a key derived from ELECTRO_SECRET_KEY
    (electro.security.totp), never in the clear. ``enabled_at`` None: enrolment begun, not yet
    confirmed with a code. ``last_step``: the time step of the last code accepted, so a code
    works once (a replay in its window is refused)."""

    __tablename__ = "two_factor"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    sealed_secret: Mapped[str] = mapped_column(String(255))
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)


class RecoveryCode(Identified):
    """One of the ten single-use codes given at enrolment; only its SHA-256 is stored."""

    __tablename__ = "recovery_codes"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class Basket(Identified):
    """A shopper's basket, held on the server: an account's (``user_id``), or an anonymous
    visitor's, named by a random cookie id of which only the SHA-256 is stored (like session
    ids). ``updated_at`` moves with every change; anonymous baskets idle for 30 days go."""

    __tablename__ = "baskets"
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, index=True)


class BasketLine(Identified):
    """A product in a basket. A deleted product leaves the line (product_id NULL) with its
    name, so the basket can say what went."""

    __tablename__ = "basket_lines"
    basket_id: Mapped[int] = mapped_column(ForeignKey("baskets.id", ondelete="CASCADE"))
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True)  # deleting looks here
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    __table_args__ = (UniqueConstraint("basket_id", "product_id"),)


class Order(Identified):
    """A placed order. The address, the e-mail and the money are copies taken when it was
    placed: what was bought stays as it was, whatever becomes of the account or catalogue.
    ``checkout_hash`` is the SHA-256 of the checkout form's one-time token: a second submit of
    the same form finds this order instead of making another."""

    __tablename__ = "orders"
    number: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), index=True)
    payment: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(120))
    street: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(16))
    city: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(60))
    subtotal_cents: Mapped[int] = mapped_column(Integer, default=0)
    delivery_cents: Mapped[int] = mapped_column(Integer, default=0)
    total_cents: Mapped[int] = mapped_column(Integer, default=0)
    checkout_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, index=True)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)


class OrderLine(Identified):
    """What was bought: the product's name and price as they were (a snapshot)."""

    __tablename__ = "order_lines"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True)  # deleting looks here
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)


class Newsletter(Identified):
    """A newsletter an admin wrote (SPEC B2). ``started_at``: when sending began, which fixed
    its recipients (one ``newsletter_deliveries`` row each); ``finished_at``: when none was
    left pending. ``claimed_at`` is touched by each sender's claim, which so takes this row's
    lock: two nodes claim one after the other, each seeing the other's claims in the rate
    window."""

    __tablename__ = "newsletters"
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    picks: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)  # deleting a user looks here
    created_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)


class NewsletterDelivery(Identified):
    """One newsletter to one shopper: the unique key makes a second send of the same newsletter
    to the same shopper impossible. ``status``: pending, sent, failed (gave up after retries)
    or skipped (no longer subscribed, active or unblocked when its turn came). A claim leases
    the row (``next_attempt_at`` moves on, like the outbox's) and stamps ``claimed_at``, which
    the rate cap counts."""

    __tablename__ = "newsletter_deliveries"
    newsletter_id: Mapped[int] = mapped_column(
        ForeignKey("newsletters.id", ondelete="CASCADE"))  # the unique key leads with it
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=clock.now)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    __table_args__ = (
        UniqueConstraint("newsletter_id", "user_id"),
        # The sender's next due rows, and the progress counts, read this index only.
        Index("ix_newsletter_deliveries_due", "status", "next_attempt_at", "id"),
    )


class ProductView(Base):
    """One client's view of one product on one day (B6), counted when the product page's
    recommendations load. The key makes a repeat that day a no-op; the client is an HMAC like
    ``searches.client_hash`` (a signed-in shopper's is computable from the account id, so their
    views feed their picks). Kept as long as events (ELECTRO_EVENT_RETENTION_DAYS)."""

    __tablename__ = "product_views"
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    client_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)


class ProductPair(Base):
    """A precomputed recommendation (B6): ``related_id`` for someone who bought (``kind``
    "bought") or viewed ("viewed") ``product_id``, with its cosine similarity. Written whole by
    the rebuild job (electro.services.recommendations.rebuild), read by lookups only."""

    __tablename__ = "product_pairs"
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    related_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True,
        index=True)  # deleting a product looks here
    score: Mapped[float] = mapped_column(Float)


class RecommendationBuild(Base):
    """When the pairs were last rebuilt and from which signals: the row a node claims before
    rebuilding (so two nodes never rebuild at once) and the watermark that skips a rebuild
    when nothing new was bought or viewed."""

    __tablename__ = "recommendation_builds"
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    signals: Mapped[str] = mapped_column(String(64), default="")
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class ProductPopularity(Base):
    """How many shoppers bought a product lately (B6): the cold-start picks (a new shopper's,
    an empty history's category), rebuilt with the pairs. Only products someone bought."""

    __tablename__ = "product_popularity"
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[int] = mapped_column(Integer)  # copied: picks by category read an index
    buyers: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_product_popularity_category_buyers", category_id, buyers),)
