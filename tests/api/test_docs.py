"""B3: /openapi.json documents the API alone; /docs renders it with the vendored Swagger UI,
pinned by checksum, under our CSP (no CDN, no inline script)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

VENDOR = Path(__file__).parents[2] / "static" / "vendor"


def _recorded() -> dict[str, str]:
    lines = (VENDOR / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def test_every_vendored_file_is_the_recorded_release() -> None:
    recorded = _recorded()
    served = {str(path.relative_to(VENDOR)) for path in VENDOR.glob("*/*")}
    assert served == set(recorded), "SHA256SUMS and static/vendor/ list different files"
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "swagger-ui/swagger-ui-bundle.js" in recorded


async def test_openapi_lists_only_the_api(client: Any) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["openapi"].startswith("3.")
    assert sorted(spec["paths"]) == [
        "/api/v1/categories", "/api/v1/me", "/api/v1/orders", "/api/v1/orders/{number}",
        "/api/v1/products", "/api/v1/products/{product_id}", "/api/v1/trending"]
    product = spec["paths"]["/api/v1/products/{product_id}"]["get"]
    assert product["parameters"][0]["schema"] == {"type": "integer", "minimum": 1,
                                                  "maximum": 2**31 - 1}
    assert "application/problem+json" in product["responses"]["404"]["content"]
    assert spec["paths"]["/api/v1/me"]["get"]["security"] == [{"token": []}]


async def test_the_docs_page_loads_only_our_own_files(client: Any) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "/static/api-docs.js" in page and "<script>" not in page and "https:" not in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.browser
async def test_the_docs_page_renders_every_operation_without_csp_errors(
    live_server: Any, page: Any, browser_errors: list[str]
) -> None:
    await page.goto(live_server.url + "/docs")
    operations = page.locator(".opblock-summary-path")
    await operations.first.wait_for()
    assert await operations.count() == 7
    assert browser_errors == []
