"""Newsletters (SPEC B2): consent, writing, sending each shopper's own picks, unsubscribing.

Consent is ``users.newsletter``, off until the shopper ticks it (on /account or when signing
up); every change is a ``newsletter_consent`` event with its time and address.

Sending. Starting a newsletter fixes its recipients in one INSERT ... SELECT: a
``newsletter_deliveries`` row per active, unblocked, subscribed account, unique per
(newsletter, shopper). The job ``send_due`` claims due rows the way the outbox does (an UPDATE
that leases them; the WHERE is re-checked per row, so two nodes never claim one row), renders
each mail when it is sent (the shopper's picks as they are then, from
``recommendations.for_shopper``), and marks it sent in a transaction of its own. A crash leaves
the rows it had claimed leased; once the lease ends they are claimed again, and rows already
marked sent never are: a restart sends the rest. (A crash between the relay's "250 OK" and the
mark is the one case that repeats a mail, as for the outbox.) A recipient who unsubscribed,
was blocked or deactivated after sending started is skipped when their turn comes.

The rate cap (ELECTRO_NEWSLETTER_PER_MINUTE) counts the rows claimed in the last minute, all
nodes together: a claim first touches the newsletter's row, so claims on two nodes take turns
and each counts the other's.

Unsubscribing (RFC 8058): every mail carries ``List-Unsubscribe`` with a signed link
(electro.security.signed) and ``List-Unsubscribe-Post``. The link is the credential: a POST to
it unsubscribes without a log-in; a GET only shows a confirm button, so link scanners
unsubscribe nobody.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from electro import clock
from electro.config import Settings
from electro.errors import Conflict, DomainError, InvalidInput, NotFound
from electro.inputs import whole_number
from electro.models import Newsletter, NewsletterDelivery, Product, User
from electro.security import signed
from electro.services import events, mail, recommendations
from electro.services.catalog import format_price
from electro.services.events import Actor, Origin
from electro.services.sessions import account_blocked

log = logging.getLogger(__name__)

UNSUBSCRIBE = "newsletter-unsubscribe"  # the signed link's purpose
UNSUBSCRIBE_LINK_DAYS = 180  # a link in an old newsletter still works this long
MAX_PICKS = 12
MAX_SUBJECT = 200
MAX_BODY = 20_000
BATCH = 50
RATE_WINDOW = timedelta(minutes=1)
PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"
CONSENT = "newsletter_consent"


class UnsubscribeLinkRefused(NotFound):
    """The link is not one we signed, or has expired."""

    def __init__(self) -> None:
        super().__init__(
            "This unsubscribe link does not work: it may be cut short or too old. Log in and "
            "untick the newsletter on your account page to stop it.")


class AlreadySent(Conflict):
    def __init__(self) -> None:
        super().__init__("This newsletter is already being sent (or was): it goes to each "
                         "subscriber once. Write a new one to send again.")


class MailServerRefused(DomainError):
    """The mail server did not take the test mail."""

    status = 503


# -- consent -------------------------------------------------------------------------------


def consents(raw: str | None) -> bool:
    """A ticked checkbox sends a value; an unticked one sends nothing."""
    return raw is not None and raw != ""


async def record_consent(
    db: AsyncSession, user: User, given: bool, via: str, origin: Origin, **details: Any
) -> None:
    """The proof of consent: who, when, from where, through what, given or withdrawn."""
    await events.record(db, CONSENT, actor_id=user.id, actor=user.username, given=given,
                        via=via, **origin, **details)


async def set_consent(db: AsyncSession, user: User, given: bool, origin: Origin) -> bool:
    """The account's own choice on /account; returns whether it changed (only a change is
    recorded)."""
    if user.newsletter == given:
        return False
    user.newsletter = given
    await record_consent(db, user, given, "account", origin)
    return True


def unsubscribe_token(settings: Settings, user_id: int) -> str:
    return signed.sign(settings.secret_key, UNSUBSCRIBE, user_id,
                       clock.now() + timedelta(days=UNSUBSCRIBE_LINK_DAYS))


def unsubscribe_url(settings: Settings, user_id: int) -> str:
    return f"{settings.base_url}/newsletter/unsubscribe/{unsubscribe_token(settings, user_id)}"


async def link_owner(db: AsyncSession, settings: Settings, token: str) -> User:
    """The account an unsubscribe link was made for. Raises UnsubscribeLinkRefused."""
    user_id = signed.verify((settings.secret_key, settings.previous_secret_key), UNSUBSCRIBE,
                            token, clock.now())
    user = None if user_id is None else await db.get(User, user_id)
    if user is None:
        raise UnsubscribeLinkRefused()
    return user


async def unsubscribe(db: AsyncSession, settings: Settings, token: str, origin: Origin) -> User:
    """The link's account stops getting newsletters, including the rest of one being sent.
    Unsubscribing twice is no error (a mail client may send the one-click POST again)."""
    user = await link_owner(db, settings, token)
    changed = await db.scalar(
        update(User).where(User.id == user.id, User.newsletter.is_(True))
        .values(newsletter=False, version=User.version + 1).returning(User.id)
        .execution_options(synchronize_session=False))
    if changed is not None:
        await record_consent(db, user, False, "unsubscribe link", origin)
    return user


# -- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    sent: int = 0
    pending: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.pending + self.failed + self.skipped

    @property
    def done(self) -> bool:
        return self.pending == 0


def _checked(subject: str, body: str, picks: str) -> tuple[str, str, int]:
    errors = {}
    subject = " ".join(subject.split())  # one line: no CR/LF reaches a header
    if not subject:
        errors["subject"] = "Write a subject."
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = f"At most {MAX_SUBJECT} characters."
    body = body.replace("\r\n", "\n").strip()
    if not body:
        errors["body"] = "Write the newsletter's text."
    elif len(body) > MAX_BODY:
        errors["body"] = f"At most {MAX_BODY:,} characters."
    try:
        count = whole_number(picks, maximum=MAX_PICKS)
    except ValueError as exc:
        errors["picks"] = str(exc)
        count = 0
    if errors:
        raise InvalidInput(errors=errors)
    return subject, body, count


async def write(
    db: AsyncSession, subject: str, body: str, picks: str, actor: Actor
) -> Newsletter:
    """A new newsletter, not sent yet. Raises InvalidInput."""
    subject, body, count = _checked(subject, body, picks)
    newsletter = Newsletter(subject=subject, body=body, picks=count, created_by_id=actor.id)
    db.add(newsletter)
    await db.flush()
    await actor.record(db, "admin_newsletter_written", newsletter_id=newsletter.id,
                       subject=subject)
    return newsletter


async def get(db: AsyncSession, newsletter_id: int) -> Newsletter:
    newsletter = await db.get(Newsletter, newsletter_id)
    if newsletter is None:
        raise NotFound("There is no such newsletter.")
    return newsletter


def _counts(*where: Any) -> Any:
    return (select(NewsletterDelivery.newsletter_id, NewsletterDelivery.status, func.count())
            .where(*where).group_by(NewsletterDelivery.newsletter_id, NewsletterDelivery.status))


async def progress(db: AsyncSession, newsletter_id: int) -> Progress:
    rows = await db.execute(_counts(NewsletterDelivery.newsletter_id == newsletter_id))
    return Progress(**{status: int(n) for _, status, n in rows})


async def recent(db: AsyncSession, limit: int = 50) -> list[tuple[Newsletter, Progress]]:
    """The latest newsletters, newest first, each with its progress (two queries)."""
    newsletters = list(await db.scalars(
        select(Newsletter).order_by(Newsletter.id.desc()).limit(limit)))
    counts: dict[int, dict[str, int]] = {}
    if newsletters:
        rows = await db.execute(_counts(
            NewsletterDelivery.newsletter_id.in_([n.id for n in newsletters])))
        for newsletter_id, status, n in rows:
            counts.setdefault(newsletter_id, {})[status] = int(n)
    return [(n, Progress(**counts.get(n.id, {}))) for n in newsletters]


async def find_shopper(db: AsyncSession, who: str) -> User:
    """An account by username or e-mail address, for a preview. Raises InvalidInput."""
    folded = who.strip().lower()
    user = await db.scalar(select(User).where(or_(
        func.lower(User.username) == folded, func.lower(User.email) == folded)).limit(1))
    if user is None:
        raise InvalidInput(errors={"shopper": "No account has this username or e-mail."})
    return user


# -- rendering -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One shopper's newsletter as it is mailed."""

    subject: str
    text: str
    html: str
    unsubscribe_url: str
    picks: list[Product]

    @property
    def headers(self) -> dict[str, str]:
        return {"List-Unsubscribe": f"<{self.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


async def render_for(
    db: AsyncSession, settings: Settings, newsletter: Newsletter, user: User
) -> Rendered:
    """The newsletter as ``user`` gets it now: their own picks, their unsubscribe link."""
    picks = (await recommendations.for_shopper(db, user.id, newsletter.picks,
                                               secret_key=settings.secret_key)
             if newsletter.picks else [])
    link = unsubscribe_url(settings, user.id)
    context = {"newsletter": newsletter, "username": user.username, "picks": picks,
               "paragraphs": newsletter.body.split("\n\n"), "base_url": settings.base_url,
               "unsubscribe_url": link, "money": format_price}
    _, text = mail.render_mail("newsletter", context)
    return Rendered(newsletter.subject, text, mail.render_html("newsletter", context), link,
                    picks)


def message_of(settings: Settings, to: str, rendered: Rendered, idstring: str) -> Any:
    return mail.compose_message(settings, to, rendered.subject, rendered.text, idstring=idstring,
                                html=rendered.html, headers=rendered.headers)


async def send_test(
    db: AsyncSession, settings: Settings, newsletter: Newsletter, admin: User, actor: Actor
) -> None:
    """The newsletter as ``admin`` would get it, mailed to them now (not through the queue: the
    admin waits to see it went). Raises MailServerRefused."""
    rendered = await render_for(db, settings, newsletter, admin)
    transport = mail.Transport(settings)
    try:
        await transport.send(message_of(settings, admin.email, rendered,
                                        f"newsletter{newsletter.id}-test"),
                             f"newsletter{newsletter.id}-test")
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailServerRefused(f"The mail server did not take the test mail: {exc}") from None
    finally:
        await transport.close()
    await actor.record(db, "admin_newsletter_test", newsletter_id=newsletter.id, to=admin.email)


# -- sending -------------------------------------------------------------------------------


def may_receive(now: Any) -> Any:
    """SQL condition on ``users``: the account gets newsletters now."""
    return and_(User.is_active.is_(True), User.newsletter.is_(True),
                ~account_blocked(User.id, now))


async def start_sending(db: AsyncSession, newsletter_id: int, actor: Actor) -> int:
    """Fix the recipients (one INSERT ... SELECT) and let the sender go; returns how many.
    Sending a newsletter a second time is refused (a Conflict)."""
    now = clock.now()
    started = await db.scalar(
        update(Newsletter).where(Newsletter.id == newsletter_id, Newsletter.started_at.is_(None))
        .values(started_at=now).returning(Newsletter.id)
        .execution_options(synchronize_session=False))
    if started is None:
        await get(db, newsletter_id)  # a NotFound for an unknown id
        raise AlreadySent()
    columns = {"newsletter_id": literal(newsletter_id), "user_id": User.id,
               "status": literal(PENDING), "attempts": literal(0),
               "next_attempt_at": literal(now), "last_error": literal("")}
    result = await db.execute(insert(NewsletterDelivery).from_select(
        list(columns), select(*columns.values()).where(may_receive(now))))
    recipients = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if not recipients:
        await db.execute(update(Newsletter).where(Newsletter.id == newsletter_id)
                         .values(finished_at=now))
    await actor.record(db, "admin_newsletter_sent", newsletter_id=newsletter_id,
                       recipients=recipients)
    db.info[mail.QUEUED_FLAG] = True  # wake the sender after the commit
    return recipients


async def _claim(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> list[NewsletterDelivery]:
    """Lease the next due deliveries of one newsletter, as many as the rate cap leaves."""
    now = clock.now()
    due = (select(NewsletterDelivery.newsletter_id)
           .where(NewsletterDelivery.status == PENDING, NewsletterDelivery.next_attempt_at <= now)
           .order_by(NewsletterDelivery.id).limit(1).scalar_subquery())
    async with sessions.begin() as db:
        # First statement, a write: it takes the newsletter's row lock (PostgreSQL) or the
        # write lock (SQLite), so the count below includes every other node's claims.
        newsletter_id = await db.scalar(
            update(Newsletter).where(Newsletter.id == due).values(claimed_at=now)
            .returning(Newsletter.id).execution_options(synchronize_session=False))
        if newsletter_id is None:
            return []
        used = await db.scalar(select(func.count()).select_from(NewsletterDelivery).where(
            NewsletterDelivery.claimed_at > now - RATE_WINDOW))
        room = min(BATCH, settings.newsletter_per_minute - int(used or 0))
        if room <= 0:
            return []
        ids = (select(NewsletterDelivery.id)
               .where(NewsletterDelivery.newsletter_id == newsletter_id,
                      NewsletterDelivery.status == PENDING,
                      NewsletterDelivery.next_attempt_at <= now)
               .order_by(NewsletterDelivery.id).limit(room).scalar_subquery())
        claimed = (await db.scalars(
            update(NewsletterDelivery)
            .where(NewsletterDelivery.id.in_(ids), NewsletterDelivery.status == PENDING,
                   NewsletterDelivery.next_attempt_at <= now)
            .values(next_attempt_at=now + mail.LEASE, claimed_at=now,
                    attempts=NewsletterDelivery.attempts + 1)
            .returning(NewsletterDelivery).execution_options(synchronize_session=False)
        )).all()
    return sorted(claimed, key=lambda d: d.id)


async def send_due(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """The background job: send what is due within the rate cap; returns how many went out.
    Newsletters with nothing left pending are marked finished."""
    sent = 0
    while batch := await _claim(sessions, settings):
        sent += await _send_batch(batch, sessions, settings)
    async with sessions.begin() as db:
        unfinished = and_(Newsletter.started_at.is_not(None), Newsletter.finished_at.is_(None))
        left = select(NewsletterDelivery.id).where(
            NewsletterDelivery.newsletter_id == Newsletter.id,
            NewsletterDelivery.status == PENDING)
        if await db.scalar(select(Newsletter.id).where(unfinished, ~left.exists()).limit(1)):
            await db.execute(update(Newsletter).where(unfinished, ~left.exists())
                             .values(finished_at=clock.now()))
    return sent


async def _send_batch(
    batch: list[NewsletterDelivery], sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> int:
    transport = mail.Transport(settings)
    sent = 0
    try:
        async with sessions() as db:
            newsletter = await db.get_one(Newsletter, batch[0].newsletter_id)
        for delivery in batch:
            # Read afresh for each mail, so an unsubscribe a moment ago counts.
            async with sessions() as db:
                values = await _send_one(db, transport, settings, newsletter, delivery)
            sent += values["status"] == SENT
            async with sessions.begin() as db:
                await db.execute(update(NewsletterDelivery)
                                 .where(NewsletterDelivery.id == delivery.id).values(**values))
    finally:
        await transport.close()
    return sent


async def _send_one(
    db: AsyncSession, transport: mail.Transport, settings: Settings, newsletter: Newsletter,
    delivery: NewsletterDelivery,
) -> dict[str, Any]:
    """Send one delivery; the values its row takes."""
    user = await db.scalar(select(User).where(User.id == delivery.user_id,
                                              may_receive(clock.now())))
    if user is None:  # unsubscribed, blocked or deactivated since sending started
        return {"status": SKIPPED}
    rendered = await render_for(db, settings, newsletter, user)
    label = f"newsletter{newsletter.id}-{delivery.id}"
    try:
        await transport.send(message_of(settings, user.email, rendered, label), label)
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("newsletter delivery %s attempt %s failed: %s", delivery.id,
                    delivery.attempts, exc)
        given_up = delivery.attempts >= mail.MAX_ATTEMPTS
        return {"status": FAILED if given_up else PENDING, "last_error": str(exc)[:500],
                "next_attempt_at": clock.now() + mail.backoff(delivery.attempts)}
    return {"status": SENT, "sent_at": clock.now(), "last_error": ""}
