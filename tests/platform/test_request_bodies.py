"""Request bodies cost little before they are refused (issue 11, finding 1): small forms
everywhere, a large body only where a backup is uploaded, and the CSRF check decided before a
body is read whenever it can be."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from tests.support import Client

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _post_with_a_body_that_never_ends(app: Any, path: str, cookie: bytes = b"") -> int:
    """POST through ASGI with a first chunk of a 16 MiB form whose rest never arrives: only a
    request answered without reading its body gets a status."""
    messages: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"a=1&" * 4096, "more_body": True}
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    headers = [(b"content-type", b"application/x-www-form-urlencoded"),
               (b"content-length", str(16 * 1024 * 1024 - 1).encode())]
    if cookie:
        headers.append((b"cookie", cookie))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80), "extensions": {}}
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return int(next(m["status"] for m in messages if m["type"] == "http.response.start"))


async def test_without_a_session_a_form_is_refused_before_its_body_is_read(app: Any) -> None:
    assert await _post_with_a_body_that_never_ends(app, "/logout") == 403


async def test_a_body_past_the_form_limit_is_413_from_its_length(client: Client) -> None:
    await client.refresh_token()
    response = await client.raw.post("/login", data=b"a" * (64 * 1024 + 1),
                                     headers={**FORM, "X-CSRF-Token": client.token})
    assert response.status_code == 413
    assert "too large" in await response.get_data(as_text=True)


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"a&" * 1001, 413, "too many fields"),
    (b"csrf_token=x&name=%C3", 400, "not sent as UTF-8"),
    (b"csrf_token=x&name=\xff", 400, "not sent as UTF-8"),
])
async def test_a_malformed_form_gets_a_clear_answer(
    client: Client, body: bytes, status: int, message: str
) -> None:
    await client.refresh_token()
    response = await client.raw.post("/login", data=body,
                                     headers=FORM)
    assert response.status_code == status
    assert message in await response.get_data(as_text=True)


async def test_only_the_backup_upload_takes_a_large_body(app: Any, admin_client: Client) -> None:
    """100 KiB is past the form limit but an upload: it reaches the view, which refuses it as
    a backup (not as a body), while the same body on another admin form is a 413."""
    await admin_client.refresh_token()
    boundary = "electro-test-boundary"
    payload = b"x" * (100 * 1024)
    part = f"--{boundary}\r\nContent-Disposition: form-data; name="
    multipart = (
        f'{part}"csrf_token"\r\n\r\n{admin_client.token}\r\n'
        f'{part}"confirm"\r\n\r\nRESTORE\r\n'
        f'{part}"file"; filename="b.zip"\r\nContent-Type: application/zip\r\n\r\n'
    ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    upload = await admin_client.raw.post("/admin/backups/upload", data=multipart,
                                         headers=headers)
    assert upload.status_code == 422
    assert "Nothing was restored" in await upload.get_data(as_text=True)
    other = await admin_client.raw.post("/admin/backups/create", data=multipart,
                                        headers=headers)
    assert other.status_code == 413


@pytest.mark.parametrize("body", [
    # A file part the body ends in, and one followed by a malformed part (Quart then reads
    # the form as empty): neither file part reaches request.files, which Quart closes.
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\nPK\x03\x04',
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\nPK\r\n'
    b"--b\r\nno header line\r\n\r\nx\r\n--b--\r\n",
])
async def test_a_file_part_the_form_does_not_keep_is_closed(client: Client, body: bytes) -> None:
    """Found by the fuzz walk: such a part's temporary file was left open (a ResourceWarning
    when collected; on disk past its memory size, an open descriptor until then)."""
    await client.refresh_token()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await client.raw.post("/login", data=body, headers={
            "Content-Type": "multipart/form-data; boundary=b", "X-CSRF-Token": client.token})
        assert response.status_code < 500
        del response
        gc.collect()
    assert [w.message for w in caught if issubclass(w.category, ResourceWarning)] == []
