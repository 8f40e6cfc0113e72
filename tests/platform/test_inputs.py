"""One parser each for numbers and dates (issue 11, finding 5): any text gets a value or a
FieldError with a message, never another exception; and the odd values that gave 500s get a
4xx with a message on every path that reads them."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from electro import cli, inputs
from electro.errors import FieldError
from tests.support import Client

ODD_TEXT = st.one_of(
    st.text(),
    st.sampled_from(["²", "①", "٣", "99999999999999999999", "-1", "1e3", " 7 ", "\x00",
                     "9999-12-31T23:00-05:00", "0001-01-01T00:00+05:00", "9999-12-31",
                     "0001-01-01", "2026-02-30", "２０２６-01-01", "2026-01-01T25:00"]),
)


@given(ODD_TEXT)
def test_every_text_is_a_number_or_a_field_error(raw: str) -> None:
    try:
        value = inputs.whole_number(raw)
    except FieldError as exc:
        assert "whole number" in str(exc)
    else:
        assert 0 <= value <= inputs.MAX_INT and raw.strip().isascii()


@given(ODD_TEXT)
def test_every_text_is_a_moment_or_a_field_error(raw: str) -> None:
    for parse in (inputs.moment, inputs.day_start,
                  lambda text: inputs.day_start(text, next_day=True)):
        try:
            value = parse(raw)
        except FieldError as exc:
            assert "like 2026-12-31" in str(exc)
        else:
            assert isinstance(value, datetime) and value.tzinfo is None


def test_the_values_that_gave_500s() -> None:
    for raw in ("²", "①", "99999999999999999999"):
        with pytest.raises(FieldError):
            inputs.whole_number(raw)
    for raw in ("9999-12-31T23:00-05:00", "0001-01-01T00:00+05:00"):
        with pytest.raises(FieldError):
            inputs.moment(raw)
    with pytest.raises(FieldError):
        inputs.day_start("9999-12-31", next_day=True)
    assert inputs.moment("2026-12-31 18:00+01:00") == datetime(2026, 12, 31, 17, 0)
    assert inputs.whole_number(" 42 ") == 42


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01T00:00%2B05:00",
                                   "until=9999-12-31T23:00-05:00"])
async def test_events_viewer_and_export_refuse_dates_out_of_range(
    admin_client: Client, query: str
) -> None:
    for path in ("/admin/events", "/admin/events/export"):
        response = await admin_client.get(f"{path}?{query}")
        assert response.status_code == 422, path
        assert "years 1 to 9999" in await response.get_data(as_text=True)


async def test_an_actor_in_other_digits_is_a_name_and_the_export_is_whole(
    admin_client: Client,
) -> None:
    response = await admin_client.get("/admin/events/export?actor=%C2%B2")
    assert response.status_code == 200
    assert json.loads(await response.get_data(as_text=True)) == []


async def test_block_until_past_year_9999_is_a_field_message(
    app: Any, admin_client: Client
) -> None:
    await admin_client.refresh_token()
    response = await admin_client.post("/admin/tables/ip_blocks/add", {
        "ip": "203.0.113.7", "until": "9999-12-31T23:00-05:00", "reason": ""})
    assert response.status_code == 422
    assert "years 1 to 9999" in await response.get_data(as_text=True)


async def test_cli_export_with_an_until_past_9999_says_so(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ELECTRO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELECTRO_INSTANCE_DIR", str(tmp_path))
    code = await asyncio.to_thread(cli.main, ["events", "export", "--until", "9999-12-31"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad filter" in err and "Traceback" not in err
