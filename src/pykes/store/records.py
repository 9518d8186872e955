"""The typed records of an enclave — key rings, policies, identities — and the enclave's
own description, with their byte encodings (compact JSON, sealed by the caller).

A key ring is one record holding every version of a key: a rotation or a version
deletion is one check-and-set write, and a read gets the whole ring (what decryption
without a version number needs). Each version is a ``KeyVersion`` in its keystore
encoding (crypto.md §2), which carries its own ``created_at`` and ``created_by``;
about 210 bytes, so a ring at the 10,000-version limit is about 2.2 MB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pykes.crypto import KeyVersion, decode_key_version, encode_key_version
from pykes.store.errors import (
    KeyVersionNotFoundError,
    KeyVersionTooOldError,
    LatestVersionError,
    MinimumVersionError,
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


@dataclass(frozen=True, slots=True)
class KeyRing:
    """A key's versions (ascending numbers, never reused), the minimum version that may
    decrypt, and when and by whom the ring was created. Changes return a new ring."""

    name: str
    versions: dict[int, KeyVersion] = field(repr=False)
    min_version: int
    created_at_ns: int
    created_by: str

    @classmethod
    def new(cls, name: str, first: KeyVersion) -> KeyRing:
        created_at = first.created_at_ns or 0
        return cls(name, {1: first}, 1, created_at, first.created_by)

    @property
    def latest(self) -> int:
        """The number of the version new ciphertexts are made with (the highest one)."""
        return next(reversed(self.versions))

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

    def rotated(self, new: KeyVersion) -> KeyRing:
        if len(self.versions) >= MAX_VERSIONS:
            raise TooManyVersionsError(MAX_VERSIONS)
        versions = {**self.versions, self.latest + 1: new}
        return KeyRing(self.name, versions, self.min_version, self.created_at_ns, self.created_by)

    def without_version(self, number: int) -> KeyRing:
        if number not in self.versions:
            raise KeyVersionNotFoundError()
        if number == self.latest:
            raise LatestVersionError()
        versions = {n: key for n, key in self.versions.items() if n != number}
        return KeyRing(self.name, versions, self.min_version, self.created_at_ns, self.created_by)

    def with_min_version(self, number: int) -> KeyRing:
        if not 1 <= number <= self.latest:
            raise MinimumVersionError()
        return KeyRing(self.name, self.versions, number, self.created_at_ns, self.created_by)


def encode_key_ring(ring: KeyRing) -> bytes:
    """Raises ``ValueError`` for a legacy key version without an HMAC key."""
    versions = [[n, encode_key_version(key).decode()] for n, key in ring.versions.items()]
    return _encode(
        {
            "created_at": ring.created_at_ns,
            "created_by": ring.created_by,
            "min_version": ring.min_version,
            "versions": versions,
        }
    )


def decode_key_ring(name: str, data: bytes) -> KeyRing:
    fields = _decode(data)
    versions = {int(n): decode_key_version(key.encode()) for n, key in fields["versions"]}
    if not versions or list(versions) != sorted(versions):
        raise ValueError("store: a key ring's versions are not in order")
    return KeyRing(
        name,
        versions,
        int(fields["min_version"]),
        int(fields["created_at"]),
        str(fields["created_by"]),
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
    """An identity of an enclave and the policy it is assigned."""

    identity: str
    policy: str
    created_at_ns: int
    created_by: str


def encode_identity(identity: IdentityRecord) -> bytes:
    return _encode(
        {
            "policy": identity.policy,
            "created_at": identity.created_at_ns,
            "created_by": identity.created_by,
        }
    )


def decode_identity(identity: str, data: bytes) -> IdentityRecord:
    fields = _decode(data)
    return IdentityRecord(
        identity, str(fields["policy"]), int(fields["created_at"]), str(fields["created_by"])
    )
