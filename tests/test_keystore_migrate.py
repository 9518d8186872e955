"""``kes migrate`` (docs/compat/cli.md §11) round trip through every persistent keystore backend:
fs → backend → a second, empty fs keystore, raw values byte-identical, names identical;
re-running with ``--merge`` copies nothing twice and overwrites nothing; and from every
backend into an enclave of a stateful store, each key version 1 of a ring byte for byte.

The migration is the real ``pykes.cli.migrate._migrate`` (config files loaded with
``load_config``, the listing, copy and merge logic, the progress/summary output). The
module exposes no copy function taking two connected keystores, and the GCP / Azure
replay backends need ``connect`` options (token endpoint, trusted CA) a config file
cannot express; so the non-fs side of each migration is an fs section pointing at a
placeholder directory, and ``pykes.keystore.factory.connect_keystore`` resolves exactly
that placeholder to the backend's real connected store (``BACKENDS[name].open``, the
same ``<backend>.connect(config)`` the factory would call). Every other section — the
fs keystores — is connected by the real factory.

Key counts: the migration is sequential, about four backend round trips per key.
With ``PYKES_MIGRATE_KEYS=1000`` every backend migrates 1,000 keys (passes; measured
on 2 cores: fs 6 s, aws 50 s, vault 31 s, azure 36 s, gcp 22 s, entrust 17 s,
fortanix 11 s, gemalto 11 s — 187 s in all). By default fs migrates 1,000 keys,
aws and vault 250 and the replayed vendor / cloud APIs 150, keeping the file under a
minute.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from pathlib import Path
from typing import Any

import pytest

import pykes.keystore.factory as factory
from conftest import PKI, config_yaml
from keystore_backends import (  # noqa: F401
    BACKENDS,
    BackendEnv,
    azure_replay_fixture,
    entrust_replay_fixture,
    fortanix_replay_fixture,
    gcp_replay_fixture,
    gemalto_replay_fixture,
    moto_endpoint_fixture,
    vault_kv2_fixture,
)
from pykes.cli.migrate import _migrate
from pykes.config import load_config
from pykes.crypto import decode_key_version, encode_key_version, generate_key_version
from pykes.keystore import FSKeyStore
from pykes.keystore.fs import TEMP_PREFIX
from pykes.store.factory import open_store
from stateful_store import new_store_dir, stateful_config

REPLAY_COUNT = 150
COUNTS = {"fs": 1000, "aws": 250, "vault": 250}
OVERRIDE = int(os.environ.get("PYKES_MIGRATE_KEYS", "0"))
NAMES = [name for name in BACKENDS if name != "memory"]


def _random_value(rng: random.Random) -> bytes:
    # Stored values are ASCII (base64 protobuf / legacy JSON); vary the length too.
    return base64.b64encode(rng.randbytes(rng.randrange(16, 512)))


def _fs_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith(TEMP_PREFIX))


def _fill_fs(directory: Path, count: int, rng: random.Random) -> dict[str, bytes]:
    directory.mkdir(parents=True)
    values: dict[str, bytes] = {}
    for i in range(count):
        name = f"mig-{i:04d}-{rng.randrange(1 << 32):08x}"
        values[name] = _random_value(rng)
        (directory / name).write_bytes(values[name])
    return values


def _summary(out: str) -> str:
    return out.splitlines()[-1]


def _route_placeholder(
    monkeypatch: pytest.MonkeyPatch, name: str, placeholder: Path, env: BackendEnv
) -> list[str]:
    """Make the fs section at ``placeholder`` connect to backend ``name`` (see the module
    docstring); returns the list each such connection is noted in."""
    real_connect = factory.connect_keystore
    opened: list[str] = []

    async def connect(config: Any) -> Any:
        if config.kind == "fs" and Path(config.path) == placeholder and name != "fs":
            opened.append(name)
            return await BACKENDS[name].open(env)
        return await real_connect(config)

    monkeypatch.setattr(factory, "connect_keystore", connect)
    return opened


@pytest.mark.parametrize("name", NAMES)
def test_migrate_round_trip_and_merge(
    name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pki: PKI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend = BACKENDS[name]
    env = BackendEnv(tmp_path, {n: request.getfixturevalue(n) for n in backend.needs})
    count = OVERRIDE or COUNTS.get(name, REPLAY_COUNT)
    rng = random.Random(f"migrate-{name}")

    src_dir, back_dir = tmp_path / "src", tmp_path / "back"
    # fs is configured for real (the directory its BACKENDS factory opens).
    placeholder = tmp_path / ("keys" if name == "fs" else "backend-placeholder")
    configs: dict[str, Path] = {}
    for label, directory in (("src", src_dir), ("back", back_dir), ("backend", placeholder)):
        configs[label] = tmp_path / f"{label}.yml"
        configs[label].write_text(config_yaml(pki, "disabled", directory))
    values = _fill_fs(src_dir, count, rng)

    opened = _route_placeholder(monkeypatch, name, placeholder, env)

    async def migrate(src: str, dst: str, *, merge: bool = False) -> str:
        capsys.readouterr()
        rc = await _migrate(str(configs[src]), str(configs[dst]), "*", merge, False)
        assert rc == 0
        return capsys.readouterr().out

    async def backend_names_and(probe: list[str]) -> tuple[list[str], dict[str, bytes]]:
        store = await backend.open(env)
        try:
            names, _ = await store.list("", 1 << 30)
            return names, {n: await store.get(n) for n in probe}
        finally:
            await store.close()

    async def scenario() -> None:
        if backend.reset is not None:
            await backend.reset(env)

        out = await migrate("src", "backend")
        assert out.startswith("Starting key migration:\n\n")
        assert _summary(out) == f"Migrated {count:6d} keys successfully!"

        out = await migrate("backend", "back")
        assert _summary(out) == f"Migrated {count:6d} keys successfully!"
        assert _fs_names(back_dir) == sorted(values)
        for key, value in values.items():
            assert (back_dir / key).read_bytes() == value, key  # byte-identical

        # Re-run with --merge after the source changed (one value rewritten, one key
        # added): only the new key is copied, no key twice, no existing value replaced.
        changed = sorted(values)[count // 2]
        source = FSKeyStore(str(src_dir))
        await source.delete(changed)
        await source.create(changed, b"changed-after-first-migration")
        added = "mig-added-" + os.urandom(4).hex()
        values[added] = _random_value(rng)
        await source.create(added, values[added])
        await source.close()

        out = await migrate("src", "backend", merge=True)
        assert _summary(out) == "Migrated      1 keys successfully!"
        names, probe = await backend_names_and([changed, added])
        assert sorted(names) == sorted(values)  # no duplicates, nothing lost
        assert len(names) == len(set(names)) == count + 1
        assert probe == {changed: values[changed], added: values[added]}

        out = await migrate("backend", "back", merge=True)
        assert _summary(out) == "Migrated      1 keys successfully!"
        assert _fs_names(back_dir) == sorted(values)
        for key, value in values.items():
            assert (back_dir / key).read_bytes() == value, key

    asyncio.run(scenario())
    if name != "fs":
        assert opened == [name] * 4  # every backend side went to the real backend


@pytest.mark.parametrize("name", NAMES)
def test_migrate_into_an_enclave(
    name: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pki: PKI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From every backend into an enclave of a stateful store (docs/stateful.md): each
    stored key, a legacy JSON one included, becomes version 1 of a ring byte for byte."""
    backend = BACKENDS[name]
    env = BackendEnv(tmp_path, {n: request.getfixturevalue(n) for n in backend.needs})
    placeholder = tmp_path / ("keys" if name == "fs" else "backend-placeholder")
    source = tmp_path / "src.yml"
    source.write_text(config_yaml(pki, "disabled", placeholder))
    target = tmp_path / "stateful.yml"
    target.write_text(stateful_config(pki, "disabled", new_store_dir(tmp_path)))
    opened = _route_placeholder(monkeypatch, name, placeholder, env)
    values = {f"enc-{i:02d}": encode_key_version(generate_key_version()) for i in range(20)}
    values["enc-legacy"] = b'{"bytes":"' + base64.b64encode(os.urandom(32)) + b'"}'

    async def scenario() -> None:
        if backend.reset is not None:
            await backend.reset(env)
        store = await backend.open(env)
        try:
            for key, value in values.items():
                await store.create(key, value)
        finally:
            await store.close()

        rc = await _migrate(str(source), str(target), "*", False, False, "tenant", True)
        assert rc == 0
        out = capsys.readouterr().out
        assert _summary(out) == f"Migrated {len(values):6d} keys successfully!"

        config = load_config(str(target)).store
        assert config is not None
        stateful = await open_store(config)
        try:
            assert sorted(await stateful.list_keys("tenant")) == sorted(values)
            for key, value in values.items():
                ring = await stateful.get_key("tenant", key)
                assert (list(ring.versions), ring.versions.encoded(1)) == ([1], value), key
                sealed = ring.version(1).encrypt(b"probe")  # the migrated key works
                assert decode_key_version(value).decrypt(sealed) == b"probe"
            assert await stateful.list_keys("default") == []
        finally:
            await stateful.close()

    asyncio.run(scenario())
    if name != "fs":
        assert opened == [name]  # the source was the real backend
