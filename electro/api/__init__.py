"""The JSON API (SPEC B3): quart-schema documents it at /openapi.json (only the /api/ routes:
the HTML pages are no API) and our own /docs page renders that with the vendored Swagger UI.

quart-schema's own docs pages load Swagger UI from a CDN and start it with an inline script,
which our CSP forbids (and which fails offline): they are switched off, and ``docs`` serves a
page whose assets are files in static/vendor/ (checksums in static/vendor/SHA256SUMS)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, render_template
from quart_schema import Info, OpenAPIProvider, QuartSchema
from werkzeug.routing import BaseConverter

from electro.api import schemas, v1
from electro.web import is_api_path
from electro.web.converters import IdConverter

docs_bp = Blueprint("api_docs", __name__)


class ApiProvider(OpenAPIProvider):
    """Documents the /api/ routes alone, with every id parameter's bounds and errors as
    application/problem+json."""

    def generate_rules(self) -> Any:
        return (rule for rule in super().generate_rules() if is_api_path(rule.rule))

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IdConverter):
            parameter["schema"].update(minimum=converter.min, maximum=converter.max)
        return parameter

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        response, components = super().build_response_object(model, headers_model)
        if model is schemas.Problem:  # served as RFC 9457 says (electro.web.errors.problem)
            response["content"] = {"application/problem+json": response["content"].pop(
                "application/json")}
        return response, components


@docs_bp.get("/docs")
async def docs() -> str:
    return await render_template("api_docs.html")


def init_api(app: Quart) -> None:
    QuartSchema(
        app,
        openapi_path="/openapi.json",
        swagger_ui_path=None, redoc_ui_path=None, scalar_ui_path=None,
        info=Info(title="E-lectro shop API", version="1",
                  description="The public catalogue and your account, as JSON. Errors are "
                              "RFC 9457 problem details."),
        # A personal access token from /account.
        security_schemes={"token": {"type": "http", "scheme": "bearer"}},
        openapi_provider_class=ApiProvider,
    )
    app.register_blueprint(v1.bp)
    app.register_blueprint(docs_bp)
