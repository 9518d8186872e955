"""Filesystem keystore (docs/compat/keystore.md §4.1).

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
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.listing import DEFAULT_PAGE_SIZE, byte_order_key

if TYPE_CHECKING:
    from pykes.config import FSKeyStoreConfig

MAX_VALUE_SIZE = 1 << 20
"""``get`` reads at most this many bytes (1 MiB); longer files are truncated, as in Go."""

TEMP_PREFIX = ".pykes-tmp-"
"""Prefix of in-flight temporary files; never a valid key name (it contains ``.``)."""

DIR_MODE = 0o700
"""Mode of a key directory the store creates (an existing directory is left as it is)."""

_TEMP_PREFIX_BYTES = TEMP_PREFIX.encode()

_INVALID_CHARS = frozenset("/\\.\x00")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _valid_name(name: str) -> bool:
    """Backend-level name check: non-empty, no ``/``, ``\\``, ``.`` or NUL."""
    return bool(name) and _INVALID_CHARS.isdisjoint(name)


def _make_dirs(path: str) -> None:
    """Create ``path`` with mode ``0700`` and missing parents with ``0755`` (minus the umask).

    The key directory itself is private to the server's user (issue 9: "key files 0600
    and directory 0700"; Go's ``os.MkdirAll(path, 0o755)`` makes it world-listable, and
    key names can be sensitive). Intermediate directories keep Go's ``0755``.
    """
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    target = os.path.abspath(path)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE if directory == target else 0o755)


def smallest(names: Iterable[bytes], k: int) -> list[bytes]:
    """The ``k`` smallest of ``names`` (distinct), sorted, holding at most ~1.25·k of them.

    Names are buffered and, whenever the buffer is full, sorted and cut back to ``k``;
    the ``k``-th smallest so far then bounds what is worth buffering. ``bytes`` compare
    in byte order, the listing order of docs/compat/keystore.md §1.1.
    """
    capacity = k + max(k // 4, 4096)
    buffer: list[bytes] = []
    bound: bytes | None = None
    for name in names:
        if bound is not None and name >= bound:
            continue
        buffer.append(name)
        if len(buffer) >= capacity:
            buffer.sort()
            del buffer[k:]
            bound = buffer[-1]
    buffer.sort()
    del buffer[k:]
    return buffer


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
        """Open (and, if missing, create with mode ``0700``) the directory ``path``.

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
        """Time opening the directory; any failure is "unreachable".

        Go only ``stat``s the path, which still succeeds when the directory was replaced
        by a file or cannot be read; opening it as a directory sees both.
        """
        start = time.perf_counter()
        try:
            fd = os.open(self._path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        except OSError as err:
            raise KeyStoreUnreachable(f"fs: {err}") from err
        os.close(fd)
        return time.perf_counter() - start

    def _missing(self, err: FileNotFoundError) -> Exception:
        """A missing key, unless the directory itself is gone (an outage, not a 404)."""
        if os.path.isdir(self._path):
            return KeyNotFoundError()
        return KeyStoreUnreachable(f"fs: {err.strerror}: '{self._path}'")

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
        except FileNotFoundError as err:
            raise self._missing(err) from None
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
        except FileNotFoundError as err:
            raise self._missing(err) from None

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """List every directory entry (foreign files included, own temp files excluded).

        Same page as :func:`~pykes.keystore.listing.list_page` over all names, but the
        directory is streamed and only the ``n + 1`` smallest matching names are kept,
        so memory depends on the page size, not on the number of keys.
        """
        return await asyncio.to_thread(self._list_sync, prefix, n)

    def _list_sync(self, prefix: str, n: int) -> tuple[list[str], str]:
        size = n if n > 0 else DEFAULT_PAGE_SIZE
        wanted = byte_order_key(prefix)
        with os.scandir(os.fsencode(self._path)) as entries:
            matching = (
                entry.name
                for entry in entries
                if entry.name.startswith(wanted) and not entry.name.startswith(_TEMP_PREFIX_BYTES)
            )
            page = smallest(matching, size + 1)
        names = [os.fsdecode(name) for name in page]
        if len(names) > size:
            return names[:size], names[size]
        return names, ""

    async def close(self) -> None:
        """Nothing to release."""


async def connect(config: FSKeyStoreConfig) -> FSKeyStore:
    """The ``keystore.fs`` section → an open filesystem keystore."""
    return FSKeyStore(config.path)
