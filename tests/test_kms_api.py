"""The KMS API (issue 24) on a real stateful ``kes server`` over real mTLS: raw frames
built with the generated messages through httpx — every command of the enclave and key
families, batches, the cross-API equivalence with the KES API on the same enclaves,
every error's status and text, and bodies that are not a batch of one command.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from conftest import PKI, ClientIdentity, RunningServer
from pykes.kms.commands import Command
from pykes.kms.frames import MAX_BODY, MAX_FRAMES, encode, frame, split
from pykes.kms.identity import from_kes
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from test_stateful import new_store

BINARY = "application/octet-stream"
ACCESS_DENIED = (403, "access denied: insufficient permissions")
KEY_NOT_FOUND = (404, "key does not exist")
INVALID_CIPHERTEXT = (400, "invalid ciphertext")


@dataclass
class KMS:
    """One stateful server and an admin's and a stranger's connections to it."""

    server: RunningServer
    admin: httpx.Client
    stranger: httpx.Client
    admin_identity: str
    admin_http2: httpx.Client

    def send(
        self, enclave: str | None, command: int, messages: list, client: httpx.Client | None = None
    ) -> httpx.Response:
        path = "/v1/kms" if enclave is None else f"/v1/kms/{enclave}"
        return self.raw(path, encode(command, messages), client)

    def raw(self, path: str, body: bytes, client: httpx.Client | None = None) -> httpx.Response:
        headers = {"Content-Type": BINARY, "Accept": "application/*"}
        return (client or self.admin).post(path, content=body, headers=headers)

    def ok(
        self,
        enclave: str | None,
        command: int,
        messages: list,
        answer: type[Message] | None,
        client: httpx.Client | None = None,
    ) -> list:
        """The answers of a successful request, one per message (None: empty frames)."""
        response = self.send(enclave, command, messages, client)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == BINARY
        assert int(response.headers["content-length"]) == len(response.content)
        number, payloads = split(response.content) if response.content else (command, [])
        assert number == command
        if command in (Command.KEY_LIST, Command.KEY_LIST_VERSIONS, Command.ENCLAVE_LIST):
            assert len(payloads) == 1
        else:
            assert len(payloads) == len(messages)
        if answer is None:
            assert all(len(p) == 0 for p in payloads)
            return [None] * len(payloads)
        out = []
        for payload in payloads:
            message = answer()
            message.ParseFromString(payload)
            out.append(message)
        return out

    def error(self, enclave: str | None, command: int, messages: list, **kw) -> tuple[int, str]:
        return error_of(self.send(enclave, command, messages, **kw))


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, text) as the kms-go client reads them: an ErrResponse in JSON."""
    assert response.status_code != 200
    assert response.headers["content-type"] == "application/json"
    message = json_format.Parse(response.text, rs.ErrResponse())
    return response.status_code, message.Message


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KMS]:
    servers = new_store(tmp_path_factory.mktemp("kms") / "store", pki)
    server = servers.start()
    stranger = pki.client("kms-stranger")
    with (
        server.client(servers.admin) as admin,
        server.client(stranger) as other,
        server.client(servers.admin, http2=True) as admin_http2,
    ):
        yield KMS(server, admin, other, servers.admin.identity, admin_http2)
    server.stop()


def kes(kms: KMS, enclave: str, method: str, path: str, body: object = None) -> dict:
    """A KES API request in ``enclave`` (the Kes-Enclave header)."""
    r = kms.admin.request(method, path, json=body, headers={"Kes-Enclave": enclave})
    assert r.status_code == 200, (path, r.text)
    return r.json() if r.content.strip() else {}


# ------------------------------------------------------------------ cluster commands
MEMBERSHIP = (501, "cluster membership is not supported: pykes nodes share a store engine; "
              "add or remove nodes there (docs/kms-api.md)")  # fmt: skip
HSM = (501, "HSMs are not supported: the store's seal protects its keys (docs/kms-api.md)")


def test_cluster_status_over_http1_and_http2(kms: KMS) -> None:
    host = kms.server.url.removeprefix("https://")
    for client in (kms.admin, kms.admin_http2):
        [status] = kms.ok(None, Command.CLUSTER_STATUS, [rq.ClusterStatusRequest()],
                          rs.ClusterStatusResponse, client)  # fmt: skip
        assert list(status.NodesUp) == [0] and len(status.NodesDown) == 0
        node = status.NodesUp[0]
        assert (node.Host, dict(node.Nodes), node.Role) == (host, {0: host}, "Leader")
        assert node.Version == kms.admin.get("/version").json()["version"]


