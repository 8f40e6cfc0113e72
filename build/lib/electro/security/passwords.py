"""Passwords: argon2id hashing off the event loop, and the policy (SPEC A12).

Hashing costs ~80 ms of CPU with the library defaults, so it runs in a worker thread, and a
semaphore caps how many run at once: a burst of log-ins queues instead of starving the loop's
thread of CPU and memory (64 MiB per hash).
"""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from electro.config import Settings

COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


def normalise(password: str) -> str:
    """NFKC, so the same password typed on two keyboards (composed or not) is one password."""
    return unicodedata.normalize("NFKC", password)


class Passwords:
    """One per app: argon2id with the configured parameters and a cap on concurrent hashes."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(settings.hash_concurrency)
        # Made at start-up: made at the first unknown login instead, that one answer would take
        # a hash longer than any other (a timing tell).
        self._dummy_hash = self._hasher.hash("dummy password for timing only")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, normalise(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, normalise(password))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's (rehash on log-in)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification, so an unknown login answers as slowly as a
        known one (no user enumeration by timing)."""
        await self.verify(self._dummy_hash, password)


def _read_common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line and not line.startswith("#"))


# Read once at import (start-up), not on the event loop at the first policy check.
_COMMON = _read_common_passwords()


def policy_problems(
    password: str, settings: Settings, *, username: str = "", email: str = ""
) -> list[str]:
    """What is wrong with a new password, in words that say what to do; empty when it is fine.

    No composition rules (NIST SP 800-63B): length, a list of common passwords, and not built
    from the account's own name or address.
    """
    password = normalise(password)
    folded = password.casefold()
    if len(password) < settings.password_min_length:
        return [f"Use at least {settings.password_min_length} characters; a few words "
                "strung together make a strong, memorable password."]
    if len(password) > settings.password_max_length:
        return [f"Use at most {settings.password_max_length} characters."]
    problems = []
    if folded in _COMMON:
        problems.append("This password is one of the most common ones; choose something "
                        "less predictable.")
    local_part = email.partition("@")[0]
    for own, what in ((username, "your username"), (local_part, "your e-mail address")):
        if len(own) >= 3 and own.casefold() in folded:
            problems.append(f"Do not build the password from {what}.")
    return problems
