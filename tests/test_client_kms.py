"""The SDK's KMS API client (pykes.client.kms), blocking and asyncio, against a real
stateful ``kes server`` over real mTLS: every method, batches of 1 and 64, the typed
errors, two enclaves apart, and the KES SDK on the same keys (cross-API)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import PKI, ClientIdentity, RunningServer, free_port
from pykes.client import APIError, Client, ConnError, NotAllowed
from pykes.client import DecryptError as KESDecryptError
from pykes.client import KeyExists as KESKeyExists
from pykes.client.errors import ResponseError
from pykes.client.kms import (
    AsyncKMSClient,
    Command,
    DecryptError,
    EnclaveExists,
    EnclaveNotFound,
    IdentityNotFound,
    KeyExists,
    KeyNotFound,
    KMSClient,
    PermissionDenied,
    PolicyNotFound,
    ops,
    responses,
)
from pykes.client.kms import requests as rq
from pykes.client.kms.errors import error_from_response
from pykes.client.ops import Reply, finish
from pykes.kms.frames import encode
from pykes.kms.identity import from_kes
from pykes.pki import APIKey
from stateful_store import new_store_dir
from test_auth_apikey import K2_VECTORS
from test_stateful import StatefulServers

ADMIN_KEY = APIKey.generate()
ADMIN_H1 = from_kes(ADMIN_KEY.identity)


class Blocking:
    """An :class:`AsyncKMSClient` driven on its own event loop behind the blocking
    client's methods, so one test body checks both clients."""

    def __init__(self, client: AsyncKMSClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        if not callable(method):
            return method
        return lambda *args, **kw: self._loop.run_until_complete(method(*args, **kw))

    def in_enclave(self, name: str) -> Blocking:
        return Blocking(self._client.in_enclave(name), self._loop)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = new_store_dir(tmp_path_factory.mktemp("kms-client") / "store")
    admin = ClientIdentity(Path(), Path(), ADMIN_KEY.identity)  # the API key's identity
    servers = StatefulServers(root, pki, admin)
    running = servers.start()
    yield running
    running.stop()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def connect(server: RunningServer, pki: PKI, mode: str) -> Iterator[Callable[..., Any]]:
    """``connect(**kw)``: a KMS client of ``mode`` to the server (the admin's API key)."""
    loop = asyncio.new_event_loop()
    opened: list[Any] = []

    def make(endpoints: object = None, **kw: object) -> Any:
        kw.setdefault("ca_file", str(pki.server_cert))
        if "cert_file" not in kw:
            kw.setdefault("api_key", ADMIN_KEY.kms_text())
        endpoints = endpoints or server.url
        if mode == "sync":
            client = KMSClient(endpoints, **kw)  # type: ignore[arg-type]
            opened.append(client.close)
            return client
        aclient = loop.run_until_complete(_make_async(endpoints, kw))
        opened.append(lambda: loop.run_until_complete(aclient.aclose()))
        return Blocking(aclient, loop)

    yield make
    for close in opened:
        close()
    loop.close()


async def _make_async(endpoints: object, kw: dict[str, object]) -> AsyncKMSClient:
    return AsyncKMSClient(endpoints, **kw)  # type: ignore[arg-type]


def test_server_probes(connect: Callable[..., Any], server: RunningServer) -> None:
    kms = connect()
    version = kms.version()  # the KES API's JSON answer, read as a VersionResponse
    # Host: the address the client reached, which MinIO's KMS status is keyed by
    assert version.Version and version.Host == server.url.removeprefix("https://")
    assert kms.live() is True
    assert kms.ready() is True and kms.ready(write=True) is True


def test_the_cluster_is_the_node_asked(connect: Callable[..., Any], server: RunningServer) -> None:
    """pykes nodes share a store engine and know no peers: the status names the node
    asked, up and leading its own view; membership changes are refused, saying why."""
    kms = connect()
    status = kms.cluster_status()
    assert list(status.NodesUp) == [0] and not status.NodesDown
    node = status.NodesUp[0]
    host = server.url.removeprefix("https://")
    assert (node.Host, dict(node.Nodes), node.ID, node.LeaderID) == (host, {0: host}, 0, 0)
    assert (node.Role, node.APIVersion, node.Version) == ("Leader", "v1", kms.version().Version)
    assert node.UpTime.ToNanoseconds() > 0 and node.CPUs >= node.UsableCPUs >= 1
    with pytest.raises(APIError) as refused:
        kms.batch(Command.CLUSTER_ADD_NODE, [rq.AddClusterNodeRequest(Host="10.0.0.2:7373")])
    assert refused.value.status == 501
    assert str(refused.value).startswith("cluster membership is not supported")


def test_enclaves(connect: Callable[..., Any], mode: str) -> None:
    kms = connect()
    names = [f"c-{mode}-e1", f"c-{mode}-e2"]
    for name in names:
        kms.create_enclave(name)
    with pytest.raises(EnclaveExists) as exists:
        kms.create_enclave(names[0])
    assert (exists.value.status, str(exists.value)) == (409, "enclave already exists")
    status = kms.enclave_status(names[1])
    assert status.Name == names[1] and status.CreatedBy == ADMIN_H1
    assert status.CreatedAt.seconds > 0
    first = kms.list_enclaves(f"c-{mode}-", limit=1)
    assert [e.Name for e in first.Enclaves] == names[:1] and first.ContinueAt == names[1]
    rest = kms.list_enclaves(f"c-{mode}-", continue_at=first.ContinueAt)
    assert [e.Name for e in rest.Enclaves] == names[1:] and rest.ContinueAt == ""
    kms.delete_enclave(names[1])
    with pytest.raises(EnclaveNotFound):
        kms.enclave_status(names[1])


def test_keys_and_versions(connect: Callable[..., Any], mode: str) -> None:
    enclave = f"c-{mode}-keys"
    connect().create_enclave(enclave)
    kms = connect(enclave=enclave)
    kms.create_key("k", "ChaCha20")
    with pytest.raises(KeyExists) as exists:
        kms.create_key("k")
    assert isinstance(exists.value, KESKeyExists) and exists.value.status == 409
    v1 = kms.key_status("k")
    assert (v1.Name, v1.Version, v1.Type, v1.CreatedBy) == ("k", 1, "ChaCha20", ADMIN_H1)

    dek = kms.generate_key("k", associated_data=b"bucket/object", length=48)
    assert dek.Version == 1 and len(dek.Plaintext) == 48
    kms.add_key_version("k")
    assert kms.key_status("k").Version == 2 and kms.key_status("k", 1).Version == 1
    old = kms.decrypt("k", dek.Ciphertext, 1, associated_data=b"bucket/object")
    assert old.Plaintext == dek.Plaintext
    with pytest.raises(DecryptError) as wrong:
        kms.decrypt("k", dek.Ciphertext, 2, associated_data=b"bucket/object")
    assert isinstance(wrong.value, KESDecryptError)
    assert (wrong.value.status, wrong.value.message) == (400, "invalid ciphertext")
    with pytest.raises(APIError) as zero:
        kms.decrypt("k", dek.Ciphertext, 0)
    assert (zero.value.status, zero.value.message) == (400, "key version must be 1 or greater")

    sealed = kms.encrypt("k", b"secret")
    assert sealed.Version == 2
    assert kms.decrypt("k", sealed.Ciphertext, sealed.Version).Plaintext == b"secret"
    mac = kms.mac("k", b"message")
    assert mac.Version == 2 and len(mac.MAC) == 32 and kms.mac("k", b"message", 2) == mac
    assert kms.mac("k", b"message", 1).MAC != mac.MAC

    kms.import_key("imported", bytes(range(32)), "AES256")
    assert kms.key_status("imported").Version == 1
    with pytest.raises(KeyExists):
        kms.import_key("imported", bytes(32))
    assert [k.Name for k in kms.list_keys().Keys] == ["imported", "k"]
    assert [k.Version for k in kms.list_key_versions("k").Keys] == [1, 2]

    kms.delete_key("k", version=1)
    assert [k.Version for k in kms.list_key_versions("k").Keys] == [2]
    with pytest.raises(KeyNotFound):
        kms.decrypt("k", dek.Ciphertext, 1, associated_data=b"bucket/object")
    kms.delete_key("k", all_versions=True)
    with pytest.raises(KeyNotFound) as gone:
        kms.key_status("k")
    assert (gone.value.status, str(gone.value)) == (404, "key does not exist")
    with pytest.raises(KeyNotFound):
        kms.add_key_version("k")


def test_policies_and_identities(connect: Callable[..., Any], mode: str, pki: PKI) -> None:
    enclave = f"c-{mode}-iam"
    connect().create_enclave(enclave)
    kms = connect(enclave=enclave)
    kms.create_key("minio-x")
    kms.create_key("other-y")
    user = pki.client(f"kms-client-user-{mode}")
    as_user = connect(enclave=enclave, cert_file=str(user.cert_file), key_file=str(user.key_file))
    with pytest.raises(PermissionDenied) as denied:
        as_user.generate_key("minio-x")
    assert isinstance(denied.value, NotAllowed) and denied.value.status == 403

    kms.create_policy("minio", allow={"KEY:GENERATE": ["minio-*"]}, deny={"KEY:MAC": ["*"]})
    policy = kms.get_policy("minio")
    assert list(policy.Allow["KEY:GENERATE"].Rules) == ["minio-*"]
    assert list(policy.Deny["KEY:MAC"].Rules) == ["*"] and policy.CreatedBy == ADMIN_H1
    assert kms.policy_status("minio").Name == "minio"
    assert [p.Name for p in kms.list_policies().Policies] == ["minio"]

    kms.create_identity(user.identity, "User")  # the KES (hex) spelling is converted
    kms.assign_policy(from_kes(user.identity), "minio")
    status = kms.identity_status(user.identity)
    assert (status.Identity, status.Privilege, status.Policy) == (
        from_kes(user.identity),
        3,
        "minio",
    )
    assert [i.Identity for i in kms.list_identities().Identities] == [from_kes(user.identity)]
    assert as_user.generate_key("minio-x").Version == 1
    with pytest.raises(PermissionDenied):
        as_user.generate_key("other-y")
    with pytest.raises(PermissionDenied):
        as_user.create_policy("mine", allow={"KEY:GENERATE": ["*"]})

    kms.delete_policy("minio")
    with pytest.raises(PolicyNotFound):
        kms.get_policy("minio")
    with pytest.raises(PolicyNotFound):
        kms.assign_policy(user.identity, "minio")
    with pytest.raises(PermissionDenied):
        as_user.generate_key("minio-x")
    kms.delete_identity(user.identity)
    with pytest.raises(IdentityNotFound):
        kms.identity_status(user.identity)
    with pytest.raises(IdentityNotFound):
        kms.delete_identity(user.identity)


@pytest.mark.parametrize(("k2", "h1"), K2_VECTORS[:3])  # P-256, P-384, P-521
def test_an_ecdsa_k2_api_key(connect: Callable[..., Any], mode: str, k2: str, h1: str) -> None:
    """aead.dev/mtls's ECDSA API keys (Go's vectors): the client presents a certificate
    of the key, which the server knows by the identity Go computed for it."""
    enclave = f"c-{mode}-{h1[3:11].lower().replace('_', 'x').replace('-', 'y')}"
    connect().create_enclave(enclave)
    as_k2 = connect(enclave=enclave, api_key=k2)
    with pytest.raises(PermissionDenied):
        as_k2.create_key("ecdsa-key")
    connect(enclave=enclave).create_identity(h1, "Admin")
    as_k2.create_key("ecdsa-key")
    assert as_k2.key_status("ecdsa-key").CreatedBy == h1


@pytest.mark.parametrize("size", [1, 64])
def test_batches(connect: Callable[..., Any], mode: str, size: int) -> None:
    enclave = f"c-{mode}-batch{size}"
    connect().create_enclave(enclave)
    kms = connect(enclave=enclave)
    names = [f"key-{i}" for i in range(size)]
    assert (
        kms.batch(Command.KEY_CREATE, [rq.CreateKeyRequest(Name=n) for n in names]) == [None] * size
    )
    contexts = [f"object-{i}".encode() for i in range(size)]
    deks = kms.batch(
        Command.KEY_GENERATE,
        [
            rq.GenerateKeyRequest(Name=n, AssociatedData=c)
            for n, c in zip(names, contexts, strict=True)
        ],
    )
    assert len(deks) == size and len({d.Plaintext for d in deks}) == size
    assert all(d.Version == 1 for d in deks)
    plains = kms.batch(
        Command.KEY_DECRYPT,
        [
            rq.DecryptRequest(Name=n, Version=d.Version, Ciphertext=d.Ciphertext, AssociatedData=c)
            for n, d, c in zip(names, deks, contexts, strict=True)
        ],
    )
    assert [p.Plaintext for p in plains] == [d.Plaintext for d in deks]  # in order
    statuses = kms.batch(Command.KEY_STATUS, [rq.KeyStatusRequest(Name=n) for n in names])
    assert [s.Name for s in statuses] == names


def test_a_failing_command_fails_the_batch(connect: Callable[..., Any], mode: str) -> None:
    enclave = f"c-{mode}-batchfail"
    connect().create_enclave(enclave)
    kms = connect(enclave=enclave)
    kms.create_key("taken")
    creates = [rq.CreateKeyRequest(Name=n) for n in ("a", "b", "taken", "c")]
    with pytest.raises(KeyExists) as failed:
        kms.batch(Command.KEY_CREATE, creates)
    assert failed.value.batch_size == 4
    assert any("the whole batch of 4 KEY:CREATE commands" in n for n in failed.value.__notes__)
    # the commands before the failing one are done, the ones after it are not
    assert [k.Name for k in kms.list_keys().Keys] == ["a", "b", "taken"]

    generates = [rq.GenerateKeyRequest(Name=n) for n in ["a"] * 63 + ["missing"]]
    with pytest.raises(KeyNotFound) as missing:
        kms.batch(Command.KEY_GENERATE, generates)
    assert missing.value.batch_size == 64
    with pytest.raises(KeyNotFound) as single:
        kms.generate_key("missing")
    assert single.value.batch_size == 1 and not getattr(single.value, "__notes__", [])


def test_batches_the_client_refuses(connect: Callable[..., Any]) -> None:
    kms = connect()
    with pytest.raises(ValueError, match="1 to 256 KEY:GENERATE commands, not 0"):
        kms.batch(Command.KEY_GENERATE, [])
    with pytest.raises(ValueError, match="not 257"):
        kms.batch(Command.KEY_GENERATE, [rq.GenerateKeyRequest(Name="k")] * 257)
    with pytest.raises(ValueError, match="1 to 1 KEY:LIST commands"):
        kms.batch(Command.KEY_LIST, [rq.ListRequest(), rq.ListRequest()])
    with pytest.raises(TypeError, match="KEY:DECRYPT takes DecryptRequest, not EncryptRequest"):
        kms.batch(Command.KEY_DECRYPT, [rq.EncryptRequest(Name="k")])


def test_two_enclaves_are_apart(connect: Callable[..., Any], mode: str) -> None:
    admin = connect()
    for name in (f"c-{mode}-left", f"c-{mode}-right"):
        admin.create_enclave(name)
    left = connect(enclave=f"c-{mode}-left")
    right = left.in_enclave(f"c-{mode}-right")
    left.create_key("shared-name")
    with pytest.raises(KeyNotFound):
        right.key_status("shared-name")
    right.create_key("shared-name")
    dek = left.generate_key("shared-name")
    with pytest.raises(DecryptError):
        right.decrypt("shared-name", dek.Ciphertext, dek.Version)
    assert left.decrypt("shared-name", dek.Ciphertext, dek.Version).Plaintext == dek.Plaintext
    assert [k.Name for k in right.list_keys().Keys] == ["shared-name"]
    with pytest.raises(EnclaveNotFound):
        left.in_enclave(f"c-{mode}-nowhere").generate_key("shared-name")


def test_the_kes_sdk_and_the_kms_client_share_keys(
    connect: Callable[..., Any], mode: str, server: RunningServer, pki: PKI
) -> None:
    enclave = f"c-{mode}-cross"
    connect().create_enclave(enclave)
    kms = connect(enclave=enclave)
    with Client(
        server.url, api_key=str(ADMIN_KEY), ca_file=str(pki.server_cert), enclave=enclave
    ) as kes:
        kes.create_key("both")
        kes_dek = kes.generate_key("both", b"ctx")
        assert kms.decrypt("both", kes_dek.ciphertext, int(kes_dek.version), b"ctx").Plaintext == (
            kes_dek.plaintext
        )
        assert kes.rotate_key("both") == "2"
        assert kms.key_status("both").Version == 2
        kms_dek = kms.generate_key("both", associated_data=b"ctx")
        assert kms_dek.Version == 2
        assert kes.decrypt("both", kms_dek.Ciphertext, b"ctx") == kms_dek.Plaintext
        assert kes.decrypt("both", kes_dek.ciphertext, b"ctx") == kes_dek.plaintext
        kms.add_key_version("both")
        assert kes.generate_key("both").version == "3"
        assert kes.hmac("both", b"m") == kms.mac("both", b"m").MAC


def test_failover_and_a_kes_api_key(
    connect: Callable[..., Any], mode: str, server: RunningServer
) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    kms = connect([dead, server.url], api_key=str(ADMIN_KEY))  # kes:v1: spelling, same key
    kms.create_enclave(f"c-{mode}-failover")
    assert kms.enclave_status(f"c-{mode}-failover").CreatedBy == ADMIN_H1
    only_dead = connect(dead)
    with pytest.raises(ConnError):
        only_dead.live()


def test_error_bodies_as_kms_go_reads_them() -> None:
    """Protobuf, JSON and text bodies give the same typed errors (kms-go's readError)."""
    proto = responses.ErrResponse(Message="key does not exist").SerializeToString()
    assert type(error_from_response(404, "application/octet-stream", proto)) is KeyNotFound
    json_body = b'{"message":"key already exists"}'
    assert type(error_from_response(409, "application/json", json_body)) is KeyExists
    assert type(error_from_response(400, "text/plain", b"invalid ciphertext")) is DecryptError
    # the KES API's texts are not the KMS API's errors
    other = error_from_response(400, "application/json", b'{"message":"key already exists"}')
    assert type(other) is APIError and other.status == 400


def test_answers_that_do_not_match_the_request_are_refused() -> None:
    op = ops.batch("e", Command.KEY_GENERATE, [rq.GenerateKeyRequest(Name="k")] * 2)
    one_frame = encode(Command.KEY_GENERATE, [responses.GenerateKeyResponse(Version=1)])
    with pytest.raises(ResponseError, match="1 frames of command 207 for 2 KEY:GENERATE"):
        finish(op, Reply(200, "application/octet-stream", one_frame))
    with pytest.raises(ResponseError, match="truncated frame"):
        finish(op, Reply(200, "application/octet-stream", one_frame[:-1] + b"\x00\x00"))
    assert (op.method, op.path) == ("POST", "/v1/kms/e")
    assert ops.batch("e", Command.ENCLAVE_STATUS, [rq.EnclaveStatusRequest()]).path == "/v1/kms"
