"""Mail through a durable outbox (SPEC P2).

``send_mail`` only adds a row inside the caller's transaction, so a mail exists exactly when the
change that caused it was committed. The sender job claims due rows with a lease (an atomic
UPDATE, safe with one runner per worker), delivers them with aiosmtplib, or as ``.eml`` files
when no SMTP host is configured, and retries failures with exponential backoff: an SMTP outage
delays mail but never loses it. A body may hold a clear one-time key, so it is kept only until
the mail is sent (or given up).

A mail whose content depends on whether an address has an account (a reset or activation key)
is queued by ``queue_request`` with the same single insert whatever the answer, and composed
by the sender in the background (``compose_requested``): the request that asked costs the same
for a known and an unknown address, so its timing does not tell which it was.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from datetime import timedelta
from email.message import EmailMessage, Message
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import String, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from electro import clock
from electro.config import Settings
from electro.models import OutboxMail, User

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
# Plain-text mail: no HTML autoescaping; StrictUndefined turns a missing value into an error
# in the request that queued the mail, not a blank in a sent one.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=False, undefined=StrictUndefined  # noqa: S701
)
# The HTML part of a mail that has one (a newsletter): ``.html`` templates, autoescaped.
_html_env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                        autoescape=select_autoescape(["html"]))
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)  # a claimed mail whose sender died is retried after this
BATCH = 50
QUEUED_FLAG = "mail_queued"  # set in AsyncSession.info so the web layer can wake the sender


def render_mail(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """``templates/mail/<template>.txt``: a first line ``Subject: ...``, a blank line, the body."""
    text = _env.get_template(f"{template}.txt").render(**context)
    head, _, body = text.partition("\n\n")
    if not head.startswith("Subject: "):
        raise ValueError(f"mail template {template!r} must start with a 'Subject: ' line")
    subject = " ".join(head.removeprefix("Subject: ").split())  # no CR/LF header injection
    return subject, body.strip() + "\n"


async def send_mail(
    db: AsyncSession, settings: Settings, to: str, template: str, **context: Any
) -> None:
    """Queue a mail in the caller's transaction; it goes out after the commit."""
    await send_mails(db, settings, template, [(to, context)])


async def send_mails(
    db: AsyncSession,
    settings: Settings,
    template: str,
    recipients: Sequence[tuple[str, dict[str, Any]]],
) -> int:
    """Queue one mail per (address, context) with a single multi-row INSERT."""
    rows = []
    for to, context in recipients:
        subject, body = render_mail(template, {"base_url": settings.base_url, **context})
        rows.append({"to_addr": to, "subject": subject, "body": body, **_pending(template)})
    if rows:
        await db.execute(insert(OutboxMail), rows)
        db.info[QUEUED_FLAG] = True
    return len(rows)


_NAME_SLOT = "\ue000"  # a private-use character: no template text or filter produces it


async def send_mail_to_users(
    db: AsyncSession, settings: Settings, template: str, users: Any, **context: Any
) -> int:
    """Queue one mail to every account matching the condition ``users``, from one
    INSERT ... SELECT: the template is rendered once, with a slot that the database fills with
    each account's username, so no row passes through Python (10,000 notices cost what one
    does). Returns how many were queued."""
    subject, body = render_mail(
        template, {"base_url": settings.base_url, **context, "username": _NAME_SLOT})
    columns = {"to_addr": User.email, "subject": _per_user(subject), "body": _per_user(body),
               **{name: literal(value) for name, value in _pending(template).items()}}
    result = await db.execute(insert(OutboxMail).from_select(
        list(columns), select(*columns.values()).where(users)))
    queued = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if queued:
        db.info[QUEUED_FLAG] = True
    return queued


REQUESTED = "requested"  # a queued request, not yet a mail: compose_requested writes it
Composed = tuple[str, dict[str, Any]] | None
Composer = Callable[[AsyncSession, Settings, str], Awaitable[Composed]]
"""``composer(db, settings, address)``: the template and context of the mail to send to
``address``, or None when it gets none (no such account); it may write (issue a key)."""


async def queue_request(db: AsyncSession, purpose: str, address: str) -> None:
    """Ask for a ``purpose`` mail to ``address``, composed in the background."""
    await db.execute(insert(OutboxMail).values(
        to_addr=address, subject="", body="", **{**_pending(purpose), "status": REQUESTED}))
    db.info[QUEUED_FLAG] = True


