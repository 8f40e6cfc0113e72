"""API helpers: personal access tokens made straight through the service."""

from __future__ import annotations

from typing import Any

from electro.models import User
from electro.services import api_tokens


async def make_token(app: Any, user: User, name: str = "script", days: str = "30") -> str:
    """A new token of ``user``; returns the clear token."""
    rt = app.extensions["electro"]
    async with rt.sessions.begin() as db:
        return await api_tokens.create(db, rt.settings, user, name, days,
                                       {"ip": "127.0.0.1", "path": "/test"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
