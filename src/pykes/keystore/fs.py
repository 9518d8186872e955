"""Filesystem keystore (spec/keystore.md §4.1, design.md §4).

One file per key, ``<path>/<name>``, whose content is exactly the encoded value and
whose mode is exactly ``0600``. Creation is atomic and durable: the value is written
and fsync'd into a temporary dot-file in the same directory, hard-linked to the final
name (``link`` fails with ``EEXIST`` if the name is taken, which makes the create
exclusive) and the directory is fsync'd. A crash can therefore never leave a
half-written file under a key name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from typing import TYPE_CHECKING

from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.listing import list_page

if TYPE_CHECKING:
    from pykes.config import FSKeyStoreConfig

MAX_VALUE_SIZE = 1 << 20
"""``get`` reads at most this many bytes (1 MiB); longer files are truncated, as in Go."""

TEMP_PREFIX = ".pykes-tmp-"
"""Prefix of in-flight temporary files; never a valid key name (it contains ``.``)."""

_INVALID_CHARS = frozenset("/\\.\x00")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _valid_name(name: str) -> bool:
    """Backend-level name check: non-empty, no ``/``, ``\\``, ``.`` or NUL."""
    return bool(name) and _INVALID_CHARS.isdisjoint(name)


def _make_dirs(path: str) -> None:
    """Create ``path`` and missing parents with mode ``0755`` (minus the umask).

    Unlike :func:`os.makedirs`, intermediate directories get ``0755`` too, matching
    Go's ``os.MkdirAll(path, 0o755)``.
    """
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o755)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class FSKeyStore:
    """A keystore that keeps one file per key in a directory.

    Invalid names (empty, or containing ``/``, ``\\``, ``.`` or NUL) are rejected as
    defence in depth: ``create`` raises :class:`ValueError`, ``get``/``delete`` raise
    :class:`~pykes.errors.KeyNotFoundError` (no such key can exist).
    """

    def __init__(self, path: str) -> None:
        """Open (and, if missing, create with mode ``0755``) the directory ``path``.

        Raises :class:`ValueError` if ``path`` exists but is not a directory.
        """
        if not os.path.lexists(path):
            _make_dirs(path)
        if not os.path.isdir(path):
            raise ValueError(f"fs: '{path}' is not a directory")
        self._path = os.path.abspath(path)
        self.description = f"Filesystem: {path}"

    @property
    def path(self) -> str:
        """The absolute directory path."""
        return self._path

    async def status(self) -> float:
        """Time a ``stat`` of the directory; any failure is "unreachable"."""
        start = time.perf_counter()
        try:
            os.stat(self._path)
        except OSError as err:
            raise KeyStoreUnreachable(f"fs: {err}") from err
        return time.perf_counter() - start

    async def create(self, name: str, value: bytes) -> None:
        """Atomically and durably create ``name``; raise KeyExistsError if it exists."""
        if not _valid_name(name):
            raise ValueError("fs: key name contains invalid character")
        await asyncio.to_thread(self._create_sync, name, bytes(value))

    def _create_sync(self, name: str, value: bytes) -> None:
        final = os.path.join(self._path, name)
        tmp = os.path.join(self._path, TEMP_PREFIX + secrets.token_hex(12))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)  # exact mode regardless of the umask
                _write_all(fd, value)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise KeyExistsError() from None
        finally:
            _unlink_quietly(tmp)
        try:
            _fsync_dir(self._path)
        except BaseException:
            # The key is not durable: report failure and leave no key behind.
            _unlink_quietly(final)
            raise

    async def get(self, name: str) -> bytes:
        """Return the file content (at most 1 MiB) or raise KeyNotFoundError."""
        if not _valid_name(name):
            raise KeyNotFoundError()
        try:
            fd = os.open(os.path.join(self._path, name), os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            raise KeyNotFoundError() from None
        with os.fdopen(fd, "rb", buffering=0) as file:
            chunks: list[bytes] = []
            remaining = MAX_VALUE_SIZE
            while remaining > 0:
                chunk = file.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        return b"".join(chunks)

    async def delete(self, name: str) -> None:
        """Remove the key file; a missing key raises KeyNotFoundError."""
        if not _valid_name(name):
            raise KeyNotFoundError()
        try:
            os.unlink(os.path.join(self._path, name))
        except FileNotFoundError:
            raise KeyNotFoundError() from None

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """List every directory entry (foreign files included, own temp files excluded)."""
        names = await asyncio.to_thread(os.listdir, self._path)
        return list_page((x for x in names if not x.startswith(TEMP_PREFIX)), prefix, n)

    async def close(self) -> None:
        """Nothing to release."""


async def connect(config: FSKeyStoreConfig) -> FSKeyStore:
    """The ``keystore.fs`` section → an open filesystem keystore."""
    return FSKeyStore(config.path)
