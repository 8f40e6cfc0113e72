"""Backup pages (SPEC D3 UI) through real HTTP: create, list, download, restore a listed backup,
restore an upload; refusals change nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from quart.datastructures import FileStorage
from sqlalchemy import delete, func, select

from electro.models import Backup, Category, Event, Product
from electro.services import backups
from tests.support import Client


async def _products(app: Any) -> list[str]:
    async with app.extensions["electro"].sessions() as db:
        return list(await db.scalars(select(Product.name).order_by(Product.id)))


async def _backup_count(app: Any) -> int:
    async with app.extensions["electro"].sessions() as db:
        return int(await db.scalar(select(func.count(Backup.id))) or 0)


async def _shop_with(app: Any, *names: str) -> None:
    async with app.extensions["electro"].sessions.begin() as db:
        await db.execute(delete(Product))
        category = await db.scalar(select(Category).where(Category.name == "Audio"))
        if category is None:
            category = Category(name="Audio")
            db.add(category)
            await db.flush()
        db.add_all(Product(name=n, category_id=category.id, price_cents=999) for n in names)


async def _latest(app: Any) -> Backup:
    async with app.extensions["electro"].sessions() as db:
        latest = await db.scalar(select(Backup).order_by(Backup.id.desc()).limit(1))
    assert latest is not None
    return latest


async def _create(app: Any, client: Client, htmx: bool = True) -> Backup:
    response = await client.post("/admin/backups/create", htmx=htmx)
    assert response.status_code == 200
    return await _latest(app)


async def test_create_lists_the_backup_with_size_rows_and_checksum(
    app: Any, admin_client: Client
) -> None:
    await _shop_with(app, "Speaker", "Amplifier")
    response = await admin_client.post("/admin/backups/create", htmx=True)
    fragment = await response.get_data(as_text=True)
    assert response.status_code == 200 and fragment.lstrip().startswith('<div id="backups">')
    backup = await _latest(app)
    assert f"Backup {backup.filename} created." in fragment
    assert backup.row_counts["products"] == 2 and backup.size_bytes > 0
    path = backups.backup_path(app.extensions["electro"].settings, backup)
    assert path.stat().st_size == backup.size_bytes
    page = await (await admin_client.get("/admin/backups")).get_data(as_text=True)
    assert backup.filename in page and backup.sha256[:16] in page
    assert f"{backup.size_bytes:,} bytes" in page and "<li>products: 2</li>" in page
    assert f'href="/admin/backups/{backup.id}/download"' in page
    assert "style=" not in page
    assert fragment.count('name="csrf_token"') == 3  # every form: create, restore, upload
    assert 'hx-confirm="Replace the whole database' in page and 'name="confirm"' in page


async def test_download_sends_the_file_bytes(app: Any, admin_client: Client) -> None:
    backup = await _create(app, admin_client)
    response = await admin_client.get(f"/admin/backups/{backup.id}/download")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f"attachment; filename={backup.filename}"
    path = backups.backup_path(app.extensions["electro"].settings, backup)
    assert await response.get_data() == path.read_bytes()
    assert (await admin_client.get(f"/admin/backups/{backup.id + 100}/download")).status_code == 404


async def test_restore_round_trip_through_the_route(app: Any, admin_client: Client) -> None:
    await _shop_with(app, "Speaker", "Amplifier")
    backup = await _create(app, admin_client)
    await _shop_with(app, "Turntable")
    response = await admin_client.post(f"/admin/backups/{backup.id}/restore",
                                       {"confirm": "RESTORE"}, htmx=True)
    fragment = await response.get_data(as_text=True)
    assert response.status_code == 200, fragment
    assert "Restored" in fragment and "safety" in fragment
    assert await _products(app) == ["Speaker", "Amplifier"]
    assert await _backup_count(app) == 2  # the backup and the safety backup taken first
    # Restored sessions all end (a snapshot's live sessions may have ended since): the admin
    # signs in again.
    assert (await admin_client.get("/admin/backups")).headers["Location"].startswith("/login")


async def test_restore_needs_the_typed_confirmation(app: Any, admin_client: Client) -> None:
    await _shop_with(app, "Speaker")
    backup = await _create(app, admin_client)
    await _shop_with(app, "Turntable")
    for form in ({}, {"confirm": "yes"}, {"confirm": "restore"}):
        response = await admin_client.post(f"/admin/backups/{backup.id}/restore", form)
        assert response.status_code == 422
        assert "Type RESTORE" in await response.get_data(as_text=True)
    assert await _products(app) == ["Turntable"] and await _backup_count(app) == 1
    missing = await admin_client.post("/admin/backups/999/restore", {"confirm": "RESTORE"})
    assert missing.status_code == 422 and "no backup #999" in await missing.get_data(as_text=True)


async def _upload(client: Client, data: bytes, confirm: str = "RESTORE") -> Any:
    if not client.token:
        await client.refresh_token()
    return await client.raw.post(
        "/admin/backups/upload",
        form={"csrf_token": client.token, "confirm": confirm},
        files={"file": FileStorage(io.BytesIO(data), filename="backup.zip",
                                   content_type="application/zip")},
        headers={"HX-Request": "true"},
    )


async def test_uploaded_backup_restores(app: Any, admin_client: Client) -> None:
    await _shop_with(app, "Speaker")
    backup = await _create(app, admin_client)
    data = await (await admin_client.get(f"/admin/backups/{backup.id}/download")).get_data()
    await _shop_with(app, "Turntable")
    response = await _upload(admin_client, data)
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert await _products(app) == ["Speaker"]


async def test_corrupted_upload_is_refused_and_nothing_changes(
    app: Any, admin_client: Client
) -> None:
    await _shop_with(app, "Speaker")
    backup = await _create(app, admin_client)
    data = bytearray(await (await admin_client.get(f"/admin/backups/{backup.id}/download"))
                     .get_data())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside a table's data
    await _shop_with(app, "Turntable")
    for bad in (bytes(data), b"not a zip at all", b""):
        response = await _upload(admin_client, bad)
        text = await response.get_data(as_text=True)
        assert response.status_code == 422 and "Nothing was restored" in text, text
    assert await _products(app) == ["Turntable"]
    assert await _backup_count(app) == 1  # no safety backup: refused before anything was touched
    async with app.extensions["electro"].sessions() as db:
        refused = await db.scalar(select(func.count(Event.id))
                                  .where(Event.type == "admin_backup_refused"))
    assert refused == 3


async def test_upload_needs_confirmation(app: Any, admin_client: Client) -> None:
    response = await _upload(admin_client, b"whatever", confirm="")
    assert response.status_code == 422
    assert "Type RESTORE" in await response.get_data(as_text=True)


@pytest.fixture
def small_uploads(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["max_content_length"] = 64 * 1024


async def test_upload_over_the_limit_is_refused(
    small_uploads: None, app: Any, admin_client: Client
) -> None:
    await _shop_with(app, "Speaker")
    response = await _upload(admin_client, b"x" * 100_000)
    assert response.status_code == 413
    assert await _products(app) == ["Speaker"] and await _backup_count(app) == 0


async def test_a_zip_bomb_upload_is_refused_while_it_streams(
    app: Any, admin_client: Client
) -> None:
    """A real backup whose products member is replaced by 64 MiB of rows compressed to a few
    dozen KiB (checksum and row count made to match): refused as a bomb, nothing touched."""
    await _shop_with(app, "Speaker")
    backup = await _create(app, admin_client)
    data = await (await admin_client.get(f"/admin/backups/{backup.id}/download")).get_data()
    rows = 64 * 2**20 // 4
    bomb = gzip.compress(b"[1]\n" * rows, 9)
    crafted = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as original, zipfile.ZipFile(crafted, "w") as out:
        manifest = json.loads(original.read("manifest.json"))
        for entry in manifest["tables"]:
            if entry["name"] == "products":
                entry.update(rows=rows, sha256=hashlib.sha256(bomb).hexdigest())
        for name in original.namelist():
            if name not in ("manifest.json", "products.jsonl.gz"):
                out.writestr(name, original.read(name))
        out.writestr("products.jsonl.gz", bomb)
        out.writestr("manifest.json", json.dumps(manifest))
    response = await _upload(admin_client, crafted.getvalue())
    text = await response.get_data(as_text=True)
    assert response.status_code == 422 and "refused as a zip bomb" in text, text
    assert await _products(app) == ["Speaker"] and await _backup_count(app) == 1


async def test_a_listed_backup_whose_file_is_not_on_this_node_says_so(
    app: Any, admin_client: Client
) -> None:
    """Another node made it into a folder this one does not share (no ELECTRO_BACKUP_DIR)."""
    backup = await _create(app, admin_client)
    (app.extensions["electro"].settings.backup_folder / backup.filename).unlink()
    download = await admin_client.get(f"/admin/backups/{backup.id}/download")
    assert download.status_code == 404
    assert "ELECTRO_BACKUP_DIR" in await download.get_data(as_text=True)
    restore = await admin_client.post(f"/admin/backups/{backup.id}/restore",
                                      {"confirm": "RESTORE"})
    text = await restore.get_data(as_text=True)
    assert restore.status_code == 422 and "is not in this node" in text
