"""Bad input on every endpoint: exact 4xx status and message, never a 5xx, and no
key material in any log line (docs/compat/api.md §3–§5)."""

from __future__ import annotations

import base64
import json

import pytest

from conftest import PKI, RunningServer, config_yaml, start_server

KEY = bytes(range(1, 33))
KEY_B64 = base64.b64encode(KEY).decode()
SECRET_PLAINTEXT = b"top-secret-plaintext-marker-123"
INVALID_BODY = {"message": "invalid request body"}


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI):
    root = tmp_path_factory.mktemp("kes-bad")
    server = start_server(root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys"))
    with server.client(pki.client("admin")) as c:
        assert (
            c.post("/v1/key/import/bad-key", json={"key": KEY_B64, "cipher": "AES256"}).status_code
            == 200
        )
    yield server
    server.stop()


@pytest.fixture(params=["http1", "http2"])
def admin(request, kes: RunningServer, pki: PKI):
    with kes.client(pki.client("admin"), http2=request.param == "http2") as c:
        yield c


CRYPTO_ROUTES = ["encrypt", "decrypt", "hmac", "generate"]
BAD_BODIES = [
    b"{",
    b"not json",
    b"[1,2,3]",
    b'"string"',
    b"123",
    b'{"plaintext": 5, "ciphertext": 5, "message": 5, "context": 5}',
    # URL-safe alphabet
    b'{"plaintext": "_-_-", "ciphertext": "_-_-", "message": "_-_-", "context": "_-_-"}',
    b'{"plaintext": "YQ", "ciphertext": "YQ", "message": "YQ", "context": "YQ"}',  # unpadded
    b'{"plaintext": "\xff\xfe", "ciphertext": "\xff", "message": "\xff", "context": "\xff"}',
    b'{"version": 7, "plaintext": "", "ciphertext": "", "message": ""}',
]


@pytest.mark.parametrize("route", CRYPTO_ROUTES)
@pytest.mark.parametrize("body", BAD_BODIES)
def test_malformed_crypto_bodies(admin, route: str, body: bytes) -> None:
    r = admin.post(f"/v1/key/{route}/bad-key", content=body)
    assert (r.status_code, r.json()) == (400, INVALID_BODY), body


@pytest.mark.parametrize("route", CRYPTO_ROUTES + ["import"])
def test_oversize_bodies(admin, route: str) -> None:
    body = b'{"plaintext":"' + b"QUFB" * 250_001 + b'"}'
    r = admin.post(f"/v1/key/{route}/bad-key", content=body)
    expected = "invalid import key request body" if route == "import" else "invalid request body"
    assert (r.status_code, r.json()) == (400, {"message": expected})


def test_body_just_under_limit_is_accepted(admin) -> None:
    pt = b"x" * 740_000  # base64 ≈ 986,668 bytes + JSON framing < 1,000,000
    body = b'{"plaintext":"' + base64.b64encode(pt) + b'"}'
    assert len(body) < 1_000_000
    r = admin.post("/v1/key/encrypt/bad-key", content=body)
    assert r.status_code == 200
    ct = r.json()["ciphertext"]
    assert len(base64.b64decode(ct)) == len(pt) + 44


BAD_NAMES = ["-a", "a-", "_", "my.key", "hel<lo", "\u2630", "a" * 81, "%E2%98%B0"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "method,route",
    [
        ("POST", "create"),
        ("POST", "import"),
        ("GET", "describe"),
        ("DELETE", "delete"),
        ("POST", "generate"),
        ("POST", "encrypt"),
        ("POST", "decrypt"),
        ("PUT", "hmac"),
    ],
)
def test_invalid_key_names(admin, method: str, route: str, name: str) -> None:
    r = admin.request(method, f"/v1/key/{route}/{name}", content=b"{}")
    shown = "\u2630" if name == "%E2%98%B0" else name
    assert r.status_code == 400
    assert r.json() == {
        "message": f"key name '{shown}' is empty, too long or contains invalid characters"
    }


def test_empty_key_name_redirects_or_400(admin) -> None:
    r = admin.post("/v1/key/create/")
    assert (r.status_code, r.json()) == (
        400,
        {"message": "key name '' is empty, too long or contains invalid characters"},
    )


@pytest.mark.parametrize("pattern", ["a-", "-a", "a*b", "**", "_", "a" * 81])
def test_invalid_list_patterns(admin, pattern: str) -> None:
    for route in ("key", "policy", "identity"):
        r = admin.get(f"/v1/{route}/list/{pattern}")
        assert r.status_code == 400
        assert r.json() == {
            "message": f"listing pattern '{pattern}' is empty, too long or is invalid"
        }


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({"key": KEY_B64, "cipher": "DES"}, 406, "algorithm 'DES' is not supported"),
        ({"key": KEY_B64, "cipher": ""}, 406, "algorithm '' is not supported"),
        (
            {"key": base64.b64encode(b"short").decode(), "cipher": "AES256"},
            406,
            "invalid key size for 'AES256'",
        ),
        ({"key": "not base64!", "cipher": "AES256"}, 400, "invalid import key request body"),
        ({"key": KEY_B64, "cipher": "AES256"}, 400, "key already exists"),
    ],
)
def test_import_errors(admin, body, status: int, message: str) -> None:
    r = admin.post("/v1/key/import/bad-key", json=body)
    assert (r.status_code, r.json()) == (status, {"message": message})


