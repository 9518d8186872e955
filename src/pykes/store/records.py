"""The typed records of an enclave — key rings, policies, identities — and the enclave's
own description, with their byte encodings (compact JSON, sealed by the caller).

A key ring is one record holding every version of a key: a rotation or a version
deletion is one check-and-set write, and a read gets the whole ring (what decryption
without a version number needs). Each version is a ``KeyVersion`` in its keystore
encoding (crypto.md §2), which carries its own ``created_at`` and ``created_by``;
about 210 bytes, so a ring at the 10,000-version limit is about 2.2 MB. A version is
decoded when first used (37 µs each): a ring of 10,000 opens in milliseconds, not 0.4 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pykes.crypto import KeyVersion, decode_key_version, encode_key_version
from pykes.store.errors import (
    KeyVersionNotFoundError,
    KeyVersionTooOldError,
    LatestVersionError,
    MinimumVersionError,
    OnlyVersionError,
    TooManyVersionsError,
)

MAX_VERSIONS = 10_000
"""Versions a key ring holds at most (as 2023 KES); deleted ones do not count."""


def _encode(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


def _decode(data: bytes) -> dict[str, Any]:
    fields = json.loads(data)
    if not isinstance(fields, dict):
        raise ValueError("store: a record is not a JSON object")
    return fields


@dataclass(frozen=True, slots=True)
class EnclaveInfo:
    """What describe shows of an enclave (its key never leaves the store)."""

    name: str
    created_at_ns: int
    created_by: str


class KeyVersions(Mapping[int, KeyVersion]):
    """A ring's versions by number, ascending, held in their stored encoding and each
    decoded on first use. Immutable: the changes return a new mapping."""

    __slots__ = ("_encoded", "_decoded", "latest")

    def __init__(self, encoded: dict[int, bytes], decoded: dict[int, KeyVersion] | None = None):
        self._encoded = encoded
        self._decoded = {} if decoded is None else decoded
        # The highest number (0: none), kept: every generate and decrypt asks for it.
        self.latest = next(reversed(encoded), 0)

    @classmethod
    def of(cls, keys: Mapping[int, KeyVersion]) -> KeyVersions:
        return cls({n: encode_key_version(key) for n, key in keys.items()}, dict(keys))

    def __getitem__(self, number: int) -> KeyVersion:
        key = self._decoded.get(number)
        if key is None:
            key = self._decoded[number] = decode_key_version(self._encoded[number])
        return key

    def __contains__(self, number: object) -> bool:
        return number in self._encoded

    def __iter__(self) -> Iterator[int]:
        return iter(self._encoded)

    def __reversed__(self) -> Iterator[int]:
        return reversed(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)

    def __repr__(self) -> str:
        return f"KeyVersions({list(self._encoded)})"

    def encoded(self, number: int) -> bytes:
        return self._encoded[number]

    def added(self, number: int, key: KeyVersion) -> KeyVersions:
        encoded = {**self._encoded, number: encode_key_version(key)}
        return KeyVersions(encoded, {**self._decoded, number: key})

    def removed(self, number: int) -> KeyVersions:
        encoded = {n: key for n, key in self._encoded.items() if n != number}
        return KeyVersions(encoded, {n: k for n, k in self._decoded.items() if n != number})


@dataclass(frozen=True, slots=True)
class KeyRing:
    """A key's versions (ascending numbers, never reused), the minimum version that may
    decrypt, and when and by whom the ring was created. Changes return a new ring.

    ``highest`` is the highest number ever given, where a deleted latest version took it
    with it (0: the latest's): a rotation numbers past it, so a number never names two
    keys — a ciphertext stored with its version (as MinIO does) fails, never opens."""

    name: str
    versions: KeyVersions
    min_version: int
    created_at_ns: int
    created_by: str
    highest: int = 0

    @classmethod
    def new(cls, name: str, first: KeyVersion) -> KeyRing:
        created_at = first.created_at_ns or 0
        return cls(name, KeyVersions.of({1: first}), 1, created_at, first.created_by)

    @classmethod
    def of_stored(cls, name: str, value: bytes) -> KeyRing:
        """A ring whose version 1 is a stateless keystore's stored value (crypto.md §2),
        kept byte for byte — legacy JSON included (``kes migrate``). ``ValueError`` with
        a generic message (never the value) if it is not a key."""
        first = decode_key_version(value)
        try:
            value.decode()  # the ring's encoding holds it as text
        except UnicodeDecodeError:
            raise ValueError("invalid key encoding") from None
        versions = KeyVersions({1: bytes(value)}, {1: first})
        return cls(name, versions, 1, first.created_at_ns or 0, first.created_by)

    @property
    def latest(self) -> int:
        """The number of the version new ciphertexts are made with (the highest one)."""
        return self.versions.latest

    @property
    def current(self) -> KeyVersion:
        return self.versions[self.latest]

    def version(self, number: int) -> KeyVersion:
        """Version ``number`` for decryption: ``KeyVersionNotFoundError`` if it does not
        exist (never did, or deleted), ``KeyVersionTooOldError`` if below the minimum."""
        try:
            key = self.versions[number]
        except KeyError:
            raise KeyVersionNotFoundError() from None
        if number < self.min_version:
            raise KeyVersionTooOldError()
        return key

    def decryption_candidates(self) -> Iterator[tuple[int, KeyVersion]]:
        """The versions that may decrypt, newest first (a ciphertext without a version
        number is most likely recent): at most ``MAX_VERSIONS`` AEAD attempts."""
        for number in reversed(self.versions):
            if number < self.min_version:
                return
            yield number, self.versions[number]

    @property
    def last_given(self) -> int:
        """The highest version number ever given: the next rotation's is one more."""
        return max(self.highest, self.latest)

    def rotated(self, new: KeyVersion) -> KeyRing:
        if len(self.versions) >= MAX_VERSIONS:
            raise TooManyVersionsError(MAX_VERSIONS)
        return self._with(self.versions.added(self.last_given + 1, new), self.min_version)

    def without_version(self, number: int) -> KeyRing:
        """Forget version ``number``; the latest too, when an older one remains at or
        above the minimum decryption version (it becomes the latest)."""
        if number not in self.versions:
            raise KeyVersionNotFoundError()
        if len(self.versions) == 1:
            raise OnlyVersionError()
        versions = self.versions.removed(number)
        if versions.latest < self.min_version:
            raise LatestVersionError()
        return self._with(versions, self.min_version)

    def with_min_version(self, number: int) -> KeyRing:
        if not 1 <= number <= self.latest:
            raise MinimumVersionError()
        return self._with(self.versions, number)

    def _with(self, versions: KeyVersions, min_version: int) -> KeyRing:
        return KeyRing(
            self.name,
            versions,
            min_version,
            self.created_at_ns,
            self.created_by,
            max(self.last_given, versions.latest),
        )


def encode_key_ring(ring: KeyRing) -> bytes:
    """Raises ``ValueError`` for a legacy key version without an HMAC key."""
    versions = [[n, ring.versions.encoded(n).decode()] for n in ring.versions]
    fields: dict[str, Any] = {
        "created_at": ring.created_at_ns,
        "created_by": ring.created_by,
        "min_version": ring.min_version,
        "versions": versions,
    }
    if ring.last_given > ring.latest:  # a deleted latest version's number
        fields["highest_version"] = ring.last_given
    return _encode(fields)


def decode_key_ring(name: str, data: bytes) -> KeyRing:
    fields = _decode(data)
    versions = {int(n): key.encode() for n, key in fields["versions"]}
    if not versions or list(versions) != sorted(versions):
        raise ValueError("store: a key ring's versions are not in order")
    return KeyRing(
        name,
        KeyVersions(versions),
        int(fields["min_version"]),
        int(fields["created_at"]),
        str(fields["created_by"]),
        int(fields.get("highest_version", 0)),
    )


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A policy of an enclave: allow and deny path patterns (auth.md §4)."""

    name: str
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    created_at_ns: int
    created_by: str


def encode_policy(policy: PolicyRecord) -> bytes:
    return _encode(
        {
            "allow": list(policy.allow),
            "deny": list(policy.deny),
            "created_at": policy.created_at_ns,
            "created_by": policy.created_by,
        }
    )


def decode_policy(name: str, data: bytes) -> PolicyRecord:
    fields = _decode(data)
    allow, deny = tuple(map(str, fields["allow"])), tuple(map(str, fields["deny"]))
    return PolicyRecord(name, allow, deny, int(fields["created_at"]), str(fields["created_by"]))


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """An identity of an enclave and the policy it is assigned; a KMS API identity also
    has a privilege (kms-go's numbers: 2 Admin, 3 User; 0 for a KES API identity) and
    may have no policy ("")."""

    identity: str
    policy: str
    created_at_ns: int
    created_by: str
    privilege: int = 0


def encode_identity(identity: IdentityRecord) -> bytes:
    fields: dict[str, Any] = {
        "policy": identity.policy,
        "created_at": identity.created_at_ns,
        "created_by": identity.created_by,
    }
    if identity.privilege:
        fields["privilege"] = identity.privilege
    return _encode(fields)


def decode_identity(identity: str, data: bytes) -> IdentityRecord:
    fields = _decode(data)
    return IdentityRecord(
        identity,
        str(fields["policy"]),
        int(fields["created_at"]),
        str(fields["created_by"]),
        int(fields.get("privilege", 0)),
    )
