"""AWS Secrets Manager keystore (docs/compat/keystore.md §4.4, config.md §3.5) against a real
moto server process over HTTP, plus real local TCP servers for the failure modes
(a closed port, a server that never answers, a throttling proxy in front of moto).

The behaviour shared with every backend is in test_keystore_contract.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from conftest import PKI, spec_vectors, start_server
from keystore_backends import (
    MOTO_REGION,
    aws_config,
    moto_endpoint_fixture,  # noqa: F401
    reset_moto,
    start_moto,
)
from pykes.crypto import decode_key_version
from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore import KeyStore
from pykes.keystore.aws import (
    CONNECT_TIMEOUT,
    MAX_ATTEMPTS,
    READ_TIMEOUT,
    AWSError,
    AWSSecretsManagerKeyStore,
    connect,
    endpoint_url,
)

Scenario = Callable[[AWSSecretsManagerKeyStore], Awaitable[None]]


def plain_client(endpoint: str, **creds: str) -> Any:
    """A boto3 client that is not pykes: the independent view of what is stored."""
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=MOTO_REGION,
        aws_access_key_id=creds.get("access_key", "testing"),
        aws_secret_access_key=creds.get("secret_key", "testing"),
    )


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """The shared moto server, emptied for this test."""
    asyncio.run(reset_moto(moto_endpoint))
    return moto_endpoint


def run_with(endpoint: str, scenario: Scenario, **options: Any) -> None:
    async def main() -> None:
        store = await connect(aws_config(endpoint), **options)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


async def unconnected(endpoint: str, **options: Any) -> AWSSecretsManagerKeyStore:
    """A keystore built without connect()'s reachability check."""
    return await asyncio.to_thread(AWSSecretsManagerKeyStore, aws_config(endpoint), **options)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SilentServer:
    """Accepts TCP connections and never answers (a hung backend)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._listener.close()
        for conn in self.accepted:
            conn.close()  # unblocks any botocore read still waiting on it


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


class ThrottlingProxy(ThreadingHTTPServer):
    """Answers the first ``throttle`` requests with ThrottlingException, forwards the
    rest to the real moto server."""

    def __init__(self, upstream: str, throttle: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.throttle = throttle
        self.requests: list[str] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ThrottlingProxy

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append(self.headers.get("X-Amz-Target", ""))
            throttled = len(self.server.requests) <= self.server.throttle
        if throttled:
            self._reply(
                400,
                b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
                "application/x-amz-json-1.1",
            )
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        r = httpx.post(self.server.upstream + self.path, content=body, headers=headers)
        self._reply(r.status_code, r.content, r.headers.get("content-type", ""))

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def throttling_proxy(moto: str) -> Iterator[Callable[[int], ThrottlingProxy]]:
    proxies: list[ThrottlingProxy] = []

    def make(throttle: int) -> ThrottlingProxy:
        proxy = ThrottlingProxy(moto, throttle)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.shutdown()
        proxy.server_close()


# ------------------------------------------------------------------ configuration
def test_endpoint_url_adds_https_to_a_bare_host() -> None:
    assert endpoint_url("secretsmanager.us-east-2.amazonaws.com") == (
        "https://secretsmanager.us-east-2.amazonaws.com"
    )
    assert endpoint_url("localhost:4566") == "https://localhost:4566"
    assert endpoint_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert endpoint_url("HTTPS://example.com/") == "HTTPS://example.com/"


def test_default_timeouts_and_retries_reach_botocore(moto: str) -> None:
    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        config = store._client.meta.config  # white-box: what botocore will really use
        assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
        assert (CONNECT_TIMEOUT, READ_TIMEOUT, MAX_ATTEMPTS) == (5.0, 10.0, 3)
        assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
        assert store._client.meta.region_name == MOTO_REGION

    run_with(moto, scenario)


def test_connect_returns_a_keystore_with_go_description(moto: str) -> None:
    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        assert isinstance(store, KeyStore)
        assert store.description == f"AWS SecretsManager: {moto}"
        assert store.endpoint == moto
        assert 0 < await store.status() < 5

    run_with(moto, scenario)


def test_a_bare_host_endpoint_is_reached_over_https(moto: str) -> None:
    # moto speaks plain HTTP: a TLS handshake against it fails, which proves the
    # bare "host:port" endpoint was turned into an https:// URL.
    async def scenario() -> None:
        host = moto.removeprefix("http://")
        store = await unconnected(host, connect_timeout=2, read_timeout=2)
        try:
            assert store.endpoint == f"https://{host}"
            assert store.description == f"AWS SecretsManager: {host}"
            with pytest.raises(KeyStoreUnreachable):
                await store.status()
        finally:
            await store.close()

    asyncio.run(scenario())


# ------------------------------------------------------------------ storage mapping
def test_stored_layout_is_name_and_secret_string(moto: str) -> None:
    value = base64.b64encode(b"\x00\x01protobuf-bytes\xff")

    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        await store.create("my-key", value)

    run_with(moto, scenario)
    aws = plain_client(moto)
    secret = aws.get_secret_value(SecretId="my-key")
    assert secret["Name"] == "my-key"
    assert secret["SecretString"] == value.decode()
    assert "SecretBinary" not in secret
    assert secret["VersionStages"] == ["AWSCURRENT"]
    described = aws.describe_secret(SecretId="my-key")
    assert "KmsKeyId" not in described
    assert [s["Name"] for s in aws.list_secrets()["SecretList"]] == ["my-key"]


def test_kms_key_is_passed_through(moto: str) -> None:
    async def scenario() -> None:
        store = await connect(aws_config(moto, kms_key="alias/kes-test"))
        try:
            await store.create("encrypted", b"dmFsdWU=")
            assert await store.get("encrypted") == b"dmFsdWU="
        finally:
            await store.close()

    asyncio.run(scenario())
    assert plain_client(moto).describe_secret(SecretId="encrypted")["KmsKeyId"] == (
        "alias/kes-test"
    )


def test_reads_a_value_written_by_go_kes(moto: str) -> None:
    key = spec_vectors()["keys"][0]
    content = key["fs_keystore_file"]["content"]
    aws = plain_client(moto)
    aws.create_secret(Name=key["name"], SecretString=content)
    aws.create_secret(Name="binary", SecretBinary=content.encode())

    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        for name in (key["name"], "binary"):
            value = await store.get(name)
            assert value == content.encode()
            parsed = decode_key_version(value)
            assert parsed.created_by == key["fs_keystore_file"]["decoded_created_by"]
        with pytest.raises(KeyExistsError):
            await store.create(key["name"], b"other")

    run_with(moto, scenario)


def test_exists_not_found_delete_and_prefix_list(moto: str) -> None:
    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        await store.create("app-1", b"YQ==")
        await store.create("app-2", b"Yg==")
        await store.create("other", b"Yw==")
        with pytest.raises(KeyExistsError):
            await store.create("app-1", b"eA==")
        with pytest.raises(KeyNotFoundError):
            await store.get("app-3")
        assert await store.list("app-", -1) == (["app-1", "app-2"], "")
        await store.delete("app-1")
        with pytest.raises(KeyNotFoundError):
            await store.get("app-1")
        assert await store.list("", -1) == (["app-2", "other"], "")

    run_with(moto, scenario)
    names = [s["Name"] for s in plain_client(moto).list_secrets()["SecretList"]]
    assert sorted(names) == ["app-2", "other"]  # deleted without a recovery window


def test_list_includes_foreign_secrets_across_aws_pages(moto: str) -> None:
    aws = plain_client(moto)
    names = [f"k-{i:03d}" for i in range(230)] + ["foreign/db-password"]
    for name in names:
        aws.create_secret(Name=name, SecretString="x")
    # moto really paginates: one ListSecrets page holds at most 100 names
    assert len(aws.list_secrets(MaxResults=100)["SecretList"]) == 100

    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        assert await store.list("", -1) == (sorted(names), "")
        assert await store.list("k-1", 3) == (["k-100", "k-101", "k-102"], "k-103")
        assert await store.list("foreign/", -1) == (["foreign/db-password"], "")

    run_with(moto, scenario)


# ------------------------------------------------------------------ errors
def test_rejected_values_leave_no_trace_in_errors(moto: str) -> None:
    async def scenario(store: AWSSecretsManagerKeyStore) -> None:
        with pytest.raises(ValueError) as not_text:
            await store.create("binary", b"\xff\xfeSECRET-MARKER")
        with pytest.raises(ValueError) as empty:  # botocore: SecretString min length 1
            await store.create("empty", b"")
        for info in (not_text, empty):
            err = info.value
            assert "SECRET-MARKER" not in str(err) and "SECRET-MARKER" not in repr(err)
            assert err.__cause__ is None and err.__context__ is None  # nothing chained
        assert "binary" in str(not_text.value) and "empty" in str(empty.value)
        for name in ("binary", "empty"):
            with pytest.raises(KeyNotFoundError):
                await store.get(name)

    run_with(moto, scenario)


@pytest.fixture(scope="module")
def moto_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A second moto server that verifies SigV4 signatures (after 3 free actions,
    used here to create an IAM user with a Secrets Manager policy and an access key)."""
    server = start_moto(tmp_path_factory.mktemp("moto-auth"), {"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=server.endpoint,
            region_name=MOTO_REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="kes")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="kes", PolicyName="kes", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="kes")["AccessKey"]
        yield server.endpoint, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        server.stop()


