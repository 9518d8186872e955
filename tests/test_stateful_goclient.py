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
from pykes.store.seal import generate_seal_key
from test_stateful_clients import StatefulKES


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[StatefulKES]:
    root = tmp_path_factory.mktemp("goclient")
    (root / "root.seal").write_text(generate_seal_key().text() + "\n")
    (root / "root.seal").chmod(0o600)
    kes = StatefulKES(root, pki, APIKey.generate(), APIKey.generate())
    kes.start()
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
