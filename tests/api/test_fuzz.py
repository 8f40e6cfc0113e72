"""B3: schemathesis generates thousands of requests from /openapi.json against a live server
(positive and negative data, every operation, with a working token): no server error, and every
answer conforms to its schema (status, content type, body)."""

from __future__ import annotations

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support import make_user
from tests.support.api import bearer, make_token
from tests.support.browser import LiveServer

EXAMPLES = 350  # per operation and mode; an operation without parameters has fewer to give


def _run(operation: Any, mode: GenerationMode, url: str, token: str,
         sent: dict[str, int]) -> None:
    # A cursor is opaque: any string of its alphabet fits the schema, and only those the
    # listing handed out are accepted (400 otherwise), so "valid by the schema, so accepted"
    # cannot hold for the listing. Every other check runs on it, and all checks elsewhere.
    excluded = [positive_data_acceptance] if operation.path == "/api/v1/products" else []
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def call(case: Any) -> None:
        headers = {**bearer(token), **(case.headers or {})}
        response = case.call(base_url=url, headers=headers)
        sent[operation.label] = sent.get(operation.label, 0) + 1
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    try:
        call()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise  # only an operation without parameters has no invalid request to make


def _fuzz(url: str, token: str) -> dict[str, int]:
    """Requests sent per operation; raises on the first failing check."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(result.ok(), mode, url, token, sent)
    return sent


async def test_thousands_of_generated_requests_get_conforming_answers(
    app: Any, live_server: LiveServer, catalogue: dict[str, int]
) -> None:
    token = await make_token(app, await make_user(app, "fuzzer"))
    sent = await asyncio.to_thread(_fuzz, live_server.url, token)
    total = sum(sent.values())
    print(f"schemathesis: {total} generated requests, 0 server errors, all conforming:", sent)
    assert set(sent) == {"GET /api/v1/categories", "GET /api/v1/products",
                         "GET /api/v1/products/{product_id}", "GET /api/v1/trending",
                         "GET /api/v1/me", "GET /api/v1/orders",
                         "GET /api/v1/orders/{number}"}
    assert total >= 2500
