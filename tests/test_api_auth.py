"""Authentication and authorization over real mTLS (docs/compat/auth.md, api.md §3)."""

from __future__ import annotations

import datetime
import ssl

import httpx
import pytest

from conftest import PKI, RunningServer, config_yaml, start_server
from pykes.pki import APIKey, client_certificate

NOT_ALLOWED = {"message": "not authorized: insufficient permissions"}


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI):
    root = tmp_path_factory.mktemp("kes-auth")
    reader = pki.client("reader", "ecdsa")
    app = pki.client("app-rsa", "rsa")
    extra = (
        "policy:\n"
        "  reader:\n"
        "    allow: [/v1/key/describe/*, /v1/key/list/*, /v1/status, /v1/identity/self/describe]\n"
        f"    identities: [{reader.identity}]\n"
        "  app:\n"
        "    allow: [/v1/key/generate/app*, /v1/key/create/app*, /v1/key/decrypt/app*]\n"
        "    deny: [/v1/key/decrypt/app-secret]\n"
        f"    identities: [{app.identity}]\n"
        "  empty:\n"
        "    allow: []\n"
    )
    server = start_server(
        root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys", extra)
    )
    yield server
    server.stop()


def test_admin_bypasses_policies(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("admin")) as c:
        assert c.get("/v1/metrics").status_code == 200
        assert c.post("/v1/key/create/anything-admin").status_code in (200, 400)


def test_unknown_identity_is_forbidden(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("stranger")) as c:
        r = c.get("/v1/key/list/")
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)
        assert c.get("/version").status_code == 200  # no authentication at all


def test_policy_allow_deny_and_prefix(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("admin")) as admin:
        admin.post("/v1/key/create/app-secret")
        admin.post("/v1/key/create/app-1")
    with kes.client(pki.client("app-rsa")) as c:
        dek = c.post("/v1/key/generate/app-1", json={})
        assert dek.status_code == 200
        r = c.post("/v1/key/decrypt/app-1", json={"ciphertext": dek.json()["ciphertext"]})
        assert r.json() == {"plaintext": dek.json()["plaintext"]}
        # deny wins over the matching allow pattern
        d2 = c.post("/v1/key/generate/app-secret", json={}).json()
        r = c.post("/v1/key/decrypt/app-secret", json={"ciphertext": d2["ciphertext"]})
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)
        # not in the policy at all
        r = c.get("/v1/key/describe/app-1")
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)


def test_invalid_name_from_unauthorized_identity_is_403_not_400(
    kes: RunningServer, pki: PKI
) -> None:
    with kes.client(pki.client("reader", "ecdsa")) as c:
        r = c.post("/v1/key/create/-bad-")
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)
    with kes.client(pki.client("admin")) as c:
        r = c.post("/v1/key/create/-bad-")
        assert r.status_code == 400
        assert r.json() == {
            "message": "key name '-bad-' is empty, too long or contains invalid characters"
        }


def test_wrong_method_is_405_even_unauthenticated(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("stranger")) as c:
        r = c.get("/v1/key/create/x")
        assert r.status_code == 405
        assert r.json() == {"message": "received method 'GET' expected 'PUT'"}
        assert r.headers["accept"] == "PUT"
        r = c.head("/v1/status")
        assert r.status_code == 405


def test_policy_on_slash_form_of_list(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("reader", "ecdsa")) as c:
        r = c.get("/v1/key/list", follow_redirects=True)
        assert r.status_code == 200
        assert isinstance(r.json()["names"], list)


def test_self_describe_for_non_admin_is_sdk_shaped(kes: RunningServer, pki: PKI) -> None:
    reader = pki.client("reader", "ecdsa")
    with kes.client(reader) as c:
        r = c.get("/v1/identity/self/describe")
        assert r.status_code == 200
        body = r.json()
        assert body["identity"] == reader.identity
        assert body["policy"] == "reader"  # a string, as the Go SDK decodes it
        assert body["created_by"] == pki.client("admin").identity
        assert "/v1/status" in body["allow"] and body["allow"]["/v1/status"] == {}
        assert "admin" not in body
    with kes.client(pki.client("admin")) as c:
        body = c.get("/v1/identity/self/describe").json()
        assert body["admin"] is True and body["identity"] == pki.client("admin").identity
    with kes.client(pki.client("stranger")) as c:
        r = c.get("/v1/identity/self/describe")
        assert (r.status_code, r.json()) == (404, {"message": "identity does not exist"})


