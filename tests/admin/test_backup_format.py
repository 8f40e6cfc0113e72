"""The backup file format on its own: written, read back and verified with no database."""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from electro.services.backups import fileformat
from electro.services.backups.fileformat import (
    FORMAT_VERSION,
    MANIFEST,
    ArchiveWriter,
    BackupError,
    Manifest,
    TableEntry,
)

REVISION = "0042"
LAYOUT = [("parents", ["id", "name", "data"]), ("children", ["id", "parent_id", "born"])]
ROWS: dict[str, list[list[Any]]] = {
    "parents": [[1, "naïve “quotes” ✓", {"tags": ["a", 1]}], [2, None, None], [3, "", []]],
    "children": [[1, 1, "2026-11-25 14:05:54.000123"], [2, 3, None]],
}
CREATED = datetime(2026, 11, 25, 14, 5, 54, 123)


def write_backup(path: Path, rows: dict[str, list[list[Any]]] = ROWS) -> Manifest:
    """A backup of ``rows`` written the way a dump writes one, sealed in place."""
    partial = path.with_name(path.name + ".partial")
    archive = ArchiveWriter(partial)
    entries = []
    for name, columns in LAYOUT:
        member = archive.table(name)
        member.write_rows([json.dumps(row) for row in rows[name]])
        entries.append(TableEntry(name, columns, len(rows[name]), member.close()))
    manifest = Manifest(FORMAT_VERSION, REVISION, CREATED, entries)
    archive.write_manifest(manifest)
    archive.close()
    fileformat.seal(partial, path)
    return manifest


def verify(path: Path, max_bytes: int | None = None) -> Manifest:
    return fileformat.verify(path, layout=LAYOUT, schema_revision=REVISION, max_bytes=max_bytes)


