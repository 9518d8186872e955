"""A second process on a stateful store, for tests/test_store.py.

    python store_writer.py import <engine> <enclave> <count>   import <count> keys from
        concurrent tasks, printing "ok <i>" once each import is acknowledged
    python store_writer.py rotate <engine> <enclave> <key> <count>   rotate one key
        <count> times, printing "done" at the end

<engine> is an SQLite file or ``vault`` (tests/store_backings.py). The seal key comes
from the environment variable PYKES_TEST_SEAL.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from pykes.store import EnclaveStore, SoftwareSeal
from store_backings import open_engine

TASKS = 32


def key_bytes(i: int) -> bytes:
    """The key imported as number ``i``: known, so a test can look for it."""
    return hashlib.sha256(f"crash-{i}".encode()).digest()


def key_name(i: int) -> str:
    return f"crash-{i:04d}"


async def open_store(engine: str) -> EnclaveStore:
    return await EnclaveStore.open(
        await open_engine(engine), SoftwareSeal.from_env("PYKES_TEST_SEAL")
    )


async def import_keys(engine: str, enclave: str, count: int) -> None:
    store = await open_store(engine)
    numbers = iter(range(count))

    async def importer() -> None:
        for i in numbers:
            await store.import_key(enclave, key_name(i), key_bytes(i))
            print(f"ok {i}", flush=True)

    await asyncio.gather(*(importer() for _ in range(TASKS)))
    await store.close()


async def rotate(engine: str, enclave: str, name: str, count: int) -> None:
    store = await open_store(engine)
    for _ in range(count):
        await store.rotate_key(enclave, name)
    await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "import":
        asyncio.run(import_keys(args[0], args[1], int(args[2])))
    elif command == "rotate":
        asyncio.run(rotate(args[0], args[1], args[2], int(args[3])))
    else:
        raise SystemExit(f"unknown command {command}")