@pytest.mark.parametrize(
    ("command", "message", "error"),
    [
        (Command.CLUSTER_ADD_NODE, rq.AddClusterNodeRequest(Host="10.1.1.1:7373"), MEMBERSHIP),
        (Command.CLUSTER_REMOVE_NODE, rq.RemoveClusterNodeRequest(Host="10.1.1.1:7373"),
         MEMBERSHIP),
        (Command.CLUSTER_EDIT, rq.EditClusterRequest(), MEMBERSHIP),
        (Command.CLUSTER_ADD_HSM, rq.AddHSMRequest(), HSM),
        (Command.CLUSTER_REMOVE_HSM, rq.RemoveHSMRequest(), HSM),
    ],
)  # fmt: skip
def test_cluster_changes_are_not_supported_and_the_admins_alone(
    kms: KMS, command: Command, message: Message, error: tuple[int, str]
) -> None:
    assert kms.error(None, command, [message]) == error
    assert kms.error(None, command, [message], client=kms.stranger) == ACCESS_DENIED


def test_a_stranger_gets_no_cluster_status(kms: KMS) -> None:
    request = [rq.ClusterStatusRequest()]
    assert kms.error(None, Command.CLUSTER_STATUS, request, client=kms.stranger) == ACCESS_DENIED


# ------------------------------------------------------------------ enclave commands
def test_enclave_commands(kms: KMS) -> None:
    create = [rq.CreateEnclaveRequest(Name="kms-e1"), rq.CreateEnclaveRequest(Name="kms-e2")]
    assert kms.ok(None, Command.ENCLAVE_CREATE, create, None) == [None, None]
    assert kms.error(None, Command.ENCLAVE_CREATE, create[:1]) == (409, "enclave already exists")

    statuses = kms.ok(
        None,
        Command.ENCLAVE_STATUS,
        [rq.EnclaveStatusRequest(Name="kms-e2"), rq.EnclaveStatusRequest(Name="kms-e1")],
        rs.EnclaveStatusResponse,
    )
    assert [s.Name for s in statuses] == ["kms-e2", "kms-e1"]
    assert statuses[0].CreatedBy == from_kes(kms.admin_identity)
    assert statuses[0].CreatedBy.startswith("h1:") and statuses[0].CreatedAt.seconds > 0
    missing = [rq.EnclaveStatusRequest(Name="kms-nope")]
    assert kms.error(None, Command.ENCLAVE_STATUS, missing) == (404, "enclave does not exist")

    (page,) = kms.ok(None, Command.ENCLAVE_LIST, [rq.ListRequest(Prefix="kms-e")],
                     rs.ListEnclavesResponse)  # fmt: skip
    assert [e.Name for e in page.Enclaves] == ["kms-e1", "kms-e2"] and page.ContinueAt == ""
    (first,) = kms.ok(None, Command.ENCLAVE_LIST, [rq.ListRequest(Prefix="kms-e", Limit=1)],
                      rs.ListEnclavesResponse)  # fmt: skip
    assert [e.Name for e in first.Enclaves] == ["kms-e1"] and first.ContinueAt == "kms-e2"
    (rest,) = kms.ok(None, Command.ENCLAVE_LIST,
                     [rq.ListRequest(Prefix="kms-e", ContinueAt="kms-e2")],
                     rs.ListEnclavesResponse)  # fmt: skip
    assert [e.Name for e in rest.Enclaves] == ["kms-e2"]
    (none,) = kms.ok(None, Command.ENCLAVE_LIST, [rq.ListRequest(Prefix="no such/")],
                     rs.ListEnclavesResponse)  # fmt: skip
    assert list(none.Enclaves) == []
    (elsewhere,) = kms.ok(None, Command.ENCLAVE_LIST,
                          [rq.ListRequest(Prefix="kms-e", ContinueAt="a")],
                          rs.ListEnclavesResponse)  # fmt: skip
    assert list(elsewhere.Enclaves) == []  # a ContinueAt outside the prefix: nothing

    # The KES API sees the same enclaves.
    assert kms.admin.get("/v1/enclave/describe/kms-e1").json()["name"] == "kms-e1"
    kms.ok("kms-e2", Command.KEY_CREATE, [rq.CreateKeyRequest(Name="k")], None)
    delete = [rq.DeleteEnclaveRequest(Name="kms-e2")]
    assert kms.error(None, Command.ENCLAVE_DELETE, delete) == (400, "enclave is not empty")
    kms.ok("kms-e2", Command.KEY_DELETE, [rq.DeleteKeyRequest(Name="k", AllVersions=True)], None)
    kms.ok(None, Command.ENCLAVE_DELETE, delete, None)
    assert kms.error(None, Command.ENCLAVE_DELETE, delete) == (404, "enclave does not exist")
    default = [rq.DeleteEnclaveRequest(Name="default")]
    assert kms.error(None, Command.ENCLAVE_DELETE, default) == (
        400, "the default enclave cannot be deleted")  # fmt: skip
    bad = [rq.CreateEnclaveRequest(Name="a/b")]
    assert kms.error(None, Command.ENCLAVE_CREATE, bad) == (
        400, "enclave name 'a/b' is empty, too long or contains invalid characters")  # fmt: skip


