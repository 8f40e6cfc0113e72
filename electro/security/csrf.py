"""CSRF token maths: a token is 256 random bits; a sent token matches only in constant time.
The request check that uses them is electro.web.csrf."""

from __future__ import annotations

import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(sent: str | None, expected: str | None) -> bool:
    """Compared as bytes: ``compare_digest`` refuses str with non-ASCII characters (a TypeError),
    and a sent token may be any text a client typed into the field or header."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode())
