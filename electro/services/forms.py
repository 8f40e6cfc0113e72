"""What the services' forms share: a refusal that names its fields, and the new-password rule
(registration, password reset and password change all ask for a new password twice)."""

from __future__ import annotations

from electro.config import Settings
from electro.security.passwords import policy_problems

MISMATCH = "The two passwords differ; type the same password twice."


class FormProblems(Exception):
    """Field name -> what to do about it."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(", ".join(problems))
        self.problems = problems


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