# ------------------------------------------------------------------ key commands
@pytest.fixture(scope="module")
def enclave(kms: KMS) -> str:
    kms.ok(None, Command.ENCLAVE_CREATE, [rq.CreateEnclaveRequest(Name="kms-keys")], None)
    return "kms-keys"


def test_key_create_rotate_status_and_delete(kms: KMS, enclave: str) -> None:
    kms.ok(enclave, Command.KEY_CREATE, [rq.CreateKeyRequest(Name="ring")], None)
    again = [rq.CreateKeyRequest(Name="ring")]
    assert kms.error(enclave, Command.KEY_CREATE, again) == (409, "key already exists")
    rotate = [rq.CreateKeyRequest(Name="ring", AddVersion=True)]
    kms.ok(enclave, Command.KEY_CREATE, rotate * 2, None)  # versions 2 and 3

    status = [rq.KeyStatusRequest(Name="ring"), rq.KeyStatusRequest(Name="ring", Version=1)]
    latest, first = kms.ok(enclave, Command.KEY_STATUS, status, rs.KeyStatusResponse)
    assert (latest.Name, latest.Version, latest.Type) == ("ring", 3, "AES256")
    assert (first.Version, first.CreatedBy) == (1, from_kes(kms.admin_identity))
    assert first.CreatedAt.ToNanoseconds() <= latest.CreatedAt.ToNanoseconds()

    (versions,) = kms.ok(enclave, Command.KEY_LIST_VERSIONS, [rq.ListRequest(Prefix="ring")],
                         rs.ListKeysResponse)  # fmt: skip
    assert [k.Version for k in versions.Keys] == [1, 2, 3] and versions.ContinueAt == ""
    (page,) = kms.ok(enclave, Command.KEY_LIST_VERSIONS,
                     [rq.ListRequest(Prefix="ring", ContinueAt="2", Limit=1)],
                     rs.ListKeysResponse)  # fmt: skip
    assert [k.Version for k in page.Keys] == [2] and page.ContinueAt == "3"

    # One version, then the latest of several (numbers are never given again), then the
    # only one left, which takes the key with it.
    kms.ok(enclave, Command.KEY_DELETE, [rq.DeleteKeyRequest(Name="ring", Version=2)], None)
    gone = [rq.KeyStatusRequest(Name="ring", Version=2)]
    assert kms.error(enclave, Command.KEY_STATUS, gone) == KEY_NOT_FOUND
    kms.ok(enclave, Command.KEY_DELETE, [rq.DeleteKeyRequest(Name="ring")], None)  # 3, latest
    (latest,) = kms.ok(enclave, Command.KEY_STATUS, [rq.KeyStatusRequest(Name="ring")],
                       rs.KeyStatusResponse)  # fmt: skip
    assert latest.Version == 1
    kms.ok(enclave, Command.KEY_CREATE, [rq.CreateKeyRequest(Name="ring", AddVersion=True)], None)
    (rotated,) = kms.ok(enclave, Command.KEY_GENERATE, [rq.GenerateKeyRequest(Name="ring")],
                        rs.GenerateKeyResponse)  # fmt: skip
    assert rotated.Version == 4
    kms.ok(enclave, Command.KEY_DELETE, [rq.DeleteKeyRequest(Name="ring", Version=4)], None)
    kms.ok(enclave, Command.KEY_DELETE, [rq.DeleteKeyRequest(Name="ring")], None)  # the last
    assert kms.error(enclave, Command.KEY_STATUS, status[:1]) == KEY_NOT_FOUND
    both = [rq.DeleteKeyRequest(Name="ring", Version=1, AllVersions=True)]
    assert kms.error(enclave, Command.KEY_DELETE, both)[0] == 400
    assert kms.error(enclave, Command.KEY_DELETE, [rq.DeleteKeyRequest(Name="ring",
                     AllVersions=True)]) == KEY_NOT_FOUND  # fmt: skip
    rotate_missing = [rq.CreateKeyRequest(Name="ring", AddVersion=True)]
    assert kms.error(enclave, Command.KEY_CREATE, rotate_missing) == KEY_NOT_FOUND


