"""The domain errors: one family that every service raises and ``web/errors.py`` maps once.

Each error carries a message for the person who asked, the HTTP status that fits it, and, for
forms, messages by field (``errors``) and about the form as a whole (``problems``). A route
catches one only where it re-renders a form with those messages; everything else reaches the
one handler, which answers with a page or fragment and records an event.

Nothing here imports Quart: services, the CLI and background jobs raise these too.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a message; nothing was changed by the refused work."""

    status = 422

    def __init__(
        self,
        message: str = "",
        *,
        errors: dict[str, str] | None = None,
        problems: list[str] | None = None,
    ) -> None:
        self.errors: dict[str, str] = dict(errors or {})
        self.problems: list[str] = list(problems) if problems is not None else (
            [message] if message else [])
        self.message = message or " ".join([*self.problems, *self.errors.values()])
        super().__init__(self.message)


class InvalidInput(DomainError):
    """Input that cannot be accepted: messages by field and about the form as a whole."""


class NotFound(DomainError):
    """No such thing (or none the asker may see): a 404."""

    status = 404


class Conflict(DomainError):
    """The request was understood but clashes with the current state (a row changed since it
    was read, a name taken meanwhile): a 409, and trying again after a reload may work."""

    status = 409


class FieldError(ValueError):
    """One value refused by a field rule (a username, an e-mail address, a date); the message
    says what to type instead. Forms gather these into an ``InvalidInput``."""
