"""The backup file, format version 1: writing it, reading it and verifying it.

Pure and synchronous: no database and no event loop (the callers run it in a worker thread), so
it is tested on its own (tests/test_backup_format.py).

A backup is a zip archive whose members are stored as they are (not re-compressed):

- ``<table>.jsonl.gz`` for every table: gzip-compressed JSON lines, one JSON array per row,
  values in the manifest's column order. Datetimes and dates are ISO 8601 text, JSON columns are
  JSON, everything else is a JSON number, string, boolean or null, so a backup of the embedded
  SQLite database restores into PostgreSQL (and back). Datetimes are written
  ``2026-11-25 14:05:54.000123`` (SQLite's own text, as stored, which has this form).
- ``manifest.json``, written last: format name and version, the schema (alembic) revision, the
  time, and per table its columns, row count and the SHA-256 of its member.

Zip rather than tar because a zip member can be streamed without knowing its size first, so
rows go from the database cursor through zlib to the file without a temporary copy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from electro.errors import DomainError

FORMAT = "electro-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BATCH_ROWS = 5000  # rows per fetch, per compressed chunk and per executemany
GZIP_LEVEL = 3  # most of level 6's ratio at about twice its speed
_READ_CHUNK = 1 << 18
# What a file may hold once inflated, so an uploaded zip bomb is refused while it streams:
# rows of JSON lines compress about tenfold, a bomb a thousandfold.
MAX_INFLATION = 100  # inflated bytes, in all, per byte of the file (plus the slack below)
INFLATION_SLACK = 1 << 24
MAX_LINE = 1 << 20  # one row's JSON line; a row is read into memory whole
MAX_MANIFEST = 1 << 20
_READABLE = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

Layout = Sequence[tuple[str, Sequence[str]]]
"""The tables a file must hold, in order, each with its column names in order."""


class BackupError(DomainError):
    """A backup cannot be made, read or restored; the message says why, for the admin."""


@dataclass(frozen=True)
class TableEntry:
    name: str
    columns: list[str]
    rows: int
    sha256: str

    @property
    def member(self) -> str:
        return member_name(self.name)


def member_name(table: str) -> str:
    return f"{table}.jsonl.gz"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    schema_revision: str
    created_at: datetime
    tables: list[TableEntry]  # in dependency order

    @property
    def row_counts(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT,
            "format_version": self.format_version,
            "schema_revision": self.schema_revision,
            "created_at": self.created_at.isoformat(),
            "tables": [
                {"name": t.name, "columns": t.columns, "rows": t.rows, "sha256": t.sha256}
                for t in self.tables
            ],
        }, indent=1).encode()


# ---------------------------------------------------------------- writing


class ArchiveWriter:
    """A backup file being written: one member per table, then the manifest. Used from one
    worker thread at a time."""

    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)

    def table(self, name: str) -> MemberWriter:
        return MemberWriter(self._zip, member_name(name))

    def write_manifest(self, manifest: Manifest) -> None:
        self._zip.writestr(MANIFEST, manifest.to_json())

    def close(self) -> None:
        self._zip.close()


class MemberWriter:
    """One table's gzip member: rows go in as JSON lines, already encoded."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        # force_zip64: the size is unknown when the header is written and may pass 2 GiB.
        self._member = archive.open(name, "w", force_zip64=True)
        self._zlib = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing
        self._hash = hashlib.sha256()

    def write_rows(self, lines: Sequence[str]) -> None:
        self._emit(self._zlib.compress(("\n".join(lines) + "\n").encode()))

    def close(self) -> str:
        """Finish the member; returns its SHA-256."""
        self._emit(self._zlib.flush())
        self._member.close()
        return self._hash.hexdigest()

    def _emit(self, data: bytes) -> None:
        if data:
            self._hash.update(data)
            self._member.write(data)


def seal(partial: Path, final: Path) -> tuple[int, str]:
    """fsync, hash and move the finished file into place; returns (size, SHA-256)."""
    digest = hashlib.sha256()
    with partial.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
        os.fsync(fh.fileno())
    os.replace(partial, final)
    return final.stat().st_size, digest.hexdigest()


# ---------------------------------------------------------------- reading and verifying