def test_policy_and_identity_apis(kes: RunningServer, pki: PKI) -> None:
    admin_id = pki.client("admin").identity
    reader_id = pki.client("reader", "ecdsa").identity
    with kes.client(pki.client("admin")) as c:
        assert c.get("/v1/policy/list/*").json() == {
            "names": ["app", "empty", "reader"],
            "continue_at": "",
        }
        assert c.get("/v1/policy/list/re*").json() == {"names": ["reader"], "continue_at": ""}
        r = c.get("/v1/policy/read/app").json()
        assert r["allow"] == {
            p: {}
            for p in sorted(
                ["/v1/key/generate/app*", "/v1/key/create/app*", "/v1/key/decrypt/app*"]
            )
        }
        assert r["deny"] == {"/v1/key/decrypt/app-secret": {}}
        assert r["created_by"] == admin_id
        assert "allow" not in c.get("/v1/policy/read/empty").json()
        d = c.get("/v1/policy/describe/reader").json()
        assert set(d) == {"name", "created_at", "created_by"} and d["name"] == "reader"
        r = c.get("/v1/policy/describe/nope")
        assert (r.status_code, r.json()) == (404, {"message": "policy does not exist"})
        r = c.get("/v1/policy/describe/bad.name")
        assert r.json() == {
            "message": "policy name 'bad.name' is empty, too long or contains invalid characters"
        }
        ids = c.get("/v1/identity/list/").json()
        assert ids["continue_at"] == ""
        assert admin_id in ids["identities"] and reader_id in ids["identities"]
        assert ids["identities"] == sorted(ids["identities"])
        assert c.get(f"/v1/identity/describe/{admin_id}").json()["admin"] is True
        d = c.get(f"/v1/identity/describe/{reader_id}").json()
        assert d["policy"] == "reader" and d["created_by"] == admin_id
        r = c.get("/v1/identity/describe/" + "0" * 64)
        assert (r.status_code, r.json()) == (404, {"message": "identity does not exist"})


def test_api_key_certificate_and_expired_cert_are_accepted(tmp_path, pki: PKI) -> None:
    """auth: off accepts any certificate: the SDK's API-key cert, expired, self-signed."""
    key = APIKey.generate()
    cert_pem, key_pem = client_certificate(key)
    (tmp_path / "k.crt").write_bytes(cert_pem)
    (tmp_path / "k.key").write_bytes(key_pem)
    expired = pki.client(
        "expired",
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2020, 2, 1, tzinfo=datetime.UTC),
    )
    server = start_server(tmp_path, pki, config_yaml(pki, key.identity, tmp_path / "keys"))
    try:
        ctx = ssl.create_default_context(cafile=str(pki.server_cert))
        ctx.load_cert_chain(str(tmp_path / "k.crt"), str(tmp_path / "k.key"))
        with httpx.Client(base_url=server.url, verify=ctx) as c:
            body = c.get("/v1/identity/self/describe").json()
            assert body == {
                "identity": key.identity,
                "admin": True,
                "created_at": body["created_at"],
            }
        with server.client(expired) as c:
            r = c.get("/v1/key/list/")
            assert (r.status_code, r.json()) == (403, NOT_ALLOWED)  # authenticated, just no policy
    finally:
        server.stop()


def test_missing_client_certificate_is_refused(kes: RunningServer) -> None:
    errors = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
    with pytest.raises(errors), kes.client(None) as c:
        c.get("/version")


def test_skip_auth_makes_cert_optional(tmp_path, pki: PKI, server_factory) -> None:
    server = server_factory("api:\n  /v1/status:\n    skip_auth: true\n")
    with server.client(None) as c:
        assert c.get("/v1/status").status_code == 200
        r = c.get("/v1/key/list/")
        assert (r.status_code, r.json()) == (
            400,
            {"message": "tls: client certificate is required"},
        )
        assert c.get("/version").status_code == 200
