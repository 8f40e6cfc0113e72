"""Backups (SPEC D3): a portable snapshot of every table, and a restore that is all or nothing.

The package is split at the seam between the file and the database:

- ``fileformat``: the file (zip of gzip JSON lines plus a manifest), written, read and verified
  without a database;
- ``databases``: what differs between SQLite and PostgreSQL, one strategy class each;
- ``dump``: a consistent snapshot of every table into a file;
- ``load``: every table replaced by a file's rows, bulk loaded, inside one transaction;
- ``orchestration``: what callers use: make, list, verify and restore backups, with the safety
  backup and the events.
"""

from electro.services.backups.dump import snapshot_tables
from electro.services.backups.fileformat import BackupError, Manifest, TableEntry
from electro.services.backups.orchestration import (
    BackupNotFound,
    Restored,
    backup_file,
    backup_path,
    create_backup,
    get_backup,
    list_backups,
    restore_backup,
    verify_backup,
)
from electro.services.backups.progress import Progress

__all__ = [
    "BackupError",
    "BackupNotFound",
    "Manifest",
    "Progress",
    "Restored",
    "TableEntry",
    "backup_file",
    "backup_path",
    "create_backup",
    "get_backup",
    "list_backups",
    "restore_backup",
    "snapshot_tables",
    "verify_backup",
]
