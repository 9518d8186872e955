"""The exchanges of a Go client on kms-go/kes's ``Enclave`` API (kms-go 6b500c0, the 2023
stateful KES API) with a real stateful pykes over real mTLS: each test sends what that
SDK sends (path, method, body, ``Kes-Enclave`` header) and checks the answer it expects
(status and error text, which the SDK compares with ``errors.Is``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import PKI
from pykes.client import client_ssl_context
from pykes.pki import APIKey
from test_stateful_clients import StatefulKES, start_stateful


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[StatefulKES]:
    kes = start_stateful(tmp_path_factory.mktemp("goclient"), pki)
    yield kes
    kes.stop()


def _http(kes: StatefulKES, api_key: APIKey | None = None, enclave: str = "") -> httpx.Client:
    context = client_ssl_context(api_key=api_key or kes.admin, ca_file=str(kes.pki.server_cert))
    headers = {"Kes-Enclave": enclave} if enclave else {}
    return httpx.Client(base_url=kes.url, verify=context, headers=headers)


def test_list_enclaves_takes_a_plain_prefix(stateful: StatefulKES) -> None:
    """``Client.ListEnclaves(ctx, "go-", 0)`` sends ``/v1/enclave/list/go-``: a prefix
    (2023 KES), which may end in ``-``; ``*`` and a trailing ``*`` still work."""
    with _http(stateful) as admin:
        for name in ("go-a", "go-b", "gone"):
            assert admin.put(f"/v1/enclave/create/{name}").status_code == 200
        r = admin.get("/v1/enclave/list/go-")
        assert (r.status_code, r.json()) == (200, {"names": ["go-a", "go-b"]})
        assert admin.get("/v1/enclave/list/go").json() == {"names": ["go-a", "go-b", "gone"]}
        assert admin.get("/v1/enclave/list/go-*").json() == {"names": ["go-a", "go-b"]}
        assert "default" in admin.get("/v1/enclave/list/*").json()["names"]
        r = admin.get("/v1/enclave/list/go.")
        assert (r.status_code, r.json()["message"]) == (
            400,
            "listing pattern 'go.' is empty, too long or is invalid",
        )


def test_policy_and_identity_writes_of_the_2023_api(stateful: StatefulKES) -> None:
    """``Enclave.CreatePolicy`` (PUT ``/v1/policy/create/<name>``, the ``kes.Policy`` struct
    as Go marshals it: ``Allow``/``Deny`` keys), ``AssignPolicy`` (POST
    ``/v1/policy/assign/<policy>`` with ``{"identity"}``), ``CreateIdentity`` (PUT
    ``/v1/identity/create/<id>`` with ``{"policy","admin","ttl"}``) and ``DeleteIdentity``
    (DELETE ``/v1/identity/delete/<id>``) act in the request's enclave, with the SDK's
    errors; what they grant works, in that enclave only."""
    app, other = APIKey.generate(), APIKey.generate()
    allow = {"/v1/key/generate/k": {}, "/v1/identity/self/describe": {}}
    body = {"Allow": allow, "Deny": None, "CreatedAt": "0001-01-01T00:00:00Z", "CreatedBy": ""}
    with _http(stateful) as admin:
        for name in ("iam-a", "iam-b"):
            assert admin.put(f"/v1/enclave/create/{name}").status_code == 200
    with _http(stateful, enclave="iam-a") as a, _http(stateful, enclave="iam-b") as b:
        assert a.put("/v1/key/create/k").status_code == 200
        assert b.put("/v1/key/create/k").status_code == 200
        r = a.put("/v1/policy/create/app", json=body)
        assert r.status_code == 200, r.text
        r = a.put("/v1/policy/create/app", json=body)
        assert (r.status_code, r.json()["message"]) == (400, "policy already exists")
        assert a.get("/v1/policy/read/app").json()["allow"] == allow
        assert b.get("/v1/policy/read/app").status_code == 404
        r = a.post("/v1/policy/assign/app", json={"identity": app.identity})
        assert r.status_code == 200, r.text
        r = a.post("/v1/policy/assign/nope", json={"identity": app.identity})
        assert (r.status_code, r.json()["message"]) == (404, "policy does not exist")
        ttl = {"policy": "app", "admin": False, "ttl": "0s"}
        r = a.put(f"/v1/identity/create/{other.identity}", json=ttl)
        assert r.status_code == 200, r.text
        r = a.put(f"/v1/identity/create/{other.identity}", json=ttl)
        assert (r.status_code, r.json()["message"]) == (400, "identity already exists")
        r = a.put(f"/v1/identity/create/{APIKey.generate().identity}", json=ttl | {"admin": True})
        assert r.status_code == 400
        assert a.get(f"/v1/identity/describe/{other.identity}").json()["policy"] == "app"
        assert b.get(f"/v1/identity/describe/{app.identity}").status_code == 404

    with _http(stateful, app, "iam-a") as app_a, _http(stateful, app, "iam-b") as app_b:
        assert app_a.post("/v1/key/generate/k", json={}).status_code == 200
        assert app_a.put("/v1/key/create/x").status_code == 403
        assert app_b.post("/v1/key/generate/k", json={}).status_code == 403
        # a non-admin reaches these routes only through a pattern that names them
        assert app_a.put("/v1/policy/create/mine", json={"allow": {}}).status_code == 403

    with _http(stateful, enclave="iam-a") as a:
        assert a.delete(f"/v1/identity/delete/{app.identity}").status_code == 200
        r = a.delete(f"/v1/identity/delete/{app.identity}")
        assert (r.status_code, r.json()["message"]) == (404, "identity does not exist")
    with _http(stateful, app, "iam-a") as app_a:
        assert app_a.post("/v1/key/generate/k", json={}).status_code == 403
