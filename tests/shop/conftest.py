"""Shop fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.shop import add_catalogue


@pytest.fixture
async def catalogue(app: Any) -> dict[str, int]:
    return await add_catalogue(app)


@pytest.fixture
def cli_database(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    """The database ``electro`` commands (cli.main) use in this test."""
    monkeypatch.setenv("ELECTRO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELECTRO_INSTANCE_DIR", str(tmp_path / "instance"))
    return database_url
