"""An online backup of a SQLite store: one consistent, self-contained copy of the database
file, taken while servers read and write it (docs/backup.md)."""

from __future__ import annotations

import contextlib
import os
import sqlite3

from pykes.store.sqlite import APPLICATION_ID


class BackupError(Exception):
    """The backup was not made (one line saying why); nothing is left at the target."""


def backup_sqlite(path: str, out: str) -> int:
    """Copy the store at ``path`` to ``out``, a new file (mode 0600); returns its size.

    SQLite's backup API copies every page in one step under one read transaction: a
    snapshot of one moment, which in WAL mode never blocks the server's writers. The
    copy is checked (``integrity_check``), closed (its WAL folded in, so it is one file
    still in WAL mode), fsync'd, and only then linked under ``out``, which is never
    overwritten. The records stay sealed: the copy is useless without the seal key.
    """
    if os.path.lexists(out):
        raise BackupError(f"backup: '{out}' exists already")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise BackupError(f"backup: the directory of '{out}' does not exist")
    try:
        # mode=rw: never create a missing store; query_only: this connection writes nothing
        source = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as err:
        raise BackupError(f"backup: cannot open the SQLite database '{path}': {err}") from None
    temp = f"{out}.tmp-{os.urandom(4).hex()}"
    try:
        with contextlib.closing(source):
            source.execute("PRAGMA query_only = 1")
            if source.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise BackupError(f"backup: '{path}' is not a pykes store")
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            with contextlib.closing(sqlite3.connect(temp, isolation_level=None)) as copy:
                source.backup(copy)
                if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError("backup: the copy fails SQLite's integrity check")
        _fsync(temp)
        os.link(temp, out)  # fails if ``out`` appeared meanwhile: never overwritten
        os.unlink(temp)
        _fsync(os.path.dirname(os.path.abspath(out)))
    except sqlite3.Error as err:
        raise BackupError(f"backup: {err}") from None
    finally:
        for leftover in (temp, temp + "-wal", temp + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    return os.path.getsize(out)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
