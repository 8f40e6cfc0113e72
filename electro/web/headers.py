"""Every security header in one after_request."""

from __future__ import annotations

from quart import Response, request

CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'; img-src 'self' data:; style-src 'self'"
)
PRIVATE_PREFIXES = ("/account", "/admin", "/login", "/logout", "/register", "/password",
                    "/activate", "/basket", "/checkout", "/newsletter")


def is_private_path(path: str) -> bool:
    return path.startswith(PRIVATE_PREFIXES)


def security_headers(secure: bool):  # type: ignore[no-untyped-def]
    async def add_headers(response: Response) -> Response:
        h = response.headers
        h["Content-Security-Policy"] = CSP
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "same-origin"
        h["X-Frame-Options"] = "DENY"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if is_private_path(request.path):
            h["Cache-Control"] = "no-store"
        if secure:
            h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response

    return add_headers
