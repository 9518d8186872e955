"""Secrets hygiene (issue 9): data keys in buffers we wipe, no secret in any log line
or error message, constant-time comparison of secrets.

The log/error tests run real servers and the real ``kes`` CLI and grep every output
for each secret in raw, hex, base64 (all three byte alignments, as a secret embedded
in a larger base64 value appears) and base64url form."""

from __future__ import annotations

import ast
import asyncio
import base64
import os
import re
import ssl
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import (
    PKI,
    REPO,
    RunningServer,
    config_yaml,
    free_port,
    kes_command,
    start_server,
)
from pykes.api.handlers import keys as key_handlers
from pykes.api.messages import Request
from pykes.api.routes import RouteTable
from pykes.crypto import KeyType, KeyVersion, generate_key_version, new_data_key, wipe
from pykes.crypto import keys as crypto_keys
from pykes.crypto.encoding import encode_key_version
from pykes.keystore import KeyCache, MemoryKeyStore
from pykes.pki import APIKey, client_certificate


# --------------------------------------------------------------------- secret forms
def needles(secret: bytes) -> list[bytes]:
    """Every form in which ``secret`` could leak into a text: raw, hex (both cases),
    and 24-character windows of its standard / URL-safe base64 at each of the three
    byte alignments (a secret inside a larger base64 value, e.g. a key file, is
    encoded at an arbitrary offset)."""
    forms = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    for shift, start in ((0, 0), (1, 2), (2, 3)):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.append(encode(bytes(shift) + secret)[start : start + 24])
    return forms


def leaks(text: bytes | str, secrets: list[bytes]) -> list[bytes]:
    data = text.encode() if isinstance(text, str) else text
    return [n for s in secrets for n in needles(s) if n in data]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_needles_find_each_form() -> None:
    secret = os.urandom(32)
    for text in (
        secret,
        secret.hex(),
        _b64(secret),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        _b64(b"\x0a\x20" + secret + b"\x10\x01"),  # as inside a key file
        _b64(b"\x00" + secret),  # as inside an API key
    ):
        assert leaks(text, [secret]), text
    assert leaks(_b64(os.urandom(64)), [secret]) == []


# --------------------------------------------------------------------- wiping
def test_wipe_zeroes_the_buffer_in_place() -> None:
    for size in (32, 5, 1000):
        buf = bytearray(os.urandom(size))
        view = memoryview(buf)
        wipe(buf)
        assert buf == bytes(size) and view.obj is buf and len(buf) == size


def test_data_keys_are_fresh_random_bytearrays() -> None:
    a, b = new_data_key(), new_data_key()
    assert isinstance(a, bytearray) and len(a) == 32 and a != b and any(a)


def _state(key: KeyVersion) -> SimpleNamespace:
    """A real KeyCache over a real in-memory keystore; ``decode`` returns ``key``, a
    KeyVersion that records the buffers the handlers hand it and get back from it."""
    store = MemoryKeyStore()
    asyncio.run(store.create("k", encode_key_version(key)))
    cache: KeyCache[KeyVersion] = KeyCache(store, decode=lambda _: key, any=0, unused=0, offline=0)
    return SimpleNamespace(keys=cache, log=None)


class _Recording(KeyVersion):
    """The real KeyVersion crypto; remembers the data keys it encrypted and the
    plaintext buffers it returned."""

    __slots__ = ("seen",)

    def encrypt(self, plaintext, associated_data=b""):  # type: ignore[no-untyped-def]
        self.seen.append(plaintext)
        return super().encrypt(plaintext, associated_data)

    def decrypt(self, ciphertext, associated_data=b""):  # type: ignore[no-untyped-def]
        plaintext = super().decrypt(ciphertext, associated_data)
        self.seen.append(plaintext)
        return plaintext


def _request(path: str, body: bytes) -> Request:
    req = Request("PUT", path, path, "someone", True, "127.0.0.1", time.perf_counter())
    route = RouteTable().lookup(path)
    assert route is not None
    req.route, req.resource = route, path[len(route.path) :]
    req.body, req.content_length = body, len(body)
    return req


@pytest.mark.parametrize("key_type", [KeyType.AES256, KeyType.CHACHA20])
def test_generate_and_decrypt_wipe_the_data_key_buffers(key_type: KeyType) -> None:
    real = generate_key_version(key_type)
    key = _Recording(real.key, key_type, real.hmac_key, real.created_at_ns, "")
    object.__setattr__(key, "seen", [])
    state = _state(key)
    context = b'{"context":"' + _b64(b"ctx").encode() + b'"}'

    async def run() -> tuple[bytes, bytes]:
        gen = await key_handlers.generate(state, _request("/v1/key/generate/k", context))
        out = httpx.Response(200, content=gen.body).json()
        body = b'{"ciphertext":"%s","context":"%s"}' % (
            out["ciphertext"].encode(),
            _b64(b"ctx").encode(),
        )
        dec = await key_handlers.decrypt(state, _request("/v1/key/decrypt/k", body))
        return base64.b64decode(out["plaintext"]), base64.b64decode(
            httpx.Response(200, content=dec.body).json()["plaintext"]
        )

    dek, decrypted = asyncio.run(run())
    assert len(dek) == 32 and any(dek) and decrypted == dek  # the answers are right
    dek_buffer, plaintext_buffer = key.seen
    for buf in (dek_buffer, plaintext_buffer):  # and the buffers behind them are zero
        assert isinstance(buf, bytearray) and buf == bytes(32)


