"""The legacy API (docs/compat/api.md §7, docs/legacy-api.md) against real servers over real mTLS:
run-time policies and assignments (ephemeral, shared by every worker), bulk decrypt,
the trace streams, the old list and policy forms on request, and `api.legacy: off`."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import PKI, REPO, RunningServer, config_yaml, start_server

NOT_FOUND_404 = "404 page not found\n"
ALLOWED = "not authorized: insufficient permissions"

CONFIG_POLICY = (
    "policy:\n"
    "  from-config:\n"
    "    allow:\n"
    "    - /v1/key/describe/*\n"
    "    identities:\n"
    "    - {config_id}\n"
)


def _extra(pki: PKI, more: str = "") -> str:
    return CONFIG_POLICY.format(config_id=pki.client("legacy-config").identity) + more


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-legacy")
    admin = pki.client("admin").identity
    server = start_server(root, pki, config_yaml(pki, admin, root / "keys", _extra(pki)))
    yield server
    server.stop()


@pytest.fixture
def admin(kes: RunningServer, pki: PKI) -> Iterator[httpx.Client]:
    with kes.client(pki.client("admin")) as c:
        yield c


def _error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["message"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------ policies
def test_policy_write_read_describe_list_delete(admin: httpx.Client) -> None:
    # the ≤ v0.14 body: one `paths` list (= allow)
    r = admin.post("/v1/policy/write/old-form", json={"paths": ["/v1/key/generate/a*"]})
    assert (r.status_code, r.content) == (200, b"")
    r = admin.post(
        "/v1/policy/write/new-form",
        json={"allow": ["/v1/key/decrypt/*", "/v1/status"], "deny": ["/v1/key/decrypt/x"]},
    )
    assert r.status_code == 200

    body = admin.get("/v1/policy/read/new-form").json()  # the current shape by default
    assert body["allow"] == {"/v1/key/decrypt/*": {}, "/v1/status": {}}
    assert body["deny"] == {"/v1/key/decrypt/x": {}}
    assert body["created_by"] == admin_identity(admin)
    old = admin.get("/v1/policy/read/new-form?legacy").json()  # asked for: arrays
    assert old["allow"] == ["/v1/key/decrypt/*", "/v1/status"]
    assert old["deny"] == ["/v1/key/decrypt/x"]
    assert admin.get("/v1/policy/read/old-form").json()["allow"] == {"/v1/key/generate/a*": {}}
    # the current object form, field names in any case (Go), patterns kept as written
    r = admin.post("/v1/policy/write/obj-form", content=b'{"ALLOW":{"/v1/key/list/My-*":{}}}')
    assert r.status_code == 200
    assert admin.get("/v1/policy/read/obj-form").json()["allow"] == {"/v1/key/list/My-*": {}}
    assert admin.delete("/v1/policy/delete/obj-form").status_code == 200

    info = admin.get("/v1/policy/describe/old-form").json()
    assert info["name"] == "old-form" and info["created_by"] == admin_identity(admin)
    names = admin.get("/v1/policy/list/*").json()["names"]
    assert {"old-form", "new-form", "from-config"} <= set(names)

    # overwrite keeps the name, replaces the patterns
    assert admin.post("/v1/policy/write/old-form", json={"allow": ["/v1/api"]}).status_code == 200
    assert admin.get("/v1/policy/read/old-form").json()["allow"] == {"/v1/api": {}}

    assert admin.delete("/v1/policy/delete/old-form").status_code == 200
    assert _error(admin.get("/v1/policy/read/old-form")) == (404, "policy does not exist")
    assert _error(admin.delete("/v1/policy/delete/old-form")) == (404, "policy does not exist")
    assert "old-form" not in admin.get("/v1/policy/list/*").json()["names"]
    assert admin.delete("/v1/policy/delete/new-form").status_code == 200


def admin_identity(client: httpx.Client) -> str:
    return client.get("/v1/identity/self/describe").json()["identity"]


def test_policy_write_errors(admin: httpx.Client) -> None:
    bad = "policy name 'a b' is empty, too long or contains invalid characters"
    assert _error(admin.post("/v1/policy/write/a b", json={})) == (400, bad)
    for body in (
        b"{",
        b"[1]",
        b'{"allow":"x"}',
        b'{"allow":[1]}',
        b'{"paths":{"a":1},"deny":5}',
        b'{"allow":[NaN]}',
    ):
        r = admin.post("/v1/policy/write/p1", content=body)
        assert _error(r) == (400, "invalid request body"), body
    # the config file's policies can be neither overwritten nor deleted
    r = admin.post("/v1/policy/write/from-config", json={"allow": ["/v1/*"]})
    assert _error(r) == (400, "policy already exists")
    assert _error(admin.delete("/v1/policy/delete/from-config")) == (
        400,
        "cannot delete policy 'from-config': policy is defined in the config file",
    )
    assert admin.get("/v1/policy/read/from-config").json()["allow"] == {"/v1/key/describe/*": {}}
    r = admin.put("/v1/policy/write/p1", json={})
    assert _error(r) == (405, "received method 'PUT' expected 'POST'")
    assert _error(admin.get("/v1/identity/forget/x")) == (
        405,
        "received method 'GET' expected 'DELETE'",
    )


# ------------------------------------------------------------------ identities
def test_assigned_identity_is_authorized_for_key_operations(
    kes: RunningServer, admin: httpx.Client, pki: PKI
) -> None:
    app = pki.client("legacy-app")
    assert admin.post("/v1/key/create/app-key").status_code == 200
    with kes.client(app) as c:
        assert _error(c.post("/v1/key/generate/app-key", json={})) == (403, ALLOWED)
        assert _error(c.get("/v1/identity/self/describe")) == (404, "identity does not exist")

    policy = {"allow": ["/v1/key/generate/app-*", "/v1/key/decrypt/app-*"]}
    assert admin.post("/v1/policy/write/app-policy", json=policy).status_code == 200
    r = admin.post(f"/v1/identity/assign/app-policy/{app.identity}")
    assert (r.status_code, r.content) == (200, b"")

    with kes.client(app) as c:
        dek = c.post("/v1/key/generate/app-key", json={"context": _b64(b"ctx")}).json()
        r = c.post(
            "/v1/key/decrypt/app-key",
            json={"ciphertext": dek["ciphertext"], "context": _b64(b"ctx")},
        )
        assert r.json()["plaintext"] == dek["plaintext"]
        assert _error(c.post("/v1/key/create/app-other")) == (403, ALLOWED)  # not in the policy
        me = c.get("/v1/identity/self/describe").json()
        assert me["policy"] == "app-policy" and me["identity"] == app.identity
        assert me["allow"] == {"/v1/key/decrypt/app-*": {}, "/v1/key/generate/app-*": {}}
        old = c.get("/v1/identity/self/describe?legacy").json()  # the 2021–2023 shape
        assert (old["identity"], old["admin"], old["policy_name"]) == (
            app.identity,
            False,
            "app-policy",
        )
        assert old["policy"]["allow"] == ["/v1/key/decrypt/app-*", "/v1/key/generate/app-*"]
        assert old["policy"]["deny"] == [] and old["created_by"] == pki.client("admin").identity
    with kes.client(app, http2=True) as c:  # the same over HTTP/2
        r = c.post("/v1/key/generate/app-key", json={})
        assert r.http_version == "HTTP/2" and r.status_code == 200

    described = admin.get(f"/v1/identity/describe/{app.identity}").json()
    assert described["policy"] == "app-policy"
    assert described["created_by"] == admin_identity(admin)
    assert app.identity in admin.get("/v1/identity/list/*").json()["identities"]

    r = admin.delete(f"/v1/identity/forget/{app.identity}")
    assert (r.status_code, r.content) == (200, b"")
    with kes.client(app) as c:
        assert _error(c.post("/v1/key/generate/app-key", json={})) == (403, ALLOWED)
    assert _error(admin.delete(f"/v1/identity/forget/{app.identity}")) == (
        404,
        "identity does not exist",
    )
    assert app.identity not in admin.get("/v1/identity/list/*").json()["identities"]
    assert admin.delete("/v1/policy/delete/app-policy").status_code == 200


def test_assignment_rules(kes: RunningServer, admin: httpx.Client, pki: PKI) -> None:
    admin_id = pki.client("admin").identity
    config_id = pki.client("legacy-config").identity
    helper = pki.client("legacy-helper")
    other = pki.client("legacy-other").identity
    # (a write route is reached only through a pattern that names it, not "/v1/*")
    rules_a = {"allow": ["/v1/*", "/v1/identity/assign/*"]}
    assert admin.post("/v1/policy/write/rules-a", json=rules_a).status_code == 200
    assert admin.post("/v1/policy/write/rules-b", json={"allow": ["/v1/api"]}).status_code == 200

    assert _error(admin.post(f"/v1/identity/assign/rules-a/{admin_id}")) == (
        400,
        f"cannot assign policy 'rules-a' to '{admin_id}': identity is already admin",
    )
    assert _error(admin.post(f"/v1/identity/assign/rules-a/{config_id}")) == (
        400,
        f"cannot assign policy 'rules-a' to '{config_id}': identity already has a policy",
    )
    assert _error(admin.delete(f"/v1/identity/forget/{config_id}")) == (
        400,
        f"cannot forget identity '{config_id}': identity is assigned in the config file",
    )
    assert _error(admin.delete(f"/v1/identity/forget/{admin_id}")) == (
        400,
        f"cannot forget identity '{admin_id}': identity is admin",
    )
    assert _error(admin.post(f"/v1/identity/assign/nope/{other}")) == (
        404,
        "policy does not exist",
    )
    assert _error(admin.post("/v1/identity/assign/rules-a/a b")) == (
        400,
        "identity 'a b' is empty, too long or contains invalid characters",
    )
    assert _error(admin.post(f"/v1/identity/assign/rules-a/{other}/x")) == (
        400,
        f"identity '{other}/x' is empty, too long or contains invalid characters",
    )
    # the config file's policy can be assigned at run time, too
    assert admin.post(f"/v1/identity/assign/from-config/{other}").status_code == 200
    # one identity, one policy: a new assignment replaces the old one
    assert admin.post(f"/v1/identity/assign/rules-b/{other}").status_code == 200
    assert admin.get(f"/v1/identity/describe/{other}").json()["policy"] == "rules-b"

    # a non-admin allowed to assign may not assign itself
    assert admin.post(f"/v1/identity/assign/rules-a/{helper.identity}").status_code == 200
    with kes.client(helper) as c:
        assert _error(c.post(f"/v1/identity/assign/rules-b/{helper.identity}")) == (
            403,
            "identity cannot assign policy to itself",
        )
        assert c.post(f"/v1/identity/assign/rules-a/{other}").status_code == 200
    assert admin.get(f"/v1/identity/describe/{other}").json()["policy"] == "rules-a"

    # deleting a policy drops its run-time assignments
    assert admin.delete("/v1/policy/delete/rules-a").status_code == 200
    for ident in (other, helper.identity):
        assert _error(admin.get(f"/v1/identity/describe/{ident}")) == (
            404,
            "identity does not exist",
        )
    assert admin.delete("/v1/policy/delete/rules-b").status_code == 200


def test_policy_write_assigns_identities(kes: RunningServer, admin: httpx.Client, pki: PKI) -> None:
    ident = pki.client("legacy-body").identity
    body = {"paths": ["/v1/status"], "identities": [ident]}
    assert admin.post("/v1/policy/write/with-ids", json=body).status_code == 200
    with kes.client(pki.client("legacy-body")) as c:
        assert c.get("/v1/status").status_code == 200
        assert _error(c.get("/v1/api")) == (403, ALLOWED)
    admin_id = pki.client("admin").identity
    r = admin.post("/v1/policy/write/with-ids2", json={"allow": [], "identities": [admin_id]})
    assert _error(r) == (
        400,
        f"cannot assign policy 'with-ids2' to '{admin_id}': identity is already admin",
    )
    assert _error(admin.get("/v1/policy/read/with-ids2")) == (404, "policy does not exist")
    assert admin.delete("/v1/policy/delete/with-ids").status_code == 200


# ------------------------------------------------------------------ bulk decrypt
def test_bulk_decrypt(admin: httpx.Client) -> None:
    assert admin.post("/v1/key/create/bulk-key").status_code == 200
    items, plaintexts = [], []
    for i in range(5):
        ctx = _b64(f"object-{i}".encode())
        dek = admin.post("/v1/key/generate/bulk-key", json={"context": ctx}).json()
        items.append({"ciphertext": dek["ciphertext"], "context": ctx})
        plaintexts.append(dek["plaintext"])
    r = admin.post("/v1/key/bulk/decrypt/bulk-key", json=items)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == [{"plaintext": p} for p in plaintexts]
    assert admin.post("/v1/key/bulk/decrypt/bulk-key", json=[]).json() == []

    wrong = [*items[:2], {**items[2], "context": _b64(b"other")}, *items[3:]]
    r = admin.post("/v1/key/bulk/decrypt/bulk-key", json=wrong)  # one fails → all fail
    assert _error(r) == (400, "decryption failed: ciphertext is not authentic")
    r = admin.post("/v1/key/bulk/decrypt/bulk-key", json=[items[0]] * 1001)
    assert _error(r) == (400, "too many ciphertexts")
    assert admin.post("/v1/key/bulk/decrypt/bulk-key", json=[items[0]] * 1000).status_code == 200
    for body in (b"{}", b'[{"ciphertext":"a-_"}]', b"[1]", b"x"):
        r = admin.post("/v1/key/bulk/decrypt/bulk-key", content=body)
        assert _error(r) == (400, "invalid request body"), body
    assert _error(admin.post("/v1/key/bulk/decrypt/nokey", json=items[:1])) == (
        404,
        "key does not exist",
    )


# ------------------------------------------------------------------ log traces
def test_trace_streams(kes: RunningServer, admin: httpx.Client, pki: PKI) -> None:
    with kes.client(pki.client("admin")) as sub:
        with sub.stream("GET", "/v1/log/audit/trace") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "application/x-ndjson"
            deadline = time.monotonic() + 10
            lines = stream.iter_lines()
            while time.monotonic() < deadline:
                admin.get("/v1/key/describe/trace-probe")
                event = json.loads(next(lines))
                if event["request"]["path"] == "/v1/key/describe/trace-probe":
                    assert event["response"]["code"] == 404
                    break
            else:
                pytest.fail("no audit event")
        with sub.stream("GET", "/v1/log/error/trace") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "application/x-ndjson"
    with kes.client(pki.client("legacy-nobody")) as c:
        assert _error(c.get("/v1/log/audit/trace")) == (403, ALLOWED)


# ------------------------------------------------------------------ old list forms
def test_old_list_forms_on_request(kes: RunningServer, admin: httpx.Client, pki: PKI) -> None:
    for name in ("glob-a1", "glob-a2", "glob-b1"):
        assert admin.post(f"/v1/key/create/{name}").status_code in (200, 400)
    r = admin.get("/v1/key/list/glob-a*")  # default: unchanged
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"names": ["glob-a1", "glob-a2"]}
    r = admin.get("/v1/key/list/glob-%3F1", params={"legacy": ""})  # glob-?1
    assert r.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in r.text.splitlines()] == [
        {"name": "glob-a1"},
        {"name": "glob-b1"},
    ]
    r = admin.get("/v1/key/list/glob-[^a]*?legacy=1")
    assert [json.loads(line) for line in r.text.splitlines()] == [{"name": "glob-b1"}]
    assert admin.get("/v1/key/list/glob-a*?legacy=off").json() == {"names": ["glob-a1", "glob-a2"]}

    r = admin.get("/v1/policy/list/from-*?legacy")
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.text == '{"name":"from-config"}\n'
    with kes.client(pki.client("admin"), http2=True) as h2:  # the marker over HTTP/2 too
        r = h2.get("/v1/policy/list/from-*?legacy")
        assert r.http_version == "HTTP/2" and r.text == '{"name":"from-config"}\n'
    admin_id = admin_identity(admin)
    r = admin.get(f"/v1/identity/list/{admin_id[:8]}*?legacy")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == 1 and rows[0]["identity"] == admin_id and rows[0]["admin"] is True
    assert set(rows[0]) == {"identity", "admin", "policy", "created_at", "created_by"}


# ------------------------------------------------------------------ api.legacy: off
LEGACY_ROUTES = (
    ("POST", "/v1/policy/write/x"),
    ("GET", "/v1/policy/read/x"),  # (a current route: 404 policy, not 404 page)
    ("DELETE", "/v1/policy/delete/x"),
    ("POST", "/v1/identity/assign/x/y"),
    ("DELETE", "/v1/identity/forget/y"),
    ("POST", "/v1/key/bulk/decrypt/x"),
    ("GET", "/v1/log/audit/trace"),
    ("GET", "/v1/log/error/trace"),
)


def test_legacy_off_answers_like_unknown_paths(server_factory, pki: PKI) -> None:
    server = server_factory(_extra(pki, "api:\n  legacy: off\n"))
    with server.client(pki.client("admin")) as c:
        for method, path in LEGACY_ROUTES:
            r = c.request(method, path, json=[] if method == "POST" else None)
            if path.startswith("/v1/policy/read/"):
                assert _error(r) == (404, "policy does not exist")
                continue
            assert r.status_code == 404, path
            assert r.text == NOT_FOUND_404
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
        r = c.get("/v1/policy/read/from-config?legacy")  # the marker is ignored
        assert r.json()["allow"] == {"/v1/key/describe/*": {}}
        r = c.get("/v1/policy/list/*?legacy")
        assert r.headers["content-type"] == "application/json"


def test_legacy_config_value_is_checked(tmp_path, pki: PKI) -> None:
    from pykes.config import parse_config

    base = config_yaml(pki, "x", tmp_path)
    assert parse_config(base).api_legacy is True
    assert parse_config(base + "api:\n  legacy: off\n").api_legacy is False
    assert parse_config(base + "api:\n  legacy: on\n").api_legacy is True
    with pytest.raises(Exception, match="invalid legacy 'sometimes'"):
        parse_config(base + "api:\n  legacy: sometimes\n")


# ------------------------------------------------------------------ lifetime
def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.05)


def test_sighup_keeps_and_restart_loses_ephemeral_state(
    server_factory, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYKES_EPHEMERAL_BYTES", "2000")  # a small store, to fill it
    server = server_factory(_extra(pki))
    app = pki.client("legacy-restart")
    with server.client(pki.client("admin")) as c:
        assert c.post("/v1/policy/write/eph", json={"allow": ["/v1/status"]}).status_code == 200
        assert c.post(f"/v1/identity/assign/eph/{app.identity}").status_code == 200
        r = c.post("/v1/policy/write/huge", json={"allow": ["/v1/key/generate/" + "x" * 2000]})
        assert _error(r) == (
            400,
            "ephemeral policy store is full (2000 bytes): "
            "delete policies or forget identities first",
        )
        assert _error(c.get("/v1/policy/read/huge")) == (404, "policy does not exist")
    server.proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: "Reloading configuration after SIGHUP" in server.output()[1])
    with server.client(app) as c:
        assert c.get("/v1/status").status_code == 200

    server.stop()
    again = start_server(server.config.parent, pki, server.config.read_text())
    try:
        with again.client(pki.client("admin")) as c:
            assert _error(c.get("/v1/policy/read/eph")) == (404, "policy does not exist")
            assert _error(c.get(f"/v1/identity/describe/{app.identity}")) == (
                404,
                "identity does not exist",
            )
        with again.client(app) as c:
            assert _error(c.get("/v1/status")) == (403, ALLOWED)
    finally:
        again.stop()


@pytest.mark.parametrize("workers", [2, 4])
def test_every_worker_sees_writes_at_once(server_factory, pki: PKI, workers: int) -> None:
    """Each check uses a fresh TLS connection (SO_REUSEPORT spreads them over the
    workers) right after the write was acknowledged on another connection."""
    server = server_factory(_extra(pki), workers=workers)
    app = pki.client("legacy-workers")
    fresh = 6 * workers

    def on_fresh_connections(ident, method: str, path: str, **kw) -> list[int]:
        codes = []
        for _ in range(fresh):
            with server.client(ident) as c:
                codes.append(c.request(method, path, **kw).status_code)
        return codes

    with server.client(pki.client("admin")) as admin:
        assert admin.post("/v1/key/create/w-key").status_code == 200
        policy = {"allow": ["/v1/key/generate/w-*"]}
        assert admin.post("/v1/policy/write/w-policy", json=policy).status_code == 200
        assert admin.post(f"/v1/identity/assign/w-policy/{app.identity}").status_code == 200
        codes = on_fresh_connections(app, "POST", "/v1/key/generate/w-key", json={})
        assert codes == [200] * fresh

        policy = {"allow": ["/v1/key/generate/other-*"]}  # overwrite: w-key no longer allowed
        assert admin.post("/v1/policy/write/w-policy", json=policy).status_code == 200
        codes = on_fresh_connections(app, "POST", "/v1/key/generate/w-key", json={})
        assert codes == [403] * fresh

        assert admin.delete(f"/v1/identity/forget/{app.identity}").status_code == 200
        admin_ident = pki.client("admin")
        codes = on_fresh_connections(admin_ident, "GET", f"/v1/identity/describe/{app.identity}")
        assert codes == [404] * fresh

        assert admin.delete("/v1/policy/delete/w-policy").status_code == 200
        codes = on_fresh_connections(admin_ident, "GET", "/v1/policy/read/w-policy")
        assert codes == [404] * fresh

    # concurrent writers on different workers lose no write (one lock across processes)
    def write(i: int) -> int:
        with server.client(pki.client("admin")) as c:
            return c.post(f"/v1/policy/write/c-{i}", json={"allow": [f"/v1/{i}"]}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(write, range(40))) == [200] * 40
    for _ in range(workers):
        with server.client(pki.client("admin")) as c:
            names = c.get("/v1/policy/list/c-*").json()["names"]
            assert sorted(names) == sorted(f"c-{i}" for i in range(40))


# ------------------------------------------------------------------ the shared store
def test_store_survives_a_failed_write_and_is_bounded() -> None:
    from pykes.auth.ephemeral import Assignment, EphemeralPolicy, EphemeralStore, StoreFullError
    from pykes.auth.policy import Policy

    store = EphemeralStore(capacity=300)
    entry = EphemeralPolicy(Policy("p", ("/v1/status",)), 1, "admin")
    store.update(lambda pols, assigned: pols.__setitem__("p", entry))

    def too_big(pols: dict, assigned: dict) -> None:
        for i in range(20):
            assigned[f"{i:064x}"] = Assignment("p", 1, "admin")

    with pytest.raises(StoreFullError):
        store.update(too_big)

    def failing(pols: dict, assigned: dict) -> None:
        pols.clear()
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        store.update(failing)
    snap = store.snapshot()
    assert dict(snap.policies) == {"p": entry} and dict(snap.assignments) == {}
    assert snap.generation == 1


# ------------------------------------------------------------------ docs/legacy-api.md
@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_every_curl_of_the_doc_runs(kes: RunningServer, admin: httpx.Client, pki: PKI) -> None:
    """The sh blocks of docs/legacy-api.md's endpoint section, in order, with `set -e`
    (every curl uses -f: any 4xx/5xx fails the script)."""
    doc = (REPO / "docs" / "legacy-api.md").read_text()
    section = doc.split("## Endpoints", 1)[1].split("## Not served", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks[0].startswith("export KES=") and len(blocks) >= 7
    a, app = pki.client("admin"), pki.client("legacy-doc")
    env = {
        **os.environ,
        "KES": kes.url,
        "ADMIN": f"--cert {a.cert_file} --key {a.key_file}",
        "APP_ID": app.identity,
    }
    script = "set -eo pipefail\n" + "".join(blocks[1:])
    script = script.replace(
        "--cert app.crt --key app.key", f"--cert {app.cert_file} --key {app.key_file}"
    )
    run = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert '{"name":"my-app-key"}\n' in run.stdout
    assert '"allow":["/v1/key/bulk/decrypt/my-app-*",' in run.stdout
    assert '{"policy":"my-app","created_at":' in run.stdout
    assert re.search(r'^\[\{"plaintext":"[A-Za-z0-9+/]{43}="\}\]$', run.stdout, re.M)
    assert '"policy_name":"my-app","created_at":' in run.stdout
    assert _error(admin.get("/v1/policy/read/my-app")) == (404, "policy does not exist")
    assert _error(admin.get(f"/v1/identity/describe/{app.identity}"))[0] == 404
