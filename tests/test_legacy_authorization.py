"""Legacy routes never grant more than Go KES (issue 20 #2, docs/legacy-api.md): a
legacy route is authorized as the current route it stands for, the legacy write routes
only through a pattern that names them, and a run-time policy or assignment never
grants more than the writer's own policy. Real server, real mTLS, every legacy route
of the route table."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from conftest import PKI, RunningServer, config_yaml, start_server
from pykes.api.routes import LEGACY_HANDLERS, LEGACY_ROUTES

DENIED = (403, "not authorized: insufficient permissions")

# Safe on Go KES 63649d0: read-only key, policy and identity access, nothing more.
GO_SAFE = """\
  go-safe:
    allow: [/v1/key/*, /v1/policy/*, /v1/identity/*, /v1/status]
    deny: [/v1/key/decrypt/*, /v1/key/delete/*, /v1/key/create/*, /v1/key/import/*]
    identities: [{gosafe}]
  go-safe-logs:
    allow: [/v1/log/*]
    deny: [/v1/log/audit]
    identities: [{logs}]
  bulk:
    allow: [/v1/key/bulk/decrypt/*, /v1/key/decrypt/mine-*]
    identities: [{bulk}]
  team-writer:
    allow:
    - /v1/policy/write/team-*
    - /v1/policy/delete/team-*
    - /v1/identity/assign/*
    - /v1/identity/forget/*
    - /v1/key/describe/*
    - /v1/key/generate/team-*
    deny: [/v1/key/describe/secret-*]
    identities: [{writer}]
"""


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-legacy-authz")
    ids = {
        n: pki.client(f"legacy-authz-{n}").identity for n in ("gosafe", "logs", "bulk", "writer")
    }
    extra = "policy:\n" + GO_SAFE.format(**ids)
    server = start_server(
        root, pki, config_yaml(pki, pki.client("admin").identity, root / "k", extra)
    )
    with server.client(pki.client("admin")) as c:
        for name in ("victim", "mine-key"):
            assert c.post(f"/v1/key/create/{name}").status_code == 200
    yield server
    server.stop()


def _client(kes: RunningServer, pki: PKI, name: str) -> httpx.Client:
    return kes.client(pki.client(f"legacy-authz-{name}"))


def _error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["message"] if r.content else ""


def _ciphertexts(kes: RunningServer, pki: PKI, key: str) -> list[dict[str, str]]:
    with kes.client(pki.client("admin")) as admin:
        dek = admin.post(f"/v1/key/generate/{key}", json={}).json()
    return [{"ciphertext": dek["ciphertext"]}]


def test_no_legacy_route_grants_a_go_safe_policy_more(kes: RunningServer, pki: PKI) -> None:
    """Every route of LEGACY_ROUTES (a new one fails here until it is listed) answers
    the Go-safe identity 403, where Go KES answers 404."""
    other = pki.client("legacy-authz-second").identity
    calls = {
        "/v1/policy/write/": ("POST", "/v1/policy/write/pwn", {"allow": ["/v1/*"]}),
        "/v1/policy/delete/": ("DELETE", "/v1/policy/delete/go-safe-logs", None),
        "/v1/identity/assign/": ("POST", f"/v1/identity/assign/go-safe/{other}", None),
        "/v1/identity/forget/": ("DELETE", f"/v1/identity/forget/{other}", None),
        "/v1/key/bulk/decrypt/": (
            "POST",
            "/v1/key/bulk/decrypt/victim",
            _ciphertexts(kes, pki, "victim"),
        ),
        "/v1/log/audit/trace": ("GET", "/v1/log/audit/trace", None),
        "/v1/log/error/trace": ("GET", "/v1/log/error/trace", None),
    }
    assert set(calls) == {r.path for r in LEGACY_ROUTES}
    with _client(kes, pki, "gosafe") as c:
        for path, (method, url, body) in calls.items():
            r = c.request(method, url, json=body)
            assert _error(r) == DENIED, (path, r.status_code, r.text)
        assert _error(c.post("/v1/key/decrypt/victim", json={})) == DENIED  # as on Go
    with kes.client(pki.client("legacy-authz-second")) as second:  # nothing was assigned
        assert second.delete("/v1/key/delete/victim").status_code == 403
    with kes.client(pki.client("admin")) as admin:
        assert admin.get("/v1/policy/describe/pwn").status_code == 404


def test_old_response_forms_are_authorized_as_the_current_routes(
    kes: RunningServer, pki: PKI
) -> None:
    """The ``?legacy`` forms of current routes answer what the current route answers
    the same identity (the Go-safe policy allows them on Go too)."""
    urls = {
        "/v1/key/list/": "/v1/key/list/*",
        "/v1/policy/list/": "/v1/policy/list/*",
        "/v1/policy/read/": "/v1/policy/read/go-safe",
        "/v1/identity/list/": "/v1/identity/list/*",
        "/v1/identity/self/describe": "/v1/identity/self/describe",
    }
    assert set(urls) == set(LEGACY_HANDLERS)
    for name in ("gosafe", "logs"):
        with _client(kes, pki, name) as c:
            for url in urls.values():
                assert c.get(f"{url}?legacy").status_code == c.get(url).status_code, (name, url)


def test_a_legacy_glob_lists_only_under_an_allowed_prefix(kes: RunningServer, pki: PKI) -> None:
    """``/v1/key/list/<glob>?legacy`` stands for the current listing of the glob's
    literal prefix: ``[v]*`` lists every name starting with v, which needs
    ``/v1/key/list/*`` — not just a pattern that happens to match the glob's text."""
    with kes.client(pki.client("admin")) as admin:
        policy = {"allow": ["/v1/key/list/[*", "/v1/key/list/vic*"]}
        assert admin.post("/v1/policy/write/lister", json=policy).status_code == 200
        lister = pki.client("legacy-authz-lister")
        assert admin.post(f"/v1/identity/assign/lister/{lister.identity}").status_code == 200
    with kes.client(lister) as c:
        assert _error(c.get("/v1/key/list/[v]*?legacy")) == DENIED
        r = c.get("/v1/key/list/vic[t]*?legacy")
        assert (r.status_code, r.text) == (200, '{"name":"victim"}\n')


def test_legacy_streams_need_the_current_stream(kes: RunningServer, pki: PKI) -> None:
    with _client(kes, pki, "logs") as c:
        assert _error(c.get("/v1/log/audit/trace")) == DENIED
        assert _error(c.get("/v1/log/audit")) == DENIED
        with c.stream("GET", "/v1/log/error/trace") as r:
            assert r.status_code == 200


def test_bulk_decrypt_needs_decrypt_of_the_key(kes: RunningServer, pki: PKI) -> None:
    with _client(kes, pki, "bulk") as c:
        r = c.post("/v1/key/bulk/decrypt/victim", json=_ciphertexts(kes, pki, "victim"))
        assert _error(r) == DENIED
        r = c.post("/v1/key/bulk/decrypt/mine-key", json=_ciphertexts(kes, pki, "mine-key"))
        assert r.status_code == 200 and base64.b64decode(r.json()[0]["plaintext"])


@pytest.mark.parametrize(
    ("name", "policy", "status"),
    [
        ("team-a", {"allow": ["/v1/key/describe/*"], "deny": ["/v1/key/describe/secret-*"]}, 200),
        ("team-b", {"allow": ["/v1/key/describe/*"]}, 403),  # the writer's deny is missing
        ("team-c", {"allow": ["/v1/*"]}, 403),
        ("team-d", {"allow": ["/v1/policy/write/*"]}, 403),  # the writer's is team-* only
        ("team-e", {"allow": ["/v1/policy/write/team-e2", "/v1/key/generate/team-1"]}, 200),
        ("team-f", {"allow": ["/v1/policy/*"]}, 403),
        ("team-g", {"allow": ["/v1/key/describe/public-*", "/v1/key/describe/x"]}, 200),
        ("team-h", {"allow": ["/v1/key/describe/*"], "deny": ["/v1/key/describe/s*"]}, 200),
        ("team-i", {"allow": ["/v1/key/describe/secret-1"]}, 403),
        ("team-j", {"allow": ["/v1/identity/forget/*", "/v1/identity/*"]}, 403),
        ("other", {"allow": ["/v1/key/describe/x"]}, 403),  # not a team-* policy
    ],
)
def test_a_run_time_policy_never_grants_more_than_its_writer(
    kes: RunningServer, pki: PKI, name: str, policy: dict, status: int
) -> None:
    with _client(kes, pki, "writer") as c:
        r = c.post(f"/v1/policy/write/{name}", json=policy)
        assert r.status_code == status, r.text
        if status == 403:
            assert _error(r) == DENIED
    with kes.client(pki.client("admin")) as admin:
        assert admin.get(f"/v1/policy/describe/{name}").status_code == (
            200 if status == 200 else 404
        )


def test_assignments_never_grant_more_than_the_writer(kes: RunningServer, pki: PKI) -> None:
    helper = pki.client("legacy-authz-helper")
    with _client(kes, pki, "writer") as c:
        r = c.post("/v1/policy/write/team-small", json={"allow": ["/v1/key/describe/x"]})
        assert r.status_code == 200, r.text
        assert _error(c.post(f"/v1/identity/assign/go-safe/{helper.identity}")) == DENIED
        assert _error(c.post(f"/v1/identity/assign/bulk/{helper.identity}")) == DENIED
        r = c.post(f"/v1/identity/assign/team-small/{helper.identity}")
        assert r.status_code == 200, r.text
        assert c.delete(f"/v1/identity/forget/{helper.identity}").status_code == 200
        assert c.delete("/v1/policy/delete/team-small").status_code == 200
        assert _error(c.delete("/v1/policy/delete/go-safe-x")) == DENIED


def test_the_start_up_log_names_policies_that_reach_legacy_write_routes(
    kes: RunningServer, server_factory
) -> None:
    _, err = kes.output()
    lines = [line for line in err.splitlines() if "legacy write routes" in line]
    assert len(lines) == 1, err
    assert "'team-writer'" in lines[0] and "go-safe" not in lines[0]
    quiet = server_factory("policy:\n  p:\n    allow: [/v1/*]\n")
    off = server_factory("api:\n  legacy: off\npolicy:\n  p:\n    allow: [/v1/policy/write/*]\n")
    for server in (quiet, off):  # (started: the notice comes before serving)
        assert "legacy write routes" not in server.output()[1]