def edit_members(path: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    """Rewrite the archive after ``edit`` changed its members (name -> bytes) in place."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    edit(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def edit_manifest(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    def change(members: dict[str, bytes]) -> None:
        manifest = json.loads(members[MANIFEST])
        edit(manifest)
        members[MANIFEST] = json.dumps(manifest).encode()

    edit_members(path, change)


def table_entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in manifest["tables"] if t["name"] == name)


def test_a_written_file_verifies_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    written = write_backup(path)
    assert not path.with_name("backup.zip.partial").exists()

    manifest = verify(path)
    assert manifest == written
    assert manifest.row_counts == {"parents": 3, "children": 2} and manifest.total_rows == 5
    with zipfile.ZipFile(path) as zf:
        # Members are stored as they are: the gzip data is not compressed a second time.
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        assert zf.namelist()[-1] == MANIFEST  # written last
        for entry in manifest.tables:
            assert hashlib.sha256(zf.read(entry.member)).hexdigest() == entry.sha256
            read = [row for batch in fileformat.read_rows(zf, entry) for row in batch]
            assert read == ROWS[entry.name]


def test_rows_are_read_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "backup.zip"
    write_backup(path)
    monkeypatch.setattr(fileformat, "BATCH_ROWS", 2)
    with zipfile.ZipFile(path) as zf:
        entry = verify(path).tables[0]
        assert list(fileformat.read_rows(zf, entry)) == [ROWS["parents"][:2], ROWS["parents"][2:]]


def test_seal_reports_the_size_and_checksum_of_the_file(tmp_path: Path) -> None:
    partial, final = tmp_path / "a.zip.partial", tmp_path / "a.zip"
    partial.write_bytes(b"x" * 1000)
    assert fileformat.seal(partial, final) == (1000, hashlib.sha256(b"x" * 1000).hexdigest())
    assert final.read_bytes() == b"x" * 1000 and not partial.exists()


def _wrong_checksum(path: Path) -> None:
    edit_manifest(path, lambda m: table_entry(m, "children").update(sha256="0" * 64))


def _other_rows_same_count(path: Path) -> None:
    """The member replaced by other, well-formed data: only the checksum can tell."""
    rows = "\n".join(json.dumps(r) for r in [[1, 1, None], [2, 2, None]]) + "\n"
    edit_members(path, lambda m: m.update({"children.jsonl.gz": gzip.compress(rows.encode())}))


def _manifest_not_json(path: Path) -> None:
    edit_members(path, lambda m: m.update({MANIFEST: b"{not json"}))


def _no_manifest(path: Path) -> None:
    edit_members(path, lambda m: m.pop(MANIFEST))


def _other_format(path: Path) -> None:
    edit_manifest(path, lambda m: m.update(format="something-else"))


def _future_version(path: Path) -> None:
    edit_manifest(path, lambda m: m.update(format_version=2))


def _manifest_without_tables(path: Path) -> None:
    edit_manifest(path, lambda m: m.pop("tables"))


def _other_columns(path: Path) -> None:
    edit_manifest(path, lambda m: table_entry(m, "children").update(columns=["id", "born"]))


def _other_revision(path: Path) -> None:
    edit_manifest(path, lambda m: m.update(schema_revision="0041"))


def _row_missing(path: Path) -> None:
    edit_manifest(path, lambda m: table_entry(m, "parents").update(rows=4))


def _member_missing(path: Path) -> None:
    edit_members(path, lambda m: m.pop("children.jsonl.gz"))


def _member_cut_short(path: Path) -> None:
    """A gzip stream that stops in the middle, with its checksum recomputed."""

    def cut(members: dict[str, bytes]) -> None:
        data = members["parents.jsonl.gz"] = members["parents.jsonl.gz"][:-12]
        manifest = json.loads(members[MANIFEST])
        table_entry(manifest, "parents")["sha256"] = hashlib.sha256(data).hexdigest()
        members[MANIFEST] = json.dumps(manifest).encode()

    edit_members(path, cut)


def _bytes_flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    # Past the local header's name (16 bytes) and zip64 field (20): inside the member's data.
    offset = data.index(b"parents.jsonl.gz") + 50
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _not_a_zip(path: Path) -> None:
    path.write_text("parents,children\n1,2\n")


def _manifest_nested_deeply(path: Path) -> None:
    edit_members(path, lambda m: m.update({MANIFEST: b"[" * 100_000 + b"]" * 100_000}))


def _patch_headers(path: Path, name: bytes, patch: Callable[[bytearray, int, bool], None]) -> None:
    """``patch(data, header_offset, is_local)`` on the local and central headers of ``name``."""
    data = bytearray(path.read_bytes())
    for header, name_offset in ((b"PK\x03\x04", 30), (b"PK\x01\x02", 46)):
        at = data.find(header)
        while at != -1:
            if data[at + name_offset:at + name_offset + len(name)] == name:
                patch(data, at, header == b"PK\x03\x04")
            at = data.find(header, at + 4)
    path.write_bytes(bytes(data))


def _member_flagged_encrypted(path: Path) -> None:
    def flag(data: bytearray, at: int, local: bool) -> None:
        data[at + (6 if local else 8)] |= 0x1  # general purpose bit 0: encrypted

    _patch_headers(path, b"parents.jsonl.gz", flag)


def _member_of_an_unknown_method(path: Path) -> None:
    def method(data: bytearray, at: int, local: bool) -> None:
        offset = at + (8 if local else 10)
        data[offset:offset + 2] = (99).to_bytes(2, "little")  # 99: AES, which zipfile lacks

    _patch_headers(path, b"parents.jsonl.gz", method)


def _replace_member(path: Path, table: str, data: bytes, rows: int) -> None:
    """``table``'s member replaced by ``data`` (gzip bytes), manifest checksum and rows to match."""

    def replace(members: dict[str, bytes]) -> None:
        members[f"{table}.jsonl.gz"] = data
        manifest = json.loads(members[MANIFEST])
        table_entry(manifest, table).update(sha256=hashlib.sha256(data).hexdigest(), rows=rows)
        members[MANIFEST] = json.dumps(manifest).encode()

    edit_members(path, replace)


def _zip_bomb(path: Path) -> None:
    """A few hundred KiB that inflate to 256 MiB of rows, consistent checksum and count."""
    row = b"[1, 2, null]\n"
    _replace_member(path, "children", gzip.compress(row * (256 * 2**20 // len(row)), 9),
                    256 * 2**20 // len(row))


def _endless_row(path: Path) -> None:
    """One row of 2 MiB: a reader would hold all of it in memory at once."""
    _replace_member(path, "children", gzip.compress(b"[" + b"1," * 2**20 + b"1]\n"), 1)


@pytest.mark.parametrize(("damage", "message"), [
    (_wrong_checksum, "^table children: checksum mismatch, the file is damaged$"),
    (_other_rows_same_count, "^table children: checksum mismatch, the file is damaged$"),
    (_manifest_not_json, r"^this is not an E-lectro backup \(no valid manifest\)$"),
    (_no_manifest, r"^this is not an E-lectro backup \(no valid manifest\)$"),
    (_other_format, r"^this is not an E-lectro backup \(no valid manifest\)$"),
    (_manifest_without_tables, r"^this is not an E-lectro backup \(no valid manifest\)$"),
    (_future_version, r"^backup format version 2 is not supported \(this version reads 1\)$"),
    (_other_columns, "^the backup's tables or columns do not match this schema$"),
    (_other_revision, "^this backup has schema revision 0041, but this version of E-lectro is "
                      "at 0042: restore it with the version that made it$"),
    (_row_missing, "^table parents: the data is incomplete or does not match$"),
    (_member_cut_short, "^table parents: the data is incomplete or does not match$"),
    (_member_missing, "^the backup has no data for table children$"),
    (_bytes_flipped, r"^the file is damaged or truncated \(Bad CRC-32"),
    (_truncated, r"^the file is damaged or truncated \("),
    (_not_a_zip, r"^the file is damaged or truncated \(File is not a zip file\)$"),
    # Crafted files (issue 11): each gave a 500, or inflated into the worker's memory.
    (_manifest_nested_deeply, r"^this is not an E-lectro backup \(no valid manifest\)$"),
    (_member_flagged_encrypted, "^parents.jsonl.gz is encrypted; E-lectro backups never are$"),
    (_member_of_an_unknown_method, "^parents.jsonl.gz uses a compression method E-lectro "
                                   "backups never use$"),
    (_zip_bomb, r"^table children: the file inflates to more than 100 times its size, which "
                r"no backup does \(refused as a zip bomb\)$"),
    (_endless_row, "^table children: a row is longer than 1,048,576 bytes, which no backup "
                   "holds$"),
])
def test_a_damaged_file_is_refused_with_a_clear_message(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    path = tmp_path / "backup.zip"
    write_backup(path)
    damage(path)
    with pytest.raises(BackupError, match=message) as refused:
        verify(path)
    assert refused.value.status == 422  # a DomainError: the web layer answers it as such


def test_a_file_over_the_limit_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    path.write_bytes(b"not even a zip, but too large anyway")
    with pytest.raises(BackupError, match=r"^the file is 36 bytes; uploads are limited to 10 "):
        verify(path, max_bytes=10)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"^there is no file 'gone\.zip'$"):
        verify(tmp_path / "gone.zip")


def test_the_format_module_needs_no_database_and_no_event_loop() -> None:
    """The seam stays where it is: the format imports no database, asyncio or app code."""
    tree = ast.parse(Path(fileformat.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "zipfile" in imported  # the walk sees the imports
    assert {name for name in imported
            if name.split(".")[0] in {"sqlalchemy", "alembic", "asyncio", "electro"}} == {
        "electro.errors"
    }
