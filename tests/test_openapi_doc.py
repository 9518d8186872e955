"""docs/openapi.yaml cannot drift from the route table (src/pykes/api/routes.py).

Every served route is documented with its method(s), body limit, timeout and auth mode,
and the document names no path or method that is not served. Legacy compatibility
aliases (docs/compat/api.md §7) and the KMS API (protobuf frames, docs/kms-api.md) are
the only routes allowed to be undocumented; they are listed explicitly below. The
document itself must be valid OpenAPI 3.1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from pykes.api import routes as routes_module
from pykes.api.routes import DEFAULT_ROUTES, STATEFUL_ROUTES, Route, RouteTable

DOC = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# Paths of older KES servers (docs/compat/api.md §7.1, §7.2) that pykes may serve as compatibility
# aliases. They are documented in docs/legacy-api.md, not in the OpenAPI document.
LEGACY_PREFIXES = (
    "/v1/key/bulk/decrypt/",
    "/v1/policy/write/",
    "/v1/policy/create/",  # the 2023 stateful API (kms-go Enclave), docs/stateful.md
    "/v1/policy/assign/",
    "/v1/policy/delete/",
    "/v1/identity/assign/",
    "/v1/identity/create/",
    "/v1/identity/delete/",
    "/v1/identity/forget/",
    "/v1/log/audit/trace",
    "/v1/log/error/trace",
    "/v1/secret/",
    "/v1/sys/seal",
)

# The KMS API (stateful mode): protobuf frames, not JSON; documented in docs/kms-api.md.
KMS_PATHS = ("/v1/kms", "/v1/kms/", "/v1/health/live", "/v1/health/ready")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC.read_text())


def _doc_prefix(path: str) -> str:
    """``/v1/key/create/{name}`` → ``/v1/key/create/`` (and ``…/{name}/{version}`` too);
    exact paths stay as they are."""
    return re.sub(r"(\{[^/}]+\}/)*\{[^/}]+\}$", "", path)


def _served_routes() -> list[Route]:
    """Every route the server can serve: the default table plus any other route tuple
    the routes module defines (e.g. legacy aliases)."""
    found: dict[tuple[str, str], Route] = {}
    table, stateful = RouteTable(), RouteTable(stateful=True)
    tables: list[tuple[Route, ...]] = [DEFAULT_ROUTES, table.routes, tuple(table.exact.values())]
    tables += [stateful.routes, tuple(stateful.exact.values())]
    for name in dir(routes_module):
        value = getattr(routes_module, name)
        if name.isupper() and isinstance(value, tuple) and value:
            tables += [value] if all(isinstance(r, Route) for r in value) else []
    for table in tables:
        for route in table:
            found[(route.path, route.method)] = route
    return list(found.values())


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(route prefix, METHOD)`` → operation object."""
    out = {}
    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                out[(_doc_prefix(path), method.upper())] = item[method]
    return out


def _not_in_openapi(path: str) -> bool:
    return path in KMS_PATHS or any(path == p or path.startswith(p) for p in LEGACY_PREFIXES)


def test_document_is_valid_openapi_31(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_served_route_is_documented(doc: dict[str, Any]) -> None:
    ops = _operations(doc)
    missing = []
    for route in _served_routes():
        if _not_in_openapi(route.path):
            continue
        methods = {route.method} | ({"POST"} if route.method == "PUT" else set())
        missing += [(route.path, m) for m in sorted(methods) if (route.path, m) not in ops]
    assert missing == []


def test_nothing_documented_that_is_not_served(doc: dict[str, Any]) -> None:
    served: set[tuple[str, str]] = set()
    for route in _served_routes():
        served.add((route.path, route.method))
        if route.method == "PUT":  # docs/compat/api.md §3: POST is accepted on every PUT route
            served.add((route.path, "POST"))
    extra = sorted(set(_operations(doc)) - served)
    assert extra == []


def test_route_attributes_match(doc: dict[str, Any]) -> None:
    ops = _operations(doc)
    for route in DEFAULT_ROUTES + STATEFUL_ROUTES:
        op = ops[(route.path, route.method)]
        assert op["x-kes-max-body"] == route.max_body, route.path
        assert op["x-kes-timeout"] == route.timeout, route.path
        assert op["x-kes-auth"] == route.auth, route.path
        assert op.get("x-kes-stateful", False) == (route in STATEFUL_ROUTES), route.path


def test_path_parameters_only_on_subtree_routes(doc: dict[str, Any]) -> None:
    by_prefix = {_doc_prefix(p): p for p in doc["paths"]}
    for route in DEFAULT_ROUTES + STATEFUL_ROUTES:
        path = by_prefix[route.path]
        assert (path != route.path) == route.subtree, path


def test_every_policy_route_documents_403_and_errors_use_the_error_schema(
    doc: dict[str, Any],
) -> None:
    ops = _operations(doc)
    error_refs = {"#/components/responses/Error", "#/components/responses/Forbidden"}
    for (path, method), op in ops.items():
        responses = op["responses"]
        if op["x-kes-auth"] == "policy":
            assert "403" in responses, (path, method)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            if "$ref" in response:
                assert response["$ref"] in error_refs, (path, method, status)
            else:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_security_is_mutual_tls(doc: dict[str, Any]) -> None:
    assert doc["security"] == [{"mutualTLS": []}]
    assert doc["components"]["securitySchemes"]["mutualTLS"]["type"] == "mutualTLS"


def test_name_pattern_agrees_with_the_server_validator(doc: dict[str, Any]) -> None:
    from pykes.names import valid_name, valid_pattern

    name_re = re.compile(doc["components"]["schemas"]["Name"]["pattern"])
    pattern_re = re.compile(doc["components"]["parameters"]["Pattern"]["schema"]["pattern"])
    samples = [
        "a", "_", "-", "a-", "-a", "a-b", "my_key", "x" * 80, "x" * 81, "a*", "_*", "*",
        "a-*", "a*b", "ab*", "é", "a b", "a/b", "a.b", "A_9-z", "__", "--", "a--b",
    ]  # fmt: skip
    for s in samples:
        assert bool(name_re.fullmatch(s)) == valid_name(s), s
        if s:  # the empty pattern cannot be a path parameter
            ok = bool(pattern_re.fullmatch(s)) and len(s) <= 80
            assert ok == valid_pattern(s), s
