"""B3: every error under /api/ is an RFC 9457 problem (application/problem+json) with the right
status, never an HTML page or a traceback; the pages keep their HTML error pages."""

from __future__ import annotations

from typing import Any

from quart import request


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = await response.get_json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    return body


async def test_each_error_status_is_a_problem(app: Any, client: Any) -> None:
    @app.get("/api/v1/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals at /srv/electro/app.py line 12")

    @app.post("/api/v1/echo")
    async def echo() -> bytes:
        return await request.get_data()

    await _problem(await client.get("/api/v1/nothing-here"), 404)
    await _problem(await client.get("/api/v1/products/99999999999999"), 404)
    not_allowed = await client.raw.delete("/api/v1/products")
    await _problem(not_allowed, 405)
    assert not_allowed.headers["Allow"] == "GET, HEAD, OPTIONS"
    await _problem(await client.get("/api/v1/products?limit=abc"), 400)
    await _problem(await client.raw.post("/api/v1/echo", data=b"x" * 70_000), 413)
    crashed = await _problem(await client.get("/api/v1/boom"), 500)
    assert "secret internals" not in str(crashed) and "Traceback" not in str(crashed)
    # Outside /api/ the same errors are still pages.
    page = await client.get("/nothing-here")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


async def test_validation_problems_name_each_refused_parameter(client: Any) -> None:
    problem = await _problem(await client.get("/api/v1/products?sort=stock&limit=500"), 400)
    assert set(problem["errors"]) == {"sort", "limit"}
    assert "sort" in problem["detail"] and "limit" in problem["detail"]