def test_bad_credentials_are_an_error_not_key_not_found(
    moto_with_auth: tuple[str, str, str],
) -> None:
    endpoint, access_key, secret_key = moto_with_auth

    async def scenario() -> None:
        good = await connect(aws_config(endpoint, access_key=access_key, secret_key=secret_key))
        # connect only probes reachability (an unauthenticated GET), as KES does
        bad = await connect(aws_config(endpoint, access_key=access_key, secret_key="wrong"))
        unknown = await connect(aws_config(endpoint, access_key="AKIANOBODY", secret_key="x"))
        try:
            await good.create("authed", b"YXV0aGVk")
            assert await good.get("authed") == b"YXV0aGVk"
            for store in (bad, unknown):
                for call in (
                    store.get("authed"),
                    store.get("missing"),
                    store.create("authed", b"eA=="),
                    store.delete("authed"),
                    store.list("", -1),
                ):
                    with pytest.raises(AWSError) as info:
                        await call
                    assert "403" in str(info.value) or "Signature" in str(info.value)
            assert await good.get("authed") == b"YXV0aGVk"  # the failed delete did nothing
        finally:
            for store in (good, bad, unknown):
                await store.close()

    asyncio.run(scenario())


def test_default_chain_uses_env_and_credentials_file_but_not_config_file(
    moto_with_auth: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, access_key, secret_key = moto_with_auth
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role probing
    profile = f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"
    (tmp_path / "config").write_text(profile)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-file"))
    no_static = aws_config(endpoint, access_key="", secret_key="")

    async def get_or_error() -> bytes | Exception:
        store = await connect(no_static)
        try:
            return await store.get("chain")
        except Exception as err:
            return err
        finally:
            await store.close()

    plain_client(endpoint, access_key=access_key, secret_key=secret_key).create_secret(
        Name="chain", SecretString="Y2hhaW4="
    )
    # only the (disabled) shared config file holds credentials → none are found
    err = asyncio.run(get_or_error())
    assert isinstance(err, AWSError) and "credentials" in str(err).lower(), err
    # the shared credentials file is part of the chain, as in the Go SDK
    (tmp_path / "credentials").write_text(profile)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert asyncio.run(get_or_error()) == b"Y2hhaW4="
    # and so are the environment variables
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-file"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    assert asyncio.run(get_or_error()) == b"Y2hhaW4="


def test_closed_port_is_unreachable_fast() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"

    async def scenario() -> None:
        start = time.monotonic()
        with pytest.raises(KeyStoreUnreachable):
            await connect(aws_config(endpoint), connect_timeout=1, read_timeout=1)
        store = await unconnected(endpoint, connect_timeout=1, read_timeout=1)
        try:
            with pytest.raises(KeyStoreUnreachable):
                await store.status()
            with pytest.raises(KeyStoreUnreachable):
                await store.get("k")  # 3 attempts, short backoff between refusals
            with pytest.raises(KeyStoreUnreachable):
                await store.list("", -1)
        finally:
            await store.close()
        assert time.monotonic() - start < 5

    asyncio.run(scenario())


def test_status_of_a_hung_endpoint_times_out_as_unreachable(silent: SilentServer) -> None:
    async def scenario() -> None:
        store = await unconnected(silent.endpoint, connect_timeout=1, read_timeout=0.5)
        try:
            start = time.monotonic()
            with pytest.raises(KeyStoreUnreachable):
                await store.status()
            assert 0.4 < time.monotonic() - start < 3
        finally:
            await store.close()
        assert len(silent.accepted) == 1

    asyncio.run(scenario())


def test_a_hung_call_never_blocks_the_event_loop(silent: SilentServer) -> None:
    async def scenario() -> None:
        store = await unconnected(
            silent.endpoint, connect_timeout=1, read_timeout=1, max_attempts=1
        )
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = loop.time()
                gaps.append(now - last)
                last = now

        task = asyncio.create_task(ticker())
        start = time.monotonic()
        try:
            results = await asyncio.gather(
                store.get("a"), store.create("b", b"dg=="), store.list("", -1),
                return_exceptions=True,
            )  # fmt: skip
        finally:
            done.set()
            await task
            await store.close()
        elapsed = time.monotonic() - start
        assert len(gaps) > 40
        # A call blocking the loop would stall it for the whole 1 s read timeout; the
        # bound leaves room for GIL contention of the worker threads on a loaded machine.
        assert max(gaps) < 0.5, max(gaps)
        assert all(isinstance(r, KeyStoreUnreachable) for r in results), results
        assert 0.9 < elapsed < 4  # the calls really waited for the read timeout
        assert len(silent.accepted) == 3  # all three reached the server concurrently

    asyncio.run(scenario())


def test_operation_deadline_bounds_retries(silent: SilentServer) -> None:
    async def scenario() -> None:
        store = await unconnected(
            silent.endpoint, read_timeout=5, max_attempts=3, operation_timeout=0.5
        )
        try:
            start = time.monotonic()
            with pytest.raises(KeyStoreUnreachable, match="within 0.5s"):
                await store.get("k")
            assert time.monotonic() - start < 2
        finally:
            await store.close()

    asyncio.run(scenario())


def test_throttling_is_retried(throttling_proxy: Callable[[int], ThrottlingProxy]) -> None:
    recovering = throttling_proxy(2)
    saturated = throttling_proxy(1000)
    plain_client(recovering.upstream).create_secret(Name="k", SecretString="dmFsdWU=")

    async def scenario() -> None:
        store = await connect(aws_config(recovering.endpoint))
        try:
            assert await store.get("k") == b"dmFsdWU="
        finally:
            await store.close()
        store = await connect(aws_config(saturated.endpoint))
        try:
            with pytest.raises(AWSError, match="ThrottlingException"):
                await store.get("k")
        finally:
            await store.close()

    asyncio.run(scenario())
    target = "secretsmanager.GetSecretValue"
    assert recovering.requests == [target] * 3  # two throttled, the third answered
    assert saturated.requests == [target] * MAX_ATTEMPTS


# ------------------------------------------------------------------ end to end
def _server_config(pki: PKI, endpoint: str) -> str:
    return (
        "version: v1\n"
        f"admin:\n  identity: {pki.client('admin').identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        "keystore:\n  aws:\n    secretsmanager:\n"
        f"      endpoint: {endpoint}\n"
        f"      region: {MOTO_REGION}\n"
        "      credentials:\n        accesskey: testing\n        secretkey: testing\n"
    )


def test_pykes_server_keeps_keys_in_secrets_manager(moto: str, tmp_path: Path, pki: PKI) -> None:
    vectors = spec_vectors()
    go_key = vectors["keys"][0]
    aws = plain_client(moto)
    aws.create_secret(Name=go_key["name"], SecretString=go_key["fs_keystore_file"]["content"])
    server = start_server(tmp_path, pki, _server_config(pki, moto))
    try:
        with server.client(pki.client("admin")) as api:
            assert api.post("/v1/key/create/e2e-key").status_code == 200
            r = api.post("/v1/key/create/e2e-key")
            assert (r.status_code, r.json()) == (400, {"message": "key already exists"})

            ctx = base64.b64encode(b'{"bucket":"b"}').decode()
            dek = api.post("/v1/key/generate/e2e-key", json={"context": ctx}).json()
            r = api.post(
                "/v1/key/decrypt/e2e-key", json={"ciphertext": dek["ciphertext"], "context": ctx}
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"plaintext": dek["plaintext"]}

            # a key written by the Go server decrypts a ciphertext recorded from Go
            vec = next(v for v in vectors["vectors"] if v["key"] == go_key["name"])
            body = {"ciphertext": vec["ciphertext_b64"]}
            if vec["context_b64"] is not None:
                body["context"] = vec["context_b64"]
            r = api.post(f"/v1/key/decrypt/{go_key['name']}", json=body)
            assert r.json() == {"plaintext": vec["plaintext_b64"]}

            names = api.get("/v1/key/list/").json()["names"]
            assert names == sorted([go_key["name"], "e2e-key"])
            status = api.get("/v1/status").json()
            assert status["keystore_latency"] >= 1
            assert "keystore_unreachable" not in status

            stored = aws.get_secret_value(SecretId="e2e-key")["SecretString"]
            assert decode_key_version(stored.encode()).created_by == pki.client("admin").identity

            assert api.delete("/v1/key/delete/e2e-key").status_code == 200
            assert api.post("/v1/key/generate/e2e-key").status_code == 404
        remaining = [s["Name"] for s in aws.list_secrets()["SecretList"]]
        assert remaining == [go_key["name"]]
    except BaseException:
        print("server output:", *server.output(), sep="\n")  # shown by pytest on failure
        raise
    finally:
        assert server.stop() == 0


def test_pykes_server_refuses_to_start_with_an_unreachable_keystore(
    tmp_path: Path, pki: PKI
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    server = start_server(tmp_path, pki, _server_config(pki, endpoint), wait=False)
    try:
        assert server.proc.wait(30) != 0
    finally:
        server.stop()
    out, err = server.output()
    assert "keystore" in (out + err).lower()
    assert "Server is up" not in out