def composing(composers: Mapping[str, Composer]) -> Callable[..., Awaitable[int]]:
    """The job that turns queued requests into mails (or drops them): each in a transaction
    of its own with its composer's writes, claimed by an UPDATE so two workers never compose
    the same one. Returns how many became mails."""

    async def compose_requested(
        sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> int:
        composed = 0
        while True:
            async with sessions.begin() as db:
                request = await db.scalar(
                    update(OutboxMail)
                    .where(OutboxMail.id == select(OutboxMail.id)
                           .where(OutboxMail.status == REQUESTED)
                           .order_by(OutboxMail.id).limit(1).scalar_subquery(),
                           OutboxMail.status == REQUESTED)
                    .values(status="composing").returning(OutboxMail))
                if request is None:
                    return composed
                made = await composers[request.template](db, settings, request.to_addr)
                if made is None:
                    await db.delete(request)
                    continue
                template, context = made
                subject, body = render_mail(template, {"base_url": settings.base_url, **context})
                request.subject, request.body = subject, body
                request.template, request.status = template, "pending"
                composed += 1

    return compose_requested


def _pending(template: str) -> dict[str, Any]:
    """A queued mail's bookkeeping columns: due now."""
    now = clock.now()
    return {"template": template, "status": "pending", "attempts": 0, "last_error": "",
            "next_attempt_at": now, "created_at": now}


def _per_user(rendered: str) -> Any:
    """SQL text: ``rendered`` with each name slot replaced by the row's username."""
    first, *rest = rendered.split(_NAME_SLOT)
    expr: Any = literal(first, String)
    for part in rest:
        expr = expr + User.username + literal(part, String)
    return expr


def render_html(template: str, context: dict[str, Any]) -> str:
    """``templates/mail/<template>.html``, every value autoescaped."""
    return _html_env.get_template(f"{template}.html").render(**context)


def build_message(mail: OutboxMail, settings: Settings) -> EmailMessage:
    return compose_message(settings, mail.to_addr, mail.subject, mail.body,
                           idstring=f"outbox{mail.id}")


def compose_message(
    settings: Settings, to: str, subject: str, text: str, *, idstring: str,
    html: str | None = None, headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A mail from the shop: the text, and ``html`` as its alternative when given;
    ``headers`` added (List-Unsubscribe...)."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring=idstring, domain="electro.invalid")
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def _claim(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMail]:
    """Lease up to BATCH due mails in one UPDATE ... RETURNING. The WHERE is re-checked for
    every row as it is updated, so a row another worker leased a moment earlier (its
    ``next_attempt_at`` moved on) is not ours: no mail is sent twice."""
    now = clock.now()
    due = (select(OutboxMail.id)
           .where(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now)
           .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(BATCH))
    async with sessions.begin() as db:
        claimed = (await db.scalars(
            update(OutboxMail)
            .where(OutboxMail.id.in_(due.scalar_subquery()), OutboxMail.status == "pending",
                   OutboxMail.next_attempt_at <= now)
            .values(next_attempt_at=now + LEASE, attempts=OutboxMail.attempts + 1)
            .returning(OutboxMail)
        )).all()
    return sorted(claimed, key=lambda m: m.id)


# Mail is flattened at RFC 5322's hard line limit, not at its advised 78 characters: a header with
# nowhere to fold (a List-Unsubscribe URL) would otherwise become an RFC 2047 encoded word,
# which mail clients do not read as a link. aiosmtplib folds every EmailMessage at 78 again,
# so it gets the flattened mail re-read as a compat32 Message, which it sends as it is.
_WIRE = email.policy.SMTP.clone(max_line_length=998)


def wire_form(message: EmailMessage) -> Message:
    return email.message_from_bytes(message.as_bytes(policy=_WIRE),
                                    policy=email.policy.compat32)


class Transport:
    """Where a batch goes: one SMTP connection, opened at its first mail and kept for the rest
    (a mass mailing is not one handshake per mail; a dropped connection is opened again), or
    .eml files when no SMTP host is set."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, message: EmailMessage, mail_id: int | str) -> None:
        """``mail_id`` names the .eml file when there is no SMTP host."""
        settings = self._settings
        if not settings.smtp_host:
            await asyncio.to_thread(_write_eml, settings.mail_dir, mail_id, message)
            return
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = aiosmtplib.SMTP(
                hostname=settings.smtp_host, port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password or None,
                start_tls=settings.smtp_starttls or None, timeout=15,
            )
            await self._smtp.connect()
        await self._smtp.send_message(wire_form(message))

    async def close(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.quit()


def _write_eml(folder: Path, mail_id: int | str, message: EmailMessage) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    (folder / f"{stamp}-{mail_id}.eml").write_bytes(message.as_bytes(policy=_WIRE))


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


async def deliver_due(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Send everything that is due, a batch at a time, so a key queued behind a backlog (a test
    mail to 10,000 accounts) still goes out in this round; returns how many went out."""
    sent = 0
    while batch := await _claim(sessions):
        sent += await _deliver_batch(batch, sessions, settings)
    return sent


async def _deliver_batch(
    batch: list[OutboxMail], sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> int:
    transport = Transport(settings)
    try:
        return await _send_each(batch, transport, sessions, settings)
    finally:
        await transport.close()


async def _send_each(
    batch: list[OutboxMail], transport: Transport,
    sessions: async_sessionmaker[AsyncSession], settings: Settings,
) -> int:
    sent = 0
    for mail in batch:
        try:
            await transport.send(build_message(mail, settings), mail.id)
        except (aiosmtplib.SMTPException, OSError) as exc:
            failed = mail.attempts >= MAX_ATTEMPTS
            log.warning("mail %s attempt %s failed: %s", mail.id, mail.attempts, exc)
            values: dict[str, Any] = {
                "last_error": str(exc)[:500],
                "status": "failed" if failed else "pending",
                "next_attempt_at": clock.now() + backoff(mail.attempts),
            }
            if failed:
                values["body"] = ""  # see below
        else:
            sent += 1
            # The body may hold a clear one-time key: once the mail is out, it is not kept.
            values = {"status": "sent", "sent_at": clock.now(), "last_error": "", "body": ""}
        async with sessions.begin() as db:
            await db.execute(update(OutboxMail).where(OutboxMail.id == mail.id).values(**values))
    return sent