def test_legacy_import_body_and_cipher_aliases(admin) -> None:
    import os

    n = os.urandom(3).hex()
    assert admin.post(f"/v1/key/import/legacy-{n}", json={"bytes": KEY_B64}).status_code == 200
    assert admin.get(f"/v1/key/describe/legacy-{n}").json()["algorithm"] == "AES256"
    assert (
        admin.post(
            f"/v1/key/import/xc-{n}", json={"key": KEY_B64, "cipher": "XCHACHA20-POLY1305"}
        ).status_code
        == 200
    )
    assert admin.get(f"/v1/key/describe/xc-{n}").json()["algorithm"] == "ChaCha20"


def test_missing_key_on_every_key_route(admin) -> None:
    for method, route in [
        ("GET", "describe"),
        ("POST", "generate"),
        ("PUT", "hmac"),
        ("DELETE", "delete"),
    ]:
        r = admin.request(method, f"/v1/key/{route}/no-such-key", content=b'{"message":""}')
        assert (r.status_code, r.json()) == (404, {"message": "key does not exist"}), route
    r = admin.post("/v1/key/encrypt/no-such-key", json={"plaintext": ""})
    assert r.status_code == 404
    r = admin.post("/v1/key/decrypt/no-such-key", json={"ciphertext": ""})
    assert r.status_code == 404


def test_decrypt_garbage_is_not_authentic(admin) -> None:
    for ct in [
        b"",
        b"x" * 28,
        b"{" + b"x" * 60,
        b"\x95" + b"x" * 60,
        b'{"aead":"ChaCha20Poly1305"}' * 3,
    ]:
        r = admin.post(
            "/v1/key/decrypt/bad-key", json={"ciphertext": base64.b64encode(ct).decode()}
        )
        assert (r.status_code, r.json()) == (
            400,
            {"message": "decryption failed: ciphertext is not authentic"},
        )


def test_no_5xx_and_no_secrets_in_logs(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("admin")) as c:
        ct = c.post(
            "/v1/key/encrypt/bad-key",
            json={
                "plaintext": base64.b64encode(SECRET_PLAINTEXT).decode(),
                "context": base64.b64encode(b"ctx-marker").decode(),
            },
        )
        assert ct.status_code == 200
        c.post("/v1/key/decrypt/bad-key", json={"ciphertext": ct.json()["ciphertext"]})  # wrong ctx
        c.post("/v1/key/import/bad-key2", json={"key": KEY_B64, "cipher": "AES256"})
        c.delete("/v1/key/delete/bad-key2")
    out, err = kes.output()
    logs = out + err
    for secret in (
        KEY_B64,
        KEY.hex(),
        SECRET_PLAINTEXT.decode(),
        base64.b64encode(SECRET_PLAINTEXT).decode(),
        "ctx-marker",
        ct.json()["ciphertext"],
    ):
        assert secret not in logs
    assert "Traceback" not in logs
    # the audit log did run: one JSON event per request, the import among them
    events = [json.loads(line) for line in out.splitlines() if line.startswith('{"time"')]
    imports = [e for e in events if e["request"]["path"] == "/v1/key/import/bad-key2"]
    assert len(imports) == 1 and imports[0]["response"]["code"] == 200


def _routes() -> list[tuple[str, str]]:
    from pykes.api.routes import DEFAULT_ROUTES

    return [(r.method, r.path) for r in DEFAULT_ROUTES]


@pytest.mark.parametrize("method,path", _routes())
def test_every_route_rejects_a_wrong_method(admin, method: str, path: str) -> None:
    wrong = "DELETE" if method != "DELETE" else "GET"
    r = admin.request(wrong, path + ("x" if path.endswith("/") else ""))
    assert r.status_code == 405
    assert r.json() == {"message": f"received method '{wrong}' expected '{method}'"}
    assert r.headers["accept"] == method


@pytest.mark.parametrize("method,path", _routes())
def test_every_route_without_certificate(server_factory, method: str, path: str) -> None:
    """With skip_auth somewhere, certificate-less clients connect; every route that is
    not identify-only answers 400 (docs/compat/auth.md §9)."""
    server = server_factory("api:\n  /v1/api:\n    skip_auth: true\n")
    with server.client(None) as c:
        r = c.request(method, path + ("x" if path.endswith("/") else ""), content=b"{}")
    if path in ("/version", "/v1/api"):
        assert r.status_code == 200
    elif path == "/v1/identity/self/describe":
        assert (r.status_code, r.json()) == (404, {"message": "identity does not exist"})
    else:
        assert (r.status_code, r.json()) == (
            400,
            {"message": "tls: client certificate is required"},
        )
