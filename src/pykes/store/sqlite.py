"""The SQLite engine (``store.sqlite``): one file, one table, WAL with ``synchronous=FULL``
so that a write is on disk (the WAL fsync'd) before it is acknowledged.

Each check-and-set write is one SQL statement, atomic in SQLite: processes and threads
sharing the file never lose an update (a writer waits up to ``BUSY_TIMEOUT`` for the
file lock). Writes run on one dedicated thread: a commit's fsync (~0.5 ms here) never
blocks the event loop. Listings, whose size has no bound, run on another. Reading one
record runs on the event loop itself, as the fs keystore's reads do: it takes 6 µs
there, while handing it to a thread and back costs 120–150 µs (docs/store.md). A WAL
reader never waits for a writer; in the rare case it would (another process recovering
the WAL), the read gives the loop back and retries.

Use the engine from one event loop, in the process that opened it (after any fork):
SQLite connections must not cross a fork.

Opening an existing file writes nothing until the first write: a read connection is
read-only when a WAL file is present (a crashed or running server left it; a read-write
close would fold it into the database file), and the write connection is opened on the
first write. So a store that refuses to open (a wrong seal key) leaves its files as they
were.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pykes.store.engine import Record, VersionConflict, check_path

BUSY_TIMEOUT = 30.0  # seconds a writer (or a blocked read) waits for another process
APPLICATION_ID = 0x706B6573  # "pkes" in the database header: this file is a pykes store
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records ("
    "path TEXT PRIMARY KEY, version INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
)
_GET = "SELECT value, version FROM records WHERE path = ?"
_LIST = "SELECT path FROM records WHERE path >= ? AND path < ? ORDER BY path"
_PATH_END = "\x7f"  # sorts after every path character (engine.PATH_RE is ASCII)
_SQLITE_BUSY = 5

T = TypeVar("T")


class SQLiteEngine:
    """Records in the SQLite database at ``path`` (created, mode 0600, if missing)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.description = f"SQLite: {self.path}"
        self._reader: sqlite3.Connection | None = None  # on the event loop's thread
        self._lister = ThreadPoolExecutor(1, thread_name_prefix="pykes-store-list")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pykes-store-write")
        self._connections = threading.local()  # the lister's and the writer's
        self._closed = False

    @classmethod
    async def open(cls, path: str) -> SQLiteEngine:
        """Open (or create) the store file; raises ``ValueError`` for a file that is not
        a pykes store, ``sqlite3.Error``/``OSError`` for an unusable one."""
        engine = cls(path)
        try:
            if _created_empty(engine.path):
                await engine._write(_create_schema)
            await engine._read(engine._check)
        except BaseException:
            await engine.close()
            raise
        return engine

    # --- the Engine protocol ----------------------------------------------------------

    async def get(self, path: str) -> Record | None:
        check_path(path)

        def get(db: sqlite3.Connection) -> Record | None:
            found = db.execute(_GET, (path,)).fetchone()
            return None if found is None else Record(found[0], found[1])

        return await self._read(get)

    async def put(self, path: str, value: bytes, expected_version: int) -> int:
        check_path(path)
        if expected_version == 0:
            sql = "INSERT INTO records VALUES (?, 1, ?) ON CONFLICT DO NOTHING"
            args: tuple[object, ...] = (path, value)
        else:
            sql = "UPDATE records SET version = ?, value = ? WHERE path = ? AND version = ?"
            args = (expected_version + 1, value, path, expected_version)

        def put(db: sqlite3.Connection) -> None:
            if db.execute(sql, args).rowcount != 1:
                raise VersionConflict(path, expected_version)

        await self._write(put)
        return expected_version + 1

    async def delete(self, path: str, expected_version: int) -> None:
        check_path(path)

        def delete(db: sqlite3.Connection) -> None:
            sql = "DELETE FROM records WHERE path = ? AND version = ?"
            if db.execute(sql, (path, expected_version)).rowcount != 1:
                raise VersionConflict(path, expected_version)

        await self._write(delete)

    async def list(self, prefix: str) -> list[str]:
        if prefix:
            check_path(prefix.rstrip("/"))

        def paths(db: sqlite3.Connection) -> list[str]:
            return [row[0] for row in db.execute(_LIST, (prefix, prefix + _PATH_END))]

        return await self._on_thread(self._lister, paths)

    async def close(self) -> None:
        """Close the connections, the writer's last: the last one to close folds the WAL
        into the database file, and only the writer may."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        loop = asyncio.get_running_loop()
        for thread in (self._lister, self._writer):
            await loop.run_in_executor(thread, self._disconnect)
            thread.shutdown(wait=True)

    # --- connections ------------------------------------------------------------------

    async def _read(self, call: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("store: the engine is closed")
        if self._reader is None:
            self._reader = self._connect(write=False, wait=False)
        deadline, delay = 0.0, 0.001
        while True:
            try:
                return call(self._reader)
            except sqlite3.OperationalError as err:
                if getattr(err, "sqlite_errorcode", 0) & 0xFF != _SQLITE_BUSY:
                    raise
                if not deadline:
                    deadline = time.monotonic() + BUSY_TIMEOUT
                elif time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def _write(self, call: Callable[[sqlite3.Connection], T]) -> T:
        return await self._on_thread(self._writer, call)

    async def _on_thread(
        self, thread: ThreadPoolExecutor, call: Callable[[sqlite3.Connection], T]
    ) -> T:
        if self._closed:
            raise RuntimeError("store: the engine is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(thread, self._call, thread is self._writer, call)

    def _call(self, write: bool, call: Callable[[sqlite3.Connection], T]) -> T:
        """``call`` on this thread's connection (opened on its first call)."""
        db = getattr(self._connections, "db", None)
        if db is None:
            db = self._connections.db = self._connect(write)
        return call(db)

    def _connect(self, write: bool, wait: bool = True) -> sqlite3.Connection:
        uri = f"file:{self.path}"
        if not write and os.path.exists(self.path + "-wal"):
            uri += "?mode=ro"
        # isolation_level=None: each statement commits on its own (no implicit BEGIN).
        # The loop's reads never wait (timeout 0): _read retries without holding the loop.
        timeout = BUSY_TIMEOUT if wait else 0.0
        db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        if write:
            db.execute("PRAGMA synchronous = FULL")
        return db

    def _disconnect(self) -> None:
        db = getattr(self._connections, "db", None)
        if db is not None:
            self._connections.db = None
            db.close()

    def _check(self, db: sqlite3.Connection) -> None:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        if application_id != APPLICATION_ID:
            raise ValueError(f"store: {self.path} is not a pykes store")


def _create_schema(db: sqlite3.Connection) -> None:
    """The schema of a new (empty) store file. One transaction: another process opening
    the file at the same time sees all of it or nothing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(_SCHEMA)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("PRAGMA journal_mode = WAL")  # recorded in the file: every opener uses it


def _created_empty(path: str) -> bool:
    """Create the database file with mode 0600 if it is missing (SQLite gives its -wal
    and -shm files the same mode) and report whether it is empty: a new store."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return os.path.getsize(path) == 0
    os.close(fd)
    directory = os.open(os.path.dirname(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)  # the new name survives a crash
    finally:
        os.close(directory)
    return True