def verify(
    path: Path, *, layout: Layout, schema_revision: str, max_bytes: int | None = None
) -> Manifest:
    """Check a backup file completely before anything is touched: no larger than ``max_bytes``
    (an upload's limit), a zip of ours, of this format version and ``schema_revision``, with
    exactly the tables and columns of ``layout``, and every member matches its SHA-256,
    decompresses to the end and holds the announced number of rows."""
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise BackupError(
                f"the file is {size:,} bytes; uploads are limited to {max_bytes:,} bytes"
            )
        with zipfile.ZipFile(path) as zf:
            manifest = read_manifest(zf, layout)
            if manifest.schema_revision != schema_revision:
                raise BackupError(
                    f"this backup has schema revision {manifest.schema_revision}, but this "
                    f"version of E-lectro is at {schema_revision}: restore it with the version "
                    "that made it"
                )
            budget = _Inflation(size * MAX_INFLATION + INFLATION_SLACK)
            for entry in manifest.tables:
                _check_member(zf, entry, budget)
            return manifest
    except FileNotFoundError:
        raise BackupError(f"there is no file {path.name!r}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise BackupError(f"the file is damaged or truncated ({exc})") from None


def read_manifest(zf: zipfile.ZipFile, layout: Layout) -> Manifest:
    """The manifest of an open backup, refused unless it is ours, of this format version and
    describes exactly the tables and columns of ``layout``."""
    try:
        info = _readable(zf, MANIFEST)
        if info.file_size > MAX_MANIFEST:
            raise BackupError(f"the manifest is {info.file_size:,} bytes; it is never that large")
        raw = json.loads(zf.read(info))
        if raw.get("format") != FORMAT:
            raise KeyError("format")
        version = raw["format_version"]
        if version != FORMAT_VERSION:
            raise BackupError(
                f"backup format version {version} is not supported (this version reads "
                f"{FORMAT_VERSION})"
            )
        entries = [TableEntry(t["name"], list(t["columns"]), int(t["rows"]), str(t["sha256"]))
                   for t in raw["tables"]]
        manifest = Manifest(version, str(raw["schema_revision"]),
                            datetime.fromisoformat(raw["created_at"]), entries)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
        raise BackupError("this is not an E-lectro backup (no valid manifest)") from None
    expected = [(name, list(columns)) for name, columns in layout]
    if [(t.name, t.columns) for t in manifest.tables] != expected:
        raise BackupError("the backup's tables or columns do not match this schema")
    return manifest


def _readable(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """A member's entry, refused unless this reader can read it (zipfile raises other
    exceptions for these)."""
    info = zf.getinfo(name)  # KeyError when missing: the callers name what is missing
    if info.flag_bits & 0x1:
        raise BackupError(f"{name} is encrypted; E-lectro backups never are")
    if info.compress_type not in _READABLE:
        raise BackupError(f"{name} uses a compression method E-lectro backups never use")
    return info


class _Inflation:
    """How many inflated bytes the members of one file may still produce."""

    def __init__(self, allowed: int) -> None:
        self.left = allowed

    def spend(self, data: bytes, table: str) -> None:
        self.left -= len(data)
        if self.left < 0:
            raise BackupError(
                f"table {table}: the file inflates to more than {MAX_INFLATION} times its "
                "size, which no backup does (refused as a zip bomb)")


def _check_member(zf: zipfile.ZipFile, entry: TableEntry, budget: _Inflation) -> None:
    digest = hashlib.sha256()
    inflate = zlib.decompressobj(31)
    lines = line = 0  # rows seen, and the length of the row being read
    try:
        member = zf.open(_readable(zf, entry.member))
    except KeyError:
        raise BackupError(f"the backup has no data for table {entry.name}") from None
    with member:
        while chunk := member.read(_READ_CHUNK):
            digest.update(chunk)
            # Bounded output per step: an uploaded file may inflate a thousandfold.
            while chunk:
                data = inflate.decompress(chunk, _READ_CHUNK)
                budget.spend(data, entry.name)
                *ended, line_end = data.split(b"\n")
                if ended:
                    longest = max([line + len(ended[0]), *map(len, ended[1:])])
                    lines, line = lines + len(ended), len(line_end)
                else:
                    longest = line = line + len(line_end)
                if longest > MAX_LINE:
                    raise BackupError(f"table {entry.name}: a row is longer than {MAX_LINE:,} "
                                      "bytes, which no backup holds")
                chunk = inflate.unconsumed_tail
    if digest.hexdigest() != entry.sha256:
        raise BackupError(f"table {entry.name}: checksum mismatch, the file is damaged")
    if not inflate.eof or inflate.unused_data or lines != entry.rows:
        raise BackupError(f"table {entry.name}: the data is incomplete or does not match")


def read_rows(zf: zipfile.ZipFile, entry: TableEntry) -> Iterator[list[list[Any]]]:
    """The decoded rows of one (verified) member, ``BATCH_ROWS`` at a time, each a list of
    values in the manifest's column order."""
    with zf.open(entry.member) as member, io.TextIOWrapper(
        gzip.GzipFile(fileobj=member, mode="rb"), encoding="utf-8"
    ) as lines:
        while chunk := [line for _, line in zip(range(BATCH_ROWS), lines, strict=False)]:
            yield json.loads("[" + ",".join(chunk) + "]")  # one parse per batch
