"""The new-password rule that registration, password reset and password change share (each
asks for a new password twice). A refused form raises ``electro.errors.InvalidInput``."""

from __future__ import annotations

from electro.config import Settings
from electro.security.passwords import policy_problems

MISMATCH = "The two passwords differ; type the same password twice."


def new_password_problems(
    settings: Settings, password: str, confirm: str, *, username: str, email: str
) -> dict[str, str]:
    """The problems of a chosen password and its repetition, by field (empty: none)."""
    problems = {}
    if found := policy_problems(password, settings, username=username, email=email):
        problems["password"] = " ".join(found)
    if password != confirm:
        problems["password_confirm"] = MISMATCH
    return problems
