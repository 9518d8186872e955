"""What the stateful store reports: client mistakes as ``APIError``s carrying their HTTP
status and text (the API sends them as they are), and the store's own failures.

Texts fixed by the KES SDK (api.md §3.6): ``enclave already exists`` (400),
``enclave does not exist`` (404), ``key already exists`` (400), ``key does not exist``
(404), ``policy already exists`` (400), ``policy does not exist`` (404), ``identity already
exists`` (400), ``identity does not exist`` (404). The others are
pykes's own (no KES client compares them).
"""

from __future__ import annotations

from pykes.errors import APIError, ConfigError


class EnclaveExistsError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "enclave already exists")


class EnclaveNotFoundError(APIError):
    def __init__(self) -> None:
        super().__init__(404, "enclave does not exist")


class EnclaveNotEmptyError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "enclave is not empty")


class PolicyExistsError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "policy already exists")


class IdentityExistsError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "identity already exists")


class DefaultEnclaveError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "the default enclave cannot be deleted")


class KeyVersionNotFoundError(APIError):
    def __init__(self) -> None:
        super().__init__(404, "key version does not exist")


class KeyVersionTooOldError(APIError):
    """A version below the key's minimum decryption version."""

    def __init__(self) -> None:
        super().__init__(400, "key version is below the minimum decryption version")


class LatestVersionError(APIError):
    """Deleting the latest version when the versions left are all below the minimum
    decryption version: nothing would decrypt what the key then encrypts."""

    def __init__(self) -> None:
        super().__init__(
            400,
            "the latest key version cannot be deleted: "
            "the versions before it are below the minimum decryption version",
        )


class OnlyVersionError(APIError):
    """Deleting a key's one version: that is deleting the key, which says so."""

    def __init__(self) -> None:
        super().__init__(400, "the only key version cannot be deleted: delete the key")


class TooManyVersionsError(APIError):
    def __init__(self, limit: int) -> None:
        super().__init__(400, f"key has reached the limit of {limit} versions")


class MinimumVersionError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "minimum version must be between 1 and the latest version")


class RotatedKeyError(APIError):
    """Replacing a key ring that was rotated: its other versions would be lost."""

    def __init__(self, latest: int) -> None:
        super().__init__(400, f"key has been rotated (latest version {latest})")
        self.latest = latest


class InvalidNameError(APIError):
    """``kind`` is the message's leading words: ``enclave name``, ``key name``, …"""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(400, f"{kind} '{name}' is empty, too long or contains invalid characters")


class RecordTooLargeError(APIError):
    """A record larger than the engine stores (OpenBao's Raft ``max_entry_size``, 1 MiB
    by default: about 3,700 key versions). Nothing was written."""

    def __init__(self, size: int) -> None:
        super().__init__(400, f"the record is too large for the store ({size} bytes)")
        self.size = size


class StoreConflictError(APIError):
    """The same record changed under every retry (many writers on one record)."""

    def __init__(self) -> None:
        super().__init__(409, "the record changed concurrently, try again")


class SealError(ConfigError):
    """The store cannot be opened with this seal: a malformed, missing or wrong seal key.
    A ``ConfigError``, so start-up prints its one line and stops."""


class EngineError(ConfigError):
    """The store's engine cannot be opened (an unusable database file): one line, as a
    ``ConfigError`` start-up prints and stops at."""


class RecordNotAuthentic(Exception):
    """A stored record that does not open under its enclave's key and its path (changed,
    moved or from another store): a server fault, never the client's (a 5xx)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"store: record '{path}' is not authentic")
        self.path = path
