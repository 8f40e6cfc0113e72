"""Signed links: a value and an expiry that only the holder of ELECTRO_SECRET_KEY can have
issued, checked without any stored state (an unsubscribe link, RFC 8058: the link itself is the
credential). No database, no web.

A token is ``<value>.<expiry as Unix seconds>.<HMAC-SHA256>``, the MAC over the purpose, value
and expiry under a key derived from the secret key for that purpose, so a token for one purpose
never works for another. Only URL-safe characters, so it fits in a path segment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime


def _mac(secret_key: str, purpose: str, value: int, expires: int) -> str:
    key = hmac.new(secret_key.encode(), f"electro signed link v1 {purpose}".encode(),
                   hashlib.sha256).digest()
    digest = hmac.new(key, f"{value}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def sign(secret_key: str, purpose: str, value: int, expires_at: datetime) -> str:
    """A token for ``value`` (a non-negative whole number) valid until ``expires_at``
    (naive UTC)."""
    expires = _seconds(expires_at)
    return f"{value}.{expires}.{_mac(secret_key, purpose, value, expires)}"


def verify(secret_keys: Sequence[str], purpose: str, token: str, now: datetime) -> int | None:
    """The value ``token`` was issued for, if one of ``secret_keys`` (the current key, then the
    one before a rotation; empty ones skipped) signed it for ``purpose`` and it has not
    expired at ``now``; else None, whatever is wrong with it."""
    value, _, rest = token.partition(".")
    expires, _, mac = rest.partition(".")
    if not (value.isascii() and value.isdigit() and expires.isascii() and expires.isdigit()
            and len(value) <= 18 and len(expires) <= 12):
        return None
    if int(expires) <= _seconds(now):
        return None
    for key in secret_keys:
        if key and hmac.compare_digest(
                mac.encode("utf-8", "surrogatepass"),
                _mac(key, purpose, int(value), int(expires)).encode()):
            return int(value)
    return None