def test_import_encrypt_decrypt_generate_and_mac(kms: KMS, enclave: str) -> None:
    material = bytes(range(32))
    kms.ok(enclave, Command.KEY_IMPORT, [rq.ImportKeyRequest(Name="imp", Key=material)], None)
    short = [rq.ImportKeyRequest(Name="imp2", Key=b"x" * 31)]
    assert kms.error(enclave, Command.KEY_IMPORT, short) == (
        400, "invalid key length: a key has 32 bytes")  # fmt: skip
    chacha = [rq.ImportKeyRequest(Name="imp3", Key=material, Type="ChaCha20")]
    kms.ok(enclave, Command.KEY_IMPORT, chacha, None)
    (status,) = kms.ok(enclave, Command.KEY_STATUS, [rq.KeyStatusRequest(Name="imp3")],
                       rs.KeyStatusResponse)  # fmt: skip
    assert (status.Type, status.Version) == ("ChaCha20", 1)
    wrong_type = [rq.CreateKeyRequest(Name="t", Type="DES")]
    assert kms.error(enclave, Command.KEY_CREATE, wrong_type) == (
        400, "key type 'DES' is not supported")  # fmt: skip

    plaintexts = [b"one", b"", b"three" * 100]
    encrypted = kms.ok(enclave, Command.KEY_ENCRYPT,
                       [rq.EncryptRequest(Name="imp", Plaintext=p, AssociatedData=b"ad")
                        for p in plaintexts], rs.EncryptResponse)  # fmt: skip
    assert [e.Version for e in encrypted] == [1, 1, 1]
    decrypted = kms.ok(enclave, Command.KEY_DECRYPT,
                       [rq.DecryptRequest(Name="imp", Version=1, Ciphertext=e.Ciphertext,
                                          AssociatedData=b"ad") for e in encrypted],
                       rs.DecryptResponse)  # fmt: skip
    assert [d.Plaintext for d in decrypted] == plaintexts

    ct = encrypted[0].Ciphertext
    wrong_ad = [rq.DecryptRequest(Name="imp", Version=1, Ciphertext=ct, AssociatedData=b"no")]
    assert kms.error(enclave, Command.KEY_DECRYPT, wrong_ad) == INVALID_CIPHERTEXT
    garbage = [rq.DecryptRequest(Name="imp", Version=1, Ciphertext=b"garbage")]
    assert kms.error(enclave, Command.KEY_DECRYPT, garbage) == INVALID_CIPHERTEXT
    zero = [rq.DecryptRequest(Name="imp", Ciphertext=ct, AssociatedData=b"ad")]
    version_zero = (400, "key version must be 1 or greater")
    assert kms.error(enclave, Command.KEY_DECRYPT, zero) == version_zero
    later = [rq.DecryptRequest(Name="imp", Version=7, Ciphertext=ct, AssociatedData=b"ad")]
    assert kms.error(enclave, Command.KEY_DECRYPT, later) == KEY_NOT_FOUND

    sizes = [0, 16, 1024]
    keys = kms.ok(enclave, Command.KEY_GENERATE,
                  [rq.GenerateKeyRequest(Name="imp", Length=n, AssociatedData=b"obj")
                   for n in sizes], rs.GenerateKeyResponse)  # fmt: skip
    assert [len(k.Plaintext) for k in keys] == [32, 16, 1024]
    assert len({k.Plaintext for k in keys}) == 3
    (back,) = kms.ok(enclave, Command.KEY_DECRYPT,
                     [rq.DecryptRequest(Name="imp", Version=keys[2].Version,
                                        Ciphertext=keys[2].Ciphertext, AssociatedData=b"obj")],
                     rs.DecryptResponse)  # fmt: skip
    assert back.Plaintext == keys[2].Plaintext
    too_long = [rq.GenerateKeyRequest(Name="imp", Length=1025)]
    assert kms.error(enclave, Command.KEY_GENERATE, too_long) == (
        400, "data key length 1025 is too large: at most 1024")  # fmt: skip

    macs = kms.ok(enclave, Command.KEY_MAC,
                  [rq.MACRequest(Name="imp", Message=b"m"), rq.MACRequest(Name="imp", Message=b"m"),
                   rq.MACRequest(Name="imp", Message=b"n", Version=1)], rs.MACResponse)  # fmt: skip
    assert macs[0].MAC == macs[1].MAC != macs[2].MAC and len(macs[0].MAC) == 32
    assert [m.Version for m in macs] == [1, 1, 1]
    # The KES API's HMAC of the same key is the same MAC.
    kes_mac = kes(kms, enclave, "PUT", "/v1/key/hmac/imp",
                  {"message": base64.b64encode(b"m").decode()})  # fmt: skip
    assert base64.b64decode(kes_mac["hmac"]) == macs[0].MAC


