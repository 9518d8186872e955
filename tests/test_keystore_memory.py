"""In-memory keystore (docs/compat/keystore.md §4.2)."""

from __future__ import annotations

import asyncio

import pytest

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore import KeyStore, MemoryKeyStore


def test_protocol_and_description() -> None:
    store = MemoryKeyStore()
    assert isinstance(store, KeyStore)
    assert store.description == "In Memory"
    assert asyncio.run(store.status()) == pytest.approx(0.001)


def test_create_get_delete() -> None:
    async def scenario() -> None:
        store = MemoryKeyStore()
        await store.create("k", b"v1")
        assert await store.get("k") == b"v1"
        with pytest.raises(KeyExistsError) as exc:
            await store.create("k", b"v2")
        assert (exc.value.status, exc.value.message) == (400, "key already exists")
        assert await store.get("k") == b"v1"
        await store.delete("k")
        with pytest.raises(KeyNotFoundError) as nf:
            await store.get("k")
        assert (nf.value.status, nf.value.message) == (404, "key does not exist")
        with pytest.raises(KeyNotFoundError):
            await store.delete("k")
        await store.create("k", b"v3")
        assert await store.get("k") == b"v3"
        await store.close()

    asyncio.run(scenario())


def test_value_is_copied() -> None:
    async def scenario() -> None:
        store = MemoryKeyStore()
        value = bytearray(b"abc")
        await store.create("k", value)  # type: ignore[arg-type]
        value[0] = ord("x")
        assert await store.get("k") == b"abc"

    asyncio.run(scenario())


def test_list_returns_everything_for_non_positive_n() -> None:
    async def scenario() -> None:
        store = MemoryKeyStore()
        names = [f"key-{i:05d}" for i in range(2000)]
        for name in reversed(names):
            await store.create(name, b"")
        await store.create("other", b"")
        assert await store.list("", -1) == (names + ["other"], "")
        assert await store.list("key-", 0) == (names, "")
        assert await store.list("key-0001", -1) == (names[10:20], "")
        assert await store.list("nope", -1) == ([], "")
        assert await store.list("key-", 5) == (names[:5], names[5])
        assert await store.list("", 2001) == (names + ["other"], "")

    asyncio.run(scenario())
