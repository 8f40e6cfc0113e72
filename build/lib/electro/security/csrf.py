"""CSRF token maths: a token is 256 random bits; a sent token matches only in constant time.
The request check that uses them is electro.web.csrf."""

from __future__ import annotations

import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(sent: str | None, expected: str | None) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent), str(expected))
