"""The key cache (docs/compat/keystore.md §3).

``ProbeStore`` is a real in-memory keystore that counts calls, can be switched "down"
(every operation raises KeyStoreUnreachable) and can hold ``get`` at a gate.
Ticker tests use short intervals with generous margins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore import KeyCache, KeyStore, MemoryKeyStore
from pykes.keystore.changes import KeyChanges


class ProbeStore:
    """A keystore wrapper that counts calls and can simulate an outage."""

    description = "Probe"

    def __init__(self) -> None:
        self.inner = MemoryKeyStore()
        self.down = False
        self.gate: asyncio.Event | None = None
        self.late_gate: asyncio.Event | None = None  # holds a read after it read the value
        self.delete_gate: asyncio.Event | None = None  # holds a delete after it deleted
        self.gets = 0
        self.statuses = 0
        self.closed = False

    def _check(self) -> None:
        if self.down:
            raise KeyStoreUnreachable("probe: down")

    async def status(self) -> float:
        self.statuses += 1
        self._check()
        return await self.inner.status()

    async def create(self, name: str, value: bytes) -> None:
        self._check()
        await self.inner.create(name, value)

    async def get(self, name: str) -> bytes:
        self.gets += 1
        if self.gate is not None:
            await self.gate.wait()
        self._check()
        value = await self.inner.get(name)
        if self.late_gate is not None:
            await self.late_gate.wait()
        return value

    async def delete(self, name: str) -> None:
        self._check()
        await self.inner.delete(name)
        if self.delete_gate is not None:
            await self.delete_gate.wait()

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        self._check()
        return await self.inner.list(prefix, n)

    async def close(self) -> None:
        self.closed = True


def decode(raw: bytes) -> str:
    if raw.startswith(b"bad"):
        raise ValueError("cannot decode")
    return raw.decode()


def run(test: Callable[[KeyCache[str], ProbeStore], Awaitable[None]], **expiry: Any) -> ProbeStore:
    """Run ``test`` with a started cache over a fresh ProbeStore holding key ``k``."""
    params: dict[str, Any] = {"any": 0, "unused": 0, "offline": 0, "status_interval": 0}
    params.update(expiry)
    store = ProbeStore()

    async def main() -> None:
        await store.inner.create("k", b"value-k")
        cache: KeyCache[str] = KeyCache(store, decode=decode, **params)
        await cache.start()
        try:
            await test(cache, store)
        finally:
            await cache.close()

    asyncio.run(main())
    assert store.closed
    return store


async def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


# -- basic operations ------------------------------------------------------------------


def test_protocol_and_description() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert isinstance(store, KeyStore)
        assert cache.description == "Probe"
        assert cache.store is store
        assert cache.offline is False
        assert await cache.status() == pytest.approx(0.001)

    run(test)


def test_hit_does_not_touch_backend() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert await cache.get("k") == "value-k"
        assert "k" in cache and len(cache) == 1
        for _ in range(100):
            assert await cache.get("k") == "value-k"
        assert store.gets == 1

    run(test)


def test_concurrent_misses_cause_one_backend_read() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        store.gate = asyncio.Event()
        tasks = [asyncio.create_task(cache.get("k")) for _ in range(50)]
        await asyncio.sleep(0.01)
        assert store.gets == 1
        store.gate.set()
        assert await asyncio.gather(*tasks) == ["value-k"] * 50
        assert store.gets == 1
        assert cache._locks == {}  # per-name locks are released

    run(test)


def test_misses_for_different_names_are_not_serialised() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        await store.inner.create("j", b"value-j")
        store.gate = asyncio.Event()
        tasks = [asyncio.create_task(cache.get(n)) for n in ("k", "j")]
        await asyncio.sleep(0.01)
        assert store.gets == 2  # both reads are in flight at once
        store.gate.set()
        assert await asyncio.gather(*tasks) == ["value-k", "value-j"]

    run(test)


def test_miss_errors_propagate_and_are_not_cached() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await cache.get("missing")
        await store.inner.create("broken", b"bad value")
        with pytest.raises(ValueError, match="cannot decode"):
            await cache.get("broken")
        assert len(cache) == 0
        store.down = True
        with pytest.raises(KeyStoreUnreachable):
            await cache.get("k")
        store.down = False
        assert await cache.get("k") == "value-k"
        assert cache._locks == {}

    run(test)


def test_failed_read_lets_the_next_waiter_retry() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        # Per docs/compat/keystore.md §3 a waiter re-checks under the lock, so after a failed read
        # the next waiter reads the backend itself (nothing was cached).
        store.gate = asyncio.Event()
        store.down = True
        first = asyncio.create_task(cache.get("k"))
        second = asyncio.create_task(cache.get("k"))
        await asyncio.sleep(0.01)
        assert store.gets == 1  # the second waits for the lock
        store.gate.set()
        with pytest.raises(KeyStoreUnreachable):
            await first
        with pytest.raises(KeyStoreUnreachable):
            await second
        assert store.gets == 2

    run(test)


def test_create_does_not_populate_cache() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        await cache.create("new", b"value-new")
        assert "new" not in cache
        with pytest.raises(KeyExistsError):
            await cache.create("new", b"other")
        assert await cache.get("new") == "value-new"
        assert store.gets == 1

    run(test)


def test_delete_evicts_only_on_success() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert await cache.get("k") == "value-k"
        store.down = True
        with pytest.raises(KeyStoreUnreachable):
            await cache.delete("k")
        assert "k" in cache
        assert await cache.get("k") == "value-k"  # still served from the cache
        store.down = False
        await cache.delete("k")
        assert "k" not in cache
        with pytest.raises(KeyNotFoundError):
            await cache.get("k")
        with pytest.raises(KeyNotFoundError):
            await cache.delete("k")

    run(test)


def test_delete_during_miss_does_not_cache_stale_value() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        await store.inner.create("j", b"value-j")
        store.late_gate = asyncio.Event()
        load = asyncio.create_task(cache.get("k"))
        await asyncio.sleep(0.01)  # the read is "in flight" past the backend
        await cache.delete("k")
        await store.inner.create("k", b"value-k2")
        store.late_gate.set()
        assert await load == "value-k"  # overlapped the delete: the old value may go out
        assert "k" not in cache  # but it is not kept

        store.late_gate = asyncio.Event()
        load = asyncio.create_task(cache.get("j"))
        await asyncio.sleep(0.01)
        await cache.delete("k")  # another name's write does not stop caching j
        store.late_gate.set()
        assert await load == "value-j"
        assert "j" in cache

    run(test)


def test_list_always_goes_to_backend() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        await cache.get("k")
        await store.inner.create("k2", b"x")
        assert await cache.list("k", -1) == (["k", "k2"], "")
        store.down = True
        with pytest.raises(KeyStoreUnreachable):
            await cache.list("", -1)

    run(test)


def test_start_is_idempotent_and_disabled_tickers_do_not_run() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert cache._tasks == []
        await cache.start()
        assert cache._tasks == []

    run(test)

    async def test2(cache: KeyCache[str], store: ProbeStore) -> None:
        assert len(cache._tasks) == 4
        await cache.start()
        assert len(cache._tasks) == 4

    run(test2, any=60, unused=60, offline=60, status_interval=60)


# -- tickers -------------------------------------------------------------------------------


def test_any_ticker_drops_everything() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        for _ in range(3):
            assert await cache.get("k") == "value-k"
            reads = store.gets
            await wait_until(lambda: "k" not in cache)
            assert await cache.get("k") == "value-k"
            assert store.gets == reads + 1

    run(test, any=0.05)


def test_unused_ticker_keeps_hot_keys_and_drops_cold_ones() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        await store.inner.create("cold", b"value-cold")
        await cache.get("k")
        await cache.get("cold")
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.6  # three unused intervals
        while loop.time() < end:
            assert await cache.get("k") == "value-k"
            await asyncio.sleep(0.01)
        assert "k" in cache
        assert "cold" not in cache
        assert store.gets == 2  # the hot key was read once
        await wait_until(lambda: "k" not in cache)  # unused for up to `unused`

    run(test, unused=0.2)


def test_status_ticker_flips_offline_and_back() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert await cache.status() == pytest.approx(0.001)
        store.down = True
        await wait_until(lambda: cache.offline)
        probes = store.statuses
        for _ in range(3):
            with pytest.raises(KeyStoreUnreachable, match="keystore is offline"):
                await cache.status()
        assert store.statuses == probes  # the backend was not asked
        store.down = False
        await wait_until(lambda: not cache.offline)
        assert await cache.status() == pytest.approx(0.001)

    run(test, status_interval=0.03)


def test_status_probe_timeout_means_offline() -> None:
    class HangingStore(ProbeStore):
        async def status(self) -> float:
            await asyncio.sleep(3600)
            return 0.0

    async def main() -> None:
        store = HangingStore()
        cache: KeyCache[str] = KeyCache(
            store, decode=decode, any=0, unused=0, offline=0, status_interval=0.03
        )
        await cache.start()
        await wait_until(lambda: cache.offline)
        await cache.close()

    asyncio.run(main())


def test_offline_caching_serves_cached_keys_during_outage() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert await cache.get("k") == "value-k"
        store.down = True
        await wait_until(lambda: cache.offline)
        reads = store.gets
        await asyncio.sleep(0.3)  # several any/unused intervals
        assert await cache.get("k") == "value-k"
        assert store.gets == reads
        # keys not in the cache fail
        await store.inner.create("j", b"value-j")
        with pytest.raises(KeyStoreUnreachable):
            await cache.get("j")
        # recovery: normal expiry resumes
        store.down = False
        await wait_until(lambda: not cache.offline)
        await wait_until(lambda: "k" not in cache)
        assert await cache.get("j") == "value-j"

    run(test, any=0.05, unused=0.05, offline=60, status_interval=0.02)


def test_offline_ticker_drops_everything_while_offline() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        store.down = True
        await wait_until(lambda: cache.offline)
        store.down = False
        assert await cache.get("k") == "value-k"  # backend read while marked offline
        store.down = True
        await wait_until(lambda: "k" not in cache)

    run(test, offline=0.1, status_interval=0.02)


def test_without_offline_caching_keys_expire_during_outage() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        assert await cache.get("k") == "value-k"
        store.down = True
        await wait_until(lambda: cache.offline)
        await wait_until(lambda: "k" not in cache)
        with pytest.raises(KeyStoreUnreachable):
            await cache.get("k")

    run(test, any=0.1, unused=60, offline=0, status_interval=0.02)


def test_close_stops_tickers() -> None:
    async def main() -> None:
        store = ProbeStore()
        cache: KeyCache[str] = KeyCache(
            store, decode=decode, any=0.01, unused=0.01, offline=0.01, status_interval=0.01
        )
        await cache.start()
        tasks = list(cache._tasks)
        await asyncio.sleep(0.05)
        await cache.close()
        assert all(t.done() for t in tasks)
        probes = store.statuses
        await asyncio.sleep(0.05)
        assert store.statuses == probes
        assert store.closed

    asyncio.run(main())


def test_hit_path_does_not_yield_to_the_loop() -> None:
    async def test(cache: KeyCache[str], store: ProbeStore) -> None:
        await cache.get("k")
        coro = cache.get("k")
        with pytest.raises(StopIteration) as done:
            coro.send(None)  # completes synchronously: no await, lock or task
        assert done.value.value == "value-k"

    run(test)


# -- workers sharing one record of key changes (issue 19) ----------------------------------
def run_workers(test: Callable[..., Awaitable[None]], workers: int = 2, slots: int = 8) -> None:
    """Run ``test(store, changes, *caches)``: ``workers`` caches over one store sharing
    one KeyChanges, as the worker processes of a node do (in one process here; the
    processes themselves: tests/test_worker_consistency.py)."""
    store = ProbeStore()
    changes = KeyChanges(slots)

    async def main() -> None:
        await store.inner.create("k", b"value-k")
        caches: list[KeyCache[str]] = [
            KeyCache(store, decode=decode, any=0, unused=0, offline=0, changes=changes)
            for _ in range(workers)
        ]
        await test(store, changes, *caches)

    asyncio.run(main())


def test_a_write_on_one_worker_evicts_on_the_others() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        await store.inner.create("other", b"value-other")
        assert await a.get("k") == await b.get("k") == "value-k"
        assert await b.get("other") == "value-other"
        await a.delete("k")
        assert "k" in b  # evicted lazily: by b's next lookup, before it answers
        with pytest.raises(KeyNotFoundError):
            await b.get("k")
        assert "other" in b  # only the changed name is evicted
        await a.create("k", b"value-k2")
        assert await b.get("k") == "value-k2"
        gets = store.gets
        assert await b.get("other") == "value-other" and store.gets == gets

    run_workers(test)


def test_a_key_already_gone_in_the_backend_is_evicted_everywhere() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        assert await b.get("k") == "value-k"
        await store.inner.delete("k")  # e.g. a delete whose answer was lost
        with pytest.raises(KeyNotFoundError):
            await a.delete("k")  # the retry: 404, and no worker keeps a copy
        with pytest.raises(KeyNotFoundError):
            await b.get("k")

    run_workers(test)


def test_a_failed_delete_evicts_nowhere() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        assert await b.get("k") == "value-k"
        generation = changes.generation[0]
        store.down = True
        with pytest.raises(KeyStoreUnreachable):
            await a.delete("k")
        assert changes.generation[0] == generation
        assert await b.get("k") == "value-k"

    run_workers(test)


def test_a_load_racing_a_write_on_another_worker_is_not_cached() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        store.late_gate = asyncio.Event()
        load = asyncio.create_task(b.get("k"))
        await asyncio.sleep(0.01)  # b read the key and stalls: a deletes and re-creates it
        await a.delete("k")
        await store.inner.create("k", b"value-k2")
        store.late_gate.set()
        assert await load == "value-k"
        assert "k" not in b
        assert await b.get("k") == "value-k2"

    run_workers(test)


def test_an_overrun_ring_drops_the_whole_cache() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        await store.inner.create("idle", b"value-idle")
        assert await b.get("idle") == "value-idle"
        for i in range(changes.slots):
            await a.create(f"n{i}", b"v")
        assert await b.get("k") == "value-k"  # as many writes as records: b knows which
        assert "idle" in b
        for i in range(changes.slots):
            await a.delete(f"n{i}")
        await a.create("n0", b"v")  # one write more than records: b cannot tell which
        await b.get("k")
        assert "idle" not in b and len(b) == 1

    run_workers(test)


def test_publishing_every_key_drops_every_cache() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        assert await a.get("k") == await b.get("k") == "value-k"
        changes.publish(None)  # what the master does when a worker dies
        await store.inner.delete("k")
        await store.inner.create("k", b"value-k2")
        assert await a.get("k") == await b.get("k") == "value-k2"
        long_name = "x" * 200  # longer than a record: published as "any key"
        changes.publish(long_name)
        assert changes.since(changes.generation[0] - 1)[1] is None

    run_workers(test)


def test_a_cache_built_later_starts_current() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache) -> None:
        for i in range(3 * changes.slots):  # history the new cache must not replay
            changes.publish(f"n{i}")
        late: KeyCache[str] = KeyCache(
            store, decode=decode, any=0, unused=0, offline=0, changes=changes
        )
        assert await late.get("k") == "value-k"
        assert await late.get("k") == "value-k" and "k" in late
        assert late._seen == changes.generation[0]

    run_workers(test, workers=1)


def test_a_cancelled_delete_still_publishes_what_reached_the_backend() -> None:
    async def test(store: ProbeStore, changes: KeyChanges, a: KeyCache, b: KeyCache) -> None:
        assert await b.get("k") == "value-k"
        generation = changes.generation[0]
        store.delete_gate = asyncio.Event()
        deleting = asyncio.create_task(a.delete("k"))
        await asyncio.sleep(0.01)  # deleted in the backend, its answer not read yet
        deleting.cancel()  # the client went away: its request is cancelled
        with pytest.raises(asyncio.CancelledError):
            await deleting
        store.delete_gate.set()
        await wait_until(lambda: changes.generation[0] > generation)
        with pytest.raises(KeyNotFoundError):
            await b.get("k")

    run_workers(test)
