"""One handler for every HTTP error: a page, or a fragment for htmx, or under /api/ an RFC 9457
problem (application/problem+json); never a traceback; always an event (in its own
transaction, since the request's is rolled back)."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from quart import Quart, Response, request
from quart_schema import RequestSchemaValidationError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    ServiceUnavailable,
    Unauthorized,
)

from electro.errors import DomainError
from electro.services import events
from electro.web import (
    Explained,
    is_api_path,
    origin,
    own_transaction,
    render,
    runtime,
)

log = logging.getLogger(__name__)

EVENT_TYPES = {
    400: "input_validation_fail",
    401: "authn_token_invalid",
    403: "authz_fail",
    404: "http_not_found",
    405: "http_method_not_allowed",
    409: "conflict",
    413: "input_too_large",
    503: "sys_busy",
    422: "input_validation_fail",
    429: "excess_rate_limit_exceeded",
    500: "sys_error",
}
MESSAGES = {
    400: "The request could not be understood.",
    401: "A valid personal access token is needed (Authorization: Bearer <token>).",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address.",
    405: "That action is not allowed here.",
    413: "What you sent is too large.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. It has been recorded; please try again.",
}


async def _record_error_event(status: int, detail: str) -> None:
    if runtime().sessions is None:
        return
    try:
        # The failed request's work is abandoned first (own_transaction ends it).
        async with own_transaction() as session:
            await events.record(
                session, EVENT_TYPES.get(status, f"http_{status}"),
                **origin(), method=request.method, detail=detail,
            )
    except Exception:  # the error page must still go out when the database is down
        log.exception("could not record the error event")


def problem(status: int, detail: str, errors: dict[str, str] | None = None) -> Response:
    """RFC 9457 problem details: what the API answers instead of an error page."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "errors": errors or {}}
    return Response(json.dumps(body), status, content_type="application/problem+json")


async def _error_page(
    status: int, message: str, event_detail: str, errors: dict[str, str] | None = None
) -> Response:
    """The answer to any error: the page (or fragment), or a problem for the API."""
    await _record_error_event(status, event_detail)
    if is_api_path(request.path):
        return problem(status, message, errors)
    return await render(
        "error.html", "partials/error.html", status=status, status_code=status, message=message
    )


async def handle_domain_error(error: DomainError) -> Response:
    """A service's refusal that no route turned into a form: its own message and status."""
    return await _error_page(error.status, error.message or MESSAGES.get(error.status, "Error"),
                             type(error).__name__, error.errors)


def _fields(error: RequestSchemaValidationError) -> dict[str, str]:
    """The query parameters quart-schema's model refused, each with pydantic's message."""
    found = getattr(error.validation_error, "errors", None)
    if not callable(found):
        return {}
    return {".".join(str(part) for part in item["loc"]) or "query": str(item["msg"])
            for item in found()}


async def handle_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    # A refusal written for the user says what to do; other errors get the generic wording.
    message = (error.description if isinstance(error, Explained) else None) or MESSAGES.get(
        status, "Error")
    fields = _fields(error) if isinstance(error, RequestSchemaValidationError) else None
    if fields:
        message = "Some query parameters were refused: " + ", ".join(sorted(fields)) + "."
    response = await _error_page(status, message, type(error).__name__, fields)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if isinstance(error, Unauthorized) and is_api_path(request.path):
        response.headers["WWW-Authenticate"] = 'Bearer realm="electro"'
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


class Busy(Explained, ServiceUnavailable):
    """The database could not take this write now (SQLite's lock still held after its
    busy_timeout; a PostgreSQL deadlock, serialization failure or lock timeout): nothing was
    changed, and the same request a moment later may well go through."""

    description = "The shop is busy right now; nothing was changed. Please try again."


class Unstorable(Explained, BadRequest):
    """PostgreSQL refused a text value of the request (SQLSTATE 22021: a NUL character, which
    its text type cannot hold, wherever a value reaches a query; SQLite takes it): the input's
    fault, answered like other input nothing can use, on every route at once."""

    description = ("What you sent contains a character that cannot be stored or searched for "
                   "(a NUL character). Remove it and try again.")


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
UNSTORABLE_SQLSTATE = "22021"  # character_not_in_repertoire


def _sqlstate(error: DBAPIError) -> str | None:
    original = error.orig
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


def _is_busy(error: DBAPIError) -> bool:
    return _sqlstate(error) in RETRYABLE_SQLSTATES or "database is locked" in str(error.orig)


async def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, DBAPIError) and _is_busy(error):
        log.warning("database busy: %s", error)
        return await handle_http_error(Busy(retry_after=1))
    if isinstance(error, DBAPIError) and _sqlstate(error) == UNSTORABLE_SQLSTATE:
        return await handle_http_error(Unstorable())
    log.exception("unhandled error", exc_info=error)
    return await handle_http_error(InternalServerError())


def register_error_handlers(app: Quart) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