def test_derived_chacha20_keys_are_wiped(monkeypatch: pytest.MonkeyPatch) -> None:
    derived: list[bytearray] = []
    real = crypto_keys.hchacha20

    def spy(key: bytes, nonce: bytes) -> bytearray:
        out = real(key, nonce)
        derived.append(out)
        return out

    monkeypatch.setattr(crypto_keys, "hchacha20", spy)
    key = generate_key_version(KeyType.CHACHA20)
    assert key.decrypt(key.encrypt(b"secret", b"ad"), b"ad") == b"secret"
    assert len(derived) == 2 and all(d == bytes(32) for d in derived)


def test_failed_decryption_returns_no_plaintext() -> None:
    key = generate_key_version()
    ct = bytearray(key.encrypt(b"x" * 100))
    ct[0] ^= 1
    with pytest.raises(Exception, match="not authentic"):
        key.decrypt(bytes(ct))


# --------------------------------------------------------------------- constant time
_SECRET_NAME = re.compile(
    r"(^|_)(secret|password|passwd|token|api_?key|seed|hmac|mac|private_key|dek|plaintext)($|_)",
    re.IGNORECASE,
)
# Reviewed: not attacker-controlled comparisons, constant time buys nothing.
_REVIEWED = {
    ("cli/identity.py", "if password != confirm:"),  # the local user typed it twice
    # the HMAC key's hash-algorithm id (1 = SHA-256), not a secret
    ("crypto/encoding.py", "if len(mac_key) != KEY_SIZE or mac_hash != _HASH_SHA256:"),
}


def _names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


def test_secrets_are_never_compared_with_equality_operators() -> None:
    """Every ``==`` / ``!=`` whose operand is named like a secret is either reviewed
    above or a bug: secrets are compared with ``hmac.compare_digest``."""
    src = REPO / "src" / "pykes"
    found = []
    for path in src.rglob("*.py"):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(_SECRET_NAME.search(n) for o in operands for n in _names(o)):
                rel = str(path.relative_to(src))
                line = lines[node.lineno - 1].strip()
                if (rel, line) not in _REVIEWED:
                    found.append(f"{rel}:{node.lineno}: {line}")
    assert found == []


def test_the_equality_scan_sees_a_secret_comparison(tmp_path: Path) -> None:
    tree = ast.parse("if api_key == other.seed:\n    pass\n")
    cmp = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    names = [n for o in [cmp.left, *cmp.comparators] for n in _names(o)]
    assert [bool(_SECRET_NAME.search(n)) for n in names] == [True, True]


# --------------------------------------------------------------------- logs and errors
def _server_with_corrupt_keys(tmp_path: Path, pki: PKI, known: bytes) -> RunningServer:
    keys = tmp_path / "keys"
    keys.mkdir()
    bad_type = b"\x0a\x24\x0a\x20" + known + b"\x10\x07"  # secret key of type 7
    corrupt = {
        "bad-type": base64.b64encode(bad_type + b"\x12\x24\x0a\x20" + known + b"\x10\x01"),
        "short-legacy": b'{"bytes":"' + base64.b64encode(known[:31]) + b'"}',
        "raw-bytes": known + b"\xff\xfe",
    }
    for name, value in corrupt.items():
        (keys / name).write_bytes(value)
        (keys / name).chmod(0o600)
    text = config_yaml(pki, pki.client("admin").identity, keys) + "log:\n  error: debug\n"
    return start_server(tmp_path, pki, text)


