"""URL converters: every ``<int:…>`` path parameter is an id, bounded to what the database
stores, so no path however long reaches a query as an out-of-range value (it is a 404)."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from electro.inputs import MAX_INT


class IdConverter(IntegerConverter):
    """``<int:name>``: ASCII digits only (``\\d`` would take other scripts' digits), 1 to
    MAX_INT (an INTEGER column's largest value); anything else does not match the route."""

    regex = r"[0-9]{1,10}"

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_INT)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
