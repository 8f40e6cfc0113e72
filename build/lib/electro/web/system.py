"""Operational routes."""

from __future__ import annotations

from quart import Blueprint, Response
from quart_rate_limiter import rate_exempt

bp = Blueprint("system", __name__)


@bp.get("/healthz")
@rate_exempt  # probes and the benchmark baseline must never be limited
async def healthz() -> Response:
    return Response("ok", content_type="text/plain")
