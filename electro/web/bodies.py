"""Request bodies cost little before they are refused.

A form is small: every request body is limited to ``max_form_bytes`` (refused from its
Content-Length before it is read, or as soon as it grows past the limit) and ``max_form_fields``
fields, except on the routes marked ``@takes_upload`` (the backup upload), which get
``max_content_length`` and are parsed as multipart into a temporary file. A url-encoded form
that is not UTF-8, or has too many fields, is refused with a clear 4xx instead of being read as
an empty form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, TypeVar
from urllib.parse import parse_qsl

from quart import Quart
from quart.formparser import FormDataParser
from quart.wrappers import Request
from quart.wrappers.request import Body
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import default_stream_factory

from electro.config import Settings
from electro.web import Explained

UPLOAD = "_electro_takes_upload"
V = TypeVar("V", bound=Callable[..., Any])


def takes_upload(view: V) -> V:
    """Below the route decorator: this route's body may be as large as an upload."""
    setattr(view, UPLOAD, True)
    return view


class NotUtf8(Explained, BadRequest):
    description = "The form was not sent as UTF-8 text."


class TooManyFields(Explained, RequestEntityTooLarge):
    description = "The form has too many fields."


URLENCODED = frozenset({"application/x-www-form-urlencoded", "application/x-url-encoded"})


async def _parse_urlencoded(
    parser: FormDataParser, body: Body, _mimetype: str, _length: int | None,
    _options: dict[str, str],
) -> tuple[MultiDict[str, str], MultiDict[str, Any]]:
    data: bytes = await body
    try:
        pairs = parse_qsl(data.decode(), keep_blank_values=True,
                          max_num_fields=parser.max_form_parts, errors="strict")
    except UnicodeDecodeError:  # the body, or a %-escape in it, is not UTF-8
        raise NotUtf8() from None
    except ValueError:  # max_num_fields: counted from the separators, before any split
        raise TooManyFields() from None
    return MultiDict(pairs), MultiDict()


class BoundedFormParser(FormDataParser):
    """Quart's parser, but a url-encoded body's fields are counted before they are split, and
    its refusals are 4xx answers (Quart reads a malformed form as an empty one); and a
    multipart file part that the parsed form does not keep (the body ended inside it, or a
    later part was malformed) has its temporary file closed, since only ``request.files`` is
    closed when the request ends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._opened: list[IO[bytes]] = []
        self.stream_factory = self._opened_stream

    def _opened_stream(self, *args: Any) -> IO[bytes]:
        stream = default_stream_factory(*args)
        self._opened.append(stream)
        return stream

    def get_parse_func(self, mimetype: str, options: dict[str, str]) -> Any:
        if mimetype in URLENCODED:
            return _parse_urlencoded
        return super().get_parse_func(mimetype, options)

    async def parse(
        self, body: Body, mimetype: str, content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> tuple[MultiDict[str, str], MultiDict[str, Any]]:
        kept: set[int] = set()
        try:
            form, files = await super().parse(body, mimetype, content_length, options)
            kept = {id(upload.stream) for _name, upload in files.items(multi=True)}
            return form, files
        finally:
            for stream in self._opened:
                if id(stream) not in kept:
                    stream.close()


def bound_request_bodies(app: Quart, settings: Settings) -> None:
    """After the blueprints are registered: every body gets the form limits, but the routes
    marked ``@takes_upload``."""
    upload_paths = frozenset(
        rule.rule for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], UPLOAD, False)
    )
    if any("<" in path for path in upload_paths):
        raise RuntimeError("an upload route cannot have path parameters")  # matched by path
    form_bytes, upload_bytes = settings.max_form_bytes, settings.max_content_length

    class BoundedRequest(Request):
        form_data_parser_class = BoundedFormParser

        def __init__(self, method: str, scheme: str, path: str, *args: Any,
                     **kwargs: Any) -> None:
            kwargs["max_content_length"] = upload_bytes if path in upload_paths else form_bytes
            super().__init__(method, scheme, path, *args, **kwargs)

    app.request_class = BoundedRequest
    app.config.update(MAX_CONTENT_LENGTH=upload_bytes, MAX_FORM_PARTS=settings.max_form_fields)