def test_list_keys_in_pages(kms: KMS, enclave: str) -> None:
    names = [f"page-{i:02d}" for i in range(5)]
    kms.ok(enclave, Command.KEY_CREATE, [rq.CreateKeyRequest(Name=n) for n in names], None)
    (page,) = kms.ok(enclave, Command.KEY_LIST, [rq.ListRequest(Prefix="page-")],
                     rs.ListKeysResponse)  # fmt: skip
    assert [k.Name for k in page.Keys] == names and page.ContinueAt == ""
    assert {(k.Version, k.Type) for k in page.Keys} == {(1, "AES256")}
    (first,) = kms.ok(enclave, Command.KEY_LIST, [rq.ListRequest(Prefix="page-", Limit=2)],
                      rs.ListKeysResponse)  # fmt: skip
    assert [k.Name for k in first.Keys] == names[:2] and first.ContinueAt == names[2]
    (rest,) = kms.ok(enclave, Command.KEY_LIST,
                     [rq.ListRequest(Prefix="page-", ContinueAt=first.ContinueAt)],
                     rs.ListKeysResponse)  # fmt: skip
    assert [k.Name for k in rest.Keys] == names[2:]
    two = [rq.ListRequest(), rq.ListRequest()]
    assert kms.error(enclave, Command.KEY_LIST, two) == (
        400, "invalid request: KEY:LIST takes one command per request")  # fmt: skip


# ------------------------------------------------------------------ batches
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_a_batch_is_answered_in_order_and_one_error_fails_it(
    kms: KMS, enclave: str, http2: bool
) -> None:
    client = kms.admin_http2 if http2 else kms.admin
    name = f"batch-{int(http2)}"
    version = kms.send(None, Command.ENCLAVE_LIST, [rq.ListRequest()], client).http_version
    assert version == ("HTTP/2" if http2 else "HTTP/1.1")
    kms.ok(enclave, Command.KEY_CREATE, [rq.CreateKeyRequest(Name=name)], None, client)
    requests = [rq.GenerateKeyRequest(Name=name, AssociatedData=b"%d" % i) for i in range(64)]
    keys = kms.ok(enclave, Command.KEY_GENERATE, requests, rs.GenerateKeyResponse, client)
    assert len({k.Plaintext for k in keys}) == 64
    decrypted = kms.ok(enclave, Command.KEY_DECRYPT,
                       [rq.DecryptRequest(Name=name, Version=1, Ciphertext=k.Ciphertext,
                                          AssociatedData=b"%d" % i) for i, k in enumerate(keys)],
                       rs.DecryptResponse, client)  # fmt: skip
    assert [d.Plaintext for d in decrypted] == [k.Plaintext for k in keys]  # in order
    with_missing = [*requests[:3], rq.GenerateKeyRequest(Name="no-such-key"), *requests[:3]]
    assert kms.error(enclave, Command.KEY_GENERATE, with_missing, client=client) == KEY_NOT_FOUND
    at_limit = [rq.MACRequest(Name=name, Message=b"x")] * MAX_FRAMES
    assert len(kms.ok(enclave, Command.KEY_MAC, at_limit, rs.MACResponse, client)) == MAX_FRAMES


