"""MinIO end to end (docs/compat/minio.md): a client that behaves exactly like the MinIO
server's KES integration — its environment variables, its start-up sequence, its
per-object calls with its context bytes, `mc admin kms key status`, root-credential
HMAC — against two pykes nodes sharing one keystore, including failover when a node
dies. The seeds' MinIO policy is used (`/v1/key/{create,generate,decrypt}/minio-*`).
"""

from __future__ import annotations

import base64
import signal
from pathlib import Path

import pytest

from conftest import PKI, config_yaml, start_server
from pykes.client import Client
from pykes.client.errors import APIError, DecryptError, KeyExists, KeyNotFound, NotAllowed


def minio_context(ctx: dict[str, str]) -> bytes:
    """MinIO's canonical context bytes (docs/compat/minio.md §4): sorted keys, no whitespace, Go
    string escaping; the empty map is the two bytes `{}`."""
    if not ctx:
        return b"{}"

    def esc(s: str) -> str:
        out = []
        for ch in s:
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch in "\n\r\t":
                out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
            elif ord(ch) < 0x20 or ch in "<>&" or ch in "\u2028\u2029":
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'

    items = sorted(ctx.items(), key=lambda kv: kv[0].encode())
    return ("{" + ",".join(f"{esc(k)}:{esc(v)}" for k, v in items) + "}").encode()


class MinIOKMS:
    """The KES side of MinIO: configuration from MINIO_KMS_KES_* variables."""

    def __init__(self, env: dict[str, str]) -> None:
        endpoints = [e.strip() for e in env["MINIO_KMS_KES_ENDPOINT"].split(",") if e.strip()]
        self.default_key = env["MINIO_KMS_KES_KEY_NAME"]
        self.client = Client(
            endpoints,
            cert_file=env["MINIO_KMS_KES_CERT_FILE"],
            key_file=env["MINIO_KMS_KES_KEY_FILE"],
            ca_file=env["MINIO_KMS_KES_CAPATH"],
        )

    def startup(self) -> str:
        """handleKMSConfig: generate with `{}`; create only on the exact 404; tolerate
        exactly 'key already exists' and 'not authorized'. Returns what happened."""
        try:
            self.client.generate_key(self.default_key, context=minio_context({}))
            return "generated"
        except KeyNotFound:
            pass
        try:
            self.client.create_key(self.default_key)
            return "created"
        except (KeyExists, NotAllowed):
            return "tolerated"

    def put_object(self, bucket: str, obj: str) -> tuple[bytes, bytes]:
        dek = self.client.generate_key(
            self.default_key, context=minio_context({bucket: f"{bucket}/{obj}"})
        )
        return dek.plaintext, dek.ciphertext

    def get_object(self, bucket: str, obj: str, sealed: bytes) -> bytes:
        return self.client.decrypt(
            self.default_key, sealed, context=minio_context({bucket: f"{bucket}/{obj}"})
        )

    def key_status(self, key: str) -> bool:
        ctx = minio_context({"MinIO admin API": "KMSKeyStatusHandler"})
        dek = self.client.generate_key(key, context=ctx)
        return self.client.decrypt(key, dek.ciphertext, context=ctx) == dek.plaintext

    def root_credentials(self) -> tuple[bytes, bytes] | None:
        try:
            return (
                self.client.hmac(self.default_key, b"root access key"),
                self.client.hmac(self.default_key, b"root secret key"),
            )
        except (NotAllowed, APIError) as err:
            if isinstance(err, NotAllowed) or err.status == 501:
                return None
            raise


def test_minio_context_bytes_match_the_spec_example() -> None:
    ctx = minio_context({"my-bucket": "my-bucket/my-object"})
    assert base64.b64encode(ctx).decode() == "eyJteS1idWNrZXQiOiJteS1idWNrZXQvbXktb2JqZWN0In0="
    assert base64.b64encode(minio_context({})).decode() == "e30="


@pytest.fixture
def two_nodes(tmp_path: Path, pki: PKI):
    minio = pki.client("minio", "ecdsa")
    keys = tmp_path / "shared-keys"
    policy = (
        "policy:\n  minio:\n    allow:\n"
        "    - /v1/key/create/minio-*\n"
        "    - /v1/key/generate/minio-*\n"
        "    - /v1/key/decrypt/minio-*\n"
        f"    identities: [{minio.identity}]\n"
    )
    nodes = []
    for i in range(2):
        root = tmp_path / f"node{i}"
        root.mkdir()
        nodes.append(
            start_server(root, pki, config_yaml(pki, pki.client("admin").identity, keys, policy))
        )
    env = {
        "MINIO_KMS_KES_ENDPOINT": ",".join(n.url for n in nodes),
        "MINIO_KMS_KES_KEY_NAME": "minio-default-key",
        "MINIO_KMS_KES_CERT_FILE": str(minio.cert_file),
        "MINIO_KMS_KES_KEY_FILE": str(minio.key_file),
        "MINIO_KMS_KES_CAPATH": str(pki.server_cert),
    }
    yield nodes, env
    for n in nodes:
        n.stop()


def test_minio_startup_objects_key_status_and_failover(two_nodes) -> None:
    nodes, env = two_nodes
    kms = MinIOKMS(env)
    assert kms.startup() == "created"  # first boot: generate said exactly 404
    assert MinIOKMS(env).startup() == "generated"  # every later boot
    assert kms.root_credentials() is None  # hmac not in MinIO's policy → 403 → not derived

    sealed = {}
    for i in range(20):
        plaintext, ciphertext = kms.put_object("bucket", f"object-{i}")
        assert len(plaintext) == 32 and len(ciphertext) == 76
        sealed[i] = (plaintext, ciphertext)
    for i, (plaintext, ciphertext) in sealed.items():
        assert kms.get_object("bucket", f"object-{i}", ciphertext) == plaintext
    with pytest.raises(DecryptError):  # another object's context: not authentic
        kms.get_object("bucket", "object-1", sealed[0][1])
    assert kms.key_status("minio-default-key")
    with pytest.raises(NotAllowed):  # outside the minio-* policy
        kms.key_status("other-key")

    nodes[0].proc.send_signal(signal.SIGKILL)  # a node dies: MinIO keeps working
    nodes[0].proc.wait()
    for i in range(20, 30):
        plaintext, ciphertext = kms.put_object("bucket", f"object-{i}")
        assert kms.get_object("bucket", f"object-{i}", ciphertext) == plaintext
    for i, (plaintext, ciphertext) in sealed.items():  # old objects via the survivor
        assert kms.get_object("bucket", f"object-{i}", ciphertext) == plaintext


def test_hmac_root_credentials_are_stable_across_nodes(tmp_path: Path, pki: PKI) -> None:
    """With root access disabled MinIO derives its root credentials from two HMACs of
    the default key: they must be identical on every node and across restarts."""
    admin = pki.client("admin")
    keys = tmp_path / "keys"
    macs = []
    for i in range(2):
        root = tmp_path / f"n{i}"
        root.mkdir()
        server = start_server(root, pki, config_yaml(pki, admin.identity, keys))
        try:
            with Client(
                [server.url],
                cert_file=str(admin.cert_file),
                key_file=str(admin.key_file),
                ca_file=str(pki.server_cert),
            ) as c:
                if i == 0:
                    c.create_key("minio-default-key")
                macs.append(
                    (
                        c.hmac("minio-default-key", b"root access key"),
                        c.hmac("minio-default-key", b"root secret key"),
                    )
                )
        finally:
            server.stop()
    assert macs[0] == macs[1]
    assert len(macs[0][0]) == 32 and macs[0][0] != macs[0][1]