def test_no_secret_in_responses_or_logs(tmp_path: Path, pki: PKI) -> None:
    """Malformed import bodies carrying key bytes and corrupt key files containing
    known bytes: the answers are 4xx/5xx with fixed texts, and neither the answers
    nor any log line carries the bytes."""
    known = os.urandom(32)
    plaintext = os.urandom(48)
    server = _server_with_corrupt_keys(tmp_path, pki, known)
    answers: list[bytes] = []
    try:
        with server.client(pki.client("admin")) as c:
            imports = [
                {"key": _b64(known[:31]), "cipher": "AES256"},  # wrong size
                {"key": _b64(known), "cipher": "AES-512"},  # unknown cipher
                {"key": known.hex(), "cipher": "AES256"},  # not base64
                {"bytes": _b64(known), "algorithm": "nope"},  # legacy shape
            ]
            for body in imports:
                r = c.post("/v1/key/import/imp", json=body)
                assert r.status_code in (400, 406), r.text
                answers.append(r.content)
            raw = b'{"key":"' + base64.b64encode(known) + b'","cipher":"AES256"'  # truncated
            r = c.post("/v1/key/import/imp", content=raw)
            assert r.status_code == 400
            answers.append(r.content)
            for name in ("bad-type", "short-legacy", "raw-bytes"):
                for method, path, body in (
                    ("GET", f"/v1/key/describe/{name}", None),
                    ("POST", f"/v1/key/generate/{name}", {}),
                    ("POST", f"/v1/key/encrypt/{name}", {"plaintext": _b64(plaintext)}),
                ):
                    r = c.request(method, path, json=body)
                    assert r.status_code >= 500 and r.status_code != 500, (name, r.text)
                    answers.append(r.content)
            # a key that works, then a decryption that fails with a known plaintext
            good = os.urandom(32)
            assert (
                c.post(
                    "/v1/key/import/ok", json={"key": _b64(good), "cipher": "AES256"}
                ).status_code
                == 200
            )
            ct = c.post("/v1/key/encrypt/ok", json={"plaintext": _b64(plaintext)}).json()
            r = c.post(
                "/v1/key/decrypt/ok", json={"ciphertext": ct["ciphertext"], "context": "eA=="}
            )
            assert r.status_code == 400
            answers.append(r.content)
    finally:
        server.stop()
    out, err = server.output()
    assert "failed to read key 'bad-type'" in err  # the error log did see the failures
    secrets = [known, known[:31], plaintext, good]
    assert leaks(out + err, secrets) == []
    assert leaks(b"\n".join(answers), secrets) == []


def _cli_env(port: int, api_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "KES" not in k}
    return {**env, "KES_SERVER": f"127.0.0.1:{port}", "KES_API_KEY": api_key}


def test_a_bad_api_key_is_never_echoed_by_the_cli(tmp_path: Path, pki: PKI) -> None:
    seed = os.urandom(32)
    unknown = APIKey(Ed25519PrivateKey.from_private_bytes(seed))
    candidates = {
        "unsupported type": "kes:v1:" + _b64(b"\x01" + seed),
        "invalid length": "kes:v1:" + _b64(b"\x00" + seed[:31]),
        "illegal base64": "kes:v1:" + _b64(b"\x00" + seed)[:-2] + "!!",
        "not authorized": str(unknown),  # well-formed, but no policy on the server
    }
    server = start_server(
        tmp_path, pki, config_yaml(pki, pki.client("admin").identity, tmp_path / "keys")
    )
    try:
        for reason, api_key in candidates.items():
            env = _cli_env(server.port, api_key)
            run = subprocess.run(
                kes_command("key", "ls", "-k"), env=env, capture_output=True, timeout=60
            )
            assert run.returncode != 0, reason
            output = run.stdout + run.stderr
            assert b"no API key" not in output and reason.encode() in output, output
            assert api_key.encode() not in output, reason
            assert leaks(output, [seed, seed[:31]]) == [], (reason, output)
    finally:
        server.stop()
    out, err = server.output()
    assert leaks(out + err, [seed]) == []


def test_dev_server_prints_its_api_key_once_and_nowhere_else(tmp_path: Path) -> None:
    port = free_port()
    out_file, err_file = tmp_path / "out", tmp_path / "err"
    proc = subprocess.Popen(
        kes_command("server", "--dev", "--addr", f"127.0.0.1:{port}"),
        stdout=out_file.open("wb"),
        stderr=err_file.open("wb"),
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while b"API Key" not in out_file.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, err_file.read_text()
            time.sleep(0.05)
        match = re.search(rb"kes:v1:[A-Za-z0-9+/=]{44}", out_file.read_bytes())
        assert match is not None
        api_key = APIKey.parse(match.group().decode())
        cert, key = client_certificate(api_key)
        (tmp_path / "c.crt").write_bytes(cert)
        (tmp_path / "c.key").write_bytes(key)
        env = _cli_env(port, str(api_key))
        runs = [
            subprocess.run(
                kes_command("key", command, "-k", *names), env=env, capture_output=True, timeout=60
            )
            for command, *names in (("create", "k1"), ("create", "k1"), ("ls",))
        ]
        assert [r.returncode for r in runs] == [0, 1, 0], runs
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
        with httpx.Client(verify=ctx) as c:
            assert c.post(f"https://127.0.0.1:{port}/v1/key/generate/k1").status_code == 200
            assert c.post(f"https://127.0.0.1:{port}/v1/key/decrypt/k1", json={}).status_code == 400
    finally:
        proc.terminate()
        proc.wait(10)
    banner, _, served = out_file.read_bytes().partition(b"=> Server is up and running...")
    output = banner + served + err_file.read_bytes()
    text = str(api_key).encode()
    # The banner, by design: its API Key row and the `export KES_API_KEY=…` line to copy.
    assert banner.count(text) == 2 and banner.count(b"export KES_SERVER=") == 1
    assert text not in served + err_file.read_bytes()  # never while serving, nor on stderr
    seed = api_key_seed(api_key)
    assert leaks(output.replace(text, b""), [seed]) == []


def api_key_seed(api_key: APIKey) -> bytes:
    return base64.b64decode(str(api_key).removeprefix("kes:v1:"))[1:]