# ------------------------------------------------------------------ both APIs, one store
def test_the_kes_api_and_the_kms_api_share_keys_and_ciphertexts(kms: KMS, enclave: str) -> None:
    context = b'{"bucket":"issue-24"}'
    b64 = base64.b64encode(context).decode()
    # KES create → KMS generate → KES decrypt.
    kes(kms, enclave, "PUT", "/v1/key/create/shared")
    (dek,) = kms.ok(enclave, Command.KEY_GENERATE,
                    [rq.GenerateKeyRequest(Name="shared", AssociatedData=context)],
                    rs.GenerateKeyResponse)  # fmt: skip
    plain = kes(kms, enclave, "PUT", "/v1/key/decrypt/shared",
                {"ciphertext": base64.b64encode(dek.Ciphertext).decode(), "context": b64,
                 "version": str(dek.Version)})  # fmt: skip
    assert base64.b64decode(plain["plaintext"]) == dek.Plaintext

    # A KES rotation is the KMS API's latest version, and the other way round.
    assert kes(kms, enclave, "PUT", "/v1/key/rotate/shared") == {"version": "2"}
    (status,) = kms.ok(enclave, Command.KEY_STATUS, [rq.KeyStatusRequest(Name="shared")],
                       rs.KeyStatusResponse)  # fmt: skip
    assert status.Version == 2
    kms.ok(enclave, Command.KEY_CREATE, [rq.CreateKeyRequest(Name="shared", AddVersion=True)],
           None)  # fmt: skip
    described = kes(kms, enclave, "GET", "/v1/key/describe/shared")
    assert (described["version"], described["versions"]) == ("3", ["1", "2", "3"])

    # KES generate (latest: 3) → KMS decrypt with the version KES named.
    generated = kes(kms, enclave, "PUT", "/v1/key/generate/shared", {"context": b64})
    assert generated["version"] == "3"
    (back,) = kms.ok(enclave, Command.KEY_DECRYPT,
                     [rq.DecryptRequest(Name="shared", Version=int(generated["version"]),
                                        Ciphertext=base64.b64decode(generated["ciphertext"]),
                                        AssociatedData=context)],
                     rs.DecryptResponse)  # fmt: skip
    assert back.Plaintext == base64.b64decode(generated["plaintext"])
    # The version-1 data key still decrypts through both, after two rotations.
    (old,) = kms.ok(enclave, Command.KEY_DECRYPT,
                    [rq.DecryptRequest(Name="shared", Version=1, Ciphertext=dek.Ciphertext,
                                       AssociatedData=context)], rs.DecryptResponse)  # fmt: skip
    assert old.Plaintext == dek.Plaintext
    wrong_version = [rq.DecryptRequest(Name="shared", Version=2, Ciphertext=dek.Ciphertext,
                                       AssociatedData=context)]  # fmt: skip
    assert kms.error(enclave, Command.KEY_DECRYPT, wrong_version) == INVALID_CIPHERTEXT

    # Same name, other enclave: another key. /v1/kms (no enclave) is `default`.
    assert kms.error("default", Command.KEY_STATUS, [rq.KeyStatusRequest(Name="shared")]) == (
        KEY_NOT_FOUND)  # fmt: skip
    kms.ok(None, Command.KEY_CREATE, [rq.CreateKeyRequest(Name="in-default")], None)
    assert kms.admin.get("/v1/key/describe/in-default").status_code == 200


# ------------------------------------------------------------------ who, where, errors
def test_only_the_admin_may_and_enclave_errors(kms: KMS, enclave: str) -> None:
    status = [rq.KeyStatusRequest(Name="x")]
    assert kms.error(enclave, Command.KEY_STATUS, status, client=kms.stranger) == ACCESS_DENIED
    assert kms.error("kms-none", Command.KEY_STATUS, status, client=kms.stranger) == ACCESS_DENIED
    enclaves = [rq.CreateEnclaveRequest(Name="kms-by-stranger")]
    assert kms.error(None, Command.ENCLAVE_CREATE, enclaves, client=kms.stranger) == ACCESS_DENIED
    assert kms.error("kms-none", Command.KEY_STATUS, status) == (404, "enclave does not exist")
    invalid = "enclave name 'bad*name' is empty, too long or contains invalid characters"
    assert kms.error("bad*name", Command.KEY_STATUS, status) == (400, invalid)
    assert kms.error(enclave, Command.KEY_STATUS, [rq.KeyStatusRequest(Name="")]) == (
        400, "key name '' is empty, too long or contains invalid characters")  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"", 400, "invalid request: empty body"),
        (b"\x00\xcf\x00", 400, "invalid request: truncated frame"),
        (frame(207, b"\x0a\x05ab")[:-1], 400, "invalid request: truncated frame"),
        (frame(207, b"\x0a\x05ab"), 400, "invalid request: malformed KEY:GENERATE message"),
        (frame(99, b""), 400, "invalid request: unknown command 99"),
        (frame(207, b"") + frame(205, b""), 400,
         "invalid request: command KEY:ENCRYPT after KEY:GENERATE: a request holds one command"),
        (frame(207, b"\x0a\x02\xc3\x28"), 400, "invalid request: malformed KEY:GENERATE message"),
        (frame(207, b"") * (MAX_FRAMES + 1), 400,
         f"invalid request: more than {MAX_FRAMES} commands"),
        (frame(205, bytes(MAX_BODY)), 413, "request body too large"),
        (frame(301, b""), 400, "policy name '' is empty, too long or contains invalid characters"),
    ],
)  # fmt: skip
def test_bodies_that_are_not_a_batch_of_one_command(
    kms: KMS, enclave: str, body: bytes, status: int, text: str
) -> None:
    assert error_of(kms.raw(f"/v1/kms/{enclave}", body)) == (status, text)


def test_the_kms_routes_methods_and_the_kes_api_beside_them(kms: KMS) -> None:
    r = kms.admin.get("/v1/kms/default")
    assert r.status_code == 405
    r = kms.admin.get("/version")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    version = json_format.Parse(r.text, rs.VersionResponse())  # the kms-go client's reading
    assert version.Version and version.Version == r.json()["version"]  # … and the KES one's
    host = kms.server.url.removeprefix("https://")  # as the client wrote it, h1 and h2
    assert version.Host == host == kms.admin_http2.get("/version").json()["host"]
    assert kms.admin.get("/v1/health/live").status_code == 200
    assert kms.stranger.get("/v1/health/ready").status_code == 200
    assert kms.admin.get("/v1/health/ready?write").status_code == 200


def test_kms_requests_are_audited_and_counted(kms: KMS, enclave: str) -> None:
    """Each KMS request is counted and has an audit line naming the enclave of its path
    (whether the worker held the enclave's context or not); ``/v1/kms`` names none."""

    def counted() -> float:
        text = kms.admin.get("/v1/metrics").text
        counters = ("kes_http_request_success", "kes_http_request_error")
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(counters))  # fmt: skip

    kms.ok(None, Command.ENCLAVE_CREATE, [rq.CreateEnclaveRequest(Name="kms-audited")], None)
    before = counted()
    kms.error(enclave, Command.KEY_STATUS, [rq.KeyStatusRequest(Name="audited-missing")])
    kms.ok(enclave, Command.KEY_LIST, [rq.ListRequest(Prefix="audited")], rs.ListKeysResponse)
    for _ in range(2):  # a new enclave: its context read, then held
        kms.ok("kms-audited", Command.KEY_LIST, [rq.ListRequest()], rs.ListKeysResponse)
    assert counted() - before == 4
    deadline = time.monotonic() + 10
    while True:  # (the audit lines reach stdout right after the answers)
        lines = [json.loads(line)["request"] for line in kms.server.stdout.read_text().splitlines()
                 if line.startswith('{"time"') and '"/v1/kms' in line]  # fmt: skip
        named = [(r.get("enclave"), r["path"]) for r in lines]
        if named[-1:] == [("kms-audited", "/v1/kms/kms-audited")] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (
        named[-4:]
        == [(enclave, f"/v1/kms/{enclave}")] * 2 + [("kms-audited", "/v1/kms/kms-audited")] * 2
    )
    assert (None, "/v1/kms") in named


def test_a_stateless_server_has_no_kms_api(server_factory, pki: PKI) -> None:
    admin: ClientIdentity = pki.client("admin")
    server = server_factory()
    with server.client(admin) as c:
        r = c.post("/v1/kms/default", content=frame(208, b""))
        assert (r.status_code, r.text) == (404, "404 page not found\n")
