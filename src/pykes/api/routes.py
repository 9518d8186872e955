"""The one route table (docs/compat/api.md §4): path, method, body limit, timeout, auth mode.

A new reader finds an endpoint's code from its URL here: every route names its
handler function, grouped by API family in ``pykes.api.handlers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from pykes.api.handlers import enclaves, identities, keys, legacy, logs, policies, rings, system
from pykes.api.messages import MAX_BODY, Handler, Route
from pykes.goformat.json import go_json

DEFAULT_ROUTES: tuple[Route, ...] = (
    Route("/version", "GET", system.version, timeout=10.0, auth="none"),
    Route("/v1/ready", "GET", system.ready),
    Route("/v1/status", "GET", system.status),
    Route("/v1/metrics", "GET", system.metrics),
    Route("/v1/api", "GET", system.api, timeout=10.0),
    Route("/v1/key/create/", "PUT", keys.create, counted=True),
    Route("/v1/key/import/", "PUT", keys.import_, max_body=MAX_BODY, counted=True),
    Route("/v1/key/describe/", "GET", keys.describe, counted=True),
    Route("/v1/key/list/", "GET", keys.list_, counted=True),
    Route("/v1/key/delete/", "DELETE", keys.delete, counted=True),
    Route("/v1/key/generate/", "PUT", keys.generate, max_body=MAX_BODY, counted=True),
    Route("/v1/key/encrypt/", "PUT", keys.encrypt, max_body=MAX_BODY, counted=True),
    Route("/v1/key/decrypt/", "PUT", keys.decrypt, max_body=MAX_BODY, counted=True),
    Route("/v1/key/hmac/", "PUT", keys.hmac, max_body=MAX_BODY, counted=True),
    Route("/v1/policy/describe/", "GET", policies.describe, counted=True),
    Route("/v1/policy/read/", "GET", policies.read, counted=True),
    Route("/v1/policy/list/", "GET", policies.list_, counted=True),
    Route("/v1/identity/describe/", "GET", identities.describe, counted=True),
    Route("/v1/identity/list/", "GET", identities.list_, counted=True),
    Route(
        "/v1/identity/self/describe", "GET", identities.self_describe, auth="identify", counted=True
    ),
    Route("/v1/log/error", "GET", logs.error_stream, timeout=0.0),
    Route("/v1/log/audit", "GET", logs.audit_stream, timeout=0.0),
)


# The legacy API (docs/compat/api.md §7, docs/legacy-api.md): on unless `api.legacy: off`. Not
# listed by /v1/api (which describes the current API, as the Go server does).
# Each is authorized by its own step (docs/legacy-api.md): the write routes only through
# patterns that name them, the others as the current route they stand for too.
_WRITE = legacy.authorize_write
LEGACY_ROUTES: tuple[Route, ...] = (
    Route("/v1/policy/write/", "POST", legacy.policy_write, max_body=MAX_BODY, counted=True,
          auth="legacy", authorize=_WRITE),
    Route("/v1/policy/delete/", "DELETE", legacy.policy_delete, counted=True, auth="legacy",
          authorize=_WRITE),
    Route("/v1/identity/assign/", "POST", legacy.identity_assign, counted=True, auth="legacy",
          authorize=_WRITE),
    Route("/v1/identity/forget/", "DELETE", legacy.identity_forget, counted=True, auth="legacy",
          authorize=_WRITE),
    Route("/v1/key/bulk/decrypt/", "POST", legacy.bulk_decrypt, max_body=MAX_BODY, counted=True,
          auth="legacy", authorize=legacy.authorize_as("/v1/key/decrypt/")),
    Route("/v1/log/audit/trace", "GET", legacy.audit_trace, timeout=0.0, auth="legacy",
          authorize=legacy.authorize_as("/v1/log/audit")),
    Route("/v1/log/error/trace", "GET", legacy.error_trace, timeout=0.0, auth="legacy",
          authorize=legacy.authorize_as("/v1/log/error")),
)  # fmt: skip
# Current routes that answer in an old form when the request asks (`?legacy`).
LEGACY_HANDLERS: dict[str, Handler] = {
    "/v1/key/list/": legacy.key_list,
    "/v1/policy/list/": legacy.policy_list,
    "/v1/policy/read/": legacy.policy_read,
    "/v1/identity/list/": legacy.identity_list,
    "/v1/identity/self/describe": legacy.self_describe,
}


# Stateful mode (docs/stateful.md): the key routes serve key rings, and these routes are
# served too (current API: listed by /v1/api). Enclave administration is the admin's
# and acts on the enclave its path names, whatever enclave the request selects.
_ADMIN = enclaves.admin_only
STATEFUL_ROUTES: tuple[Route, ...] = (
    Route("/v1/key/rotate/", "PUT", rings.rotate, counted=True),
    Route("/v1/key/version/delete/", "DELETE", rings.delete_version, counted=True),
    Route("/v1/key/version/minimum/", "PUT", rings.set_minimum, counted=True),
    Route("/v1/enclave/create/", "PUT", enclaves.create, counted=True, auth="admin",
          authorize=_ADMIN, in_enclave=False),
    Route("/v1/enclave/describe/", "GET", enclaves.describe, counted=True, auth="admin",
          authorize=_ADMIN, in_enclave=False),
    Route("/v1/enclave/delete/", "DELETE", enclaves.delete, counted=True, auth="admin",
          authorize=_ADMIN, in_enclave=False),
    Route("/v1/enclave/list/", "GET", enclaves.list_, counted=True, auth="admin",
          authorize=_ADMIN, in_enclave=False),
)  # fmt: skip
# The 2023 stateful API's policy and identity writes (what kms-go's Enclave sends,
# docs/stateful.md): legacy routes (not listed, off with `api.legacy: off`) of stateful
# mode, authorized as the other legacy write routes.
STATEFUL_LEGACY_ROUTES: tuple[Route, ...] = (
    Route("/v1/policy/create/", "PUT", legacy.policy_create, max_body=MAX_BODY, counted=True,
          auth="legacy", authorize=_WRITE),
    Route("/v1/policy/assign/", "POST", legacy.policy_assign, max_body=MAX_BODY, counted=True,
          auth="legacy", authorize=_WRITE),
    Route("/v1/identity/create/", "PUT", legacy.identity_create, max_body=MAX_BODY,
          counted=True, auth="legacy", authorize=_WRITE),
    Route("/v1/identity/delete/", "DELETE", legacy.identity_forget, counted=True,
          auth="legacy", authorize=_WRITE),
)  # fmt: skip
STATEFUL_HANDLERS: dict[str, Handler] = {
    "/v1/key/create/": rings.create,
    "/v1/key/import/": rings.import_,
    "/v1/key/describe/": rings.describe,
    "/v1/key/generate/": rings.generate,
    "/v1/key/encrypt/": rings.encrypt,
    "/v1/key/decrypt/": rings.decrypt,
    "/v1/key/hmac/": rings.hmac,
}


def kms_routes() -> tuple[Route, ...]:
    """The KMS API (docs/kms-api.md): stateful mode only, not listed by /v1/api (it is
    not the KES API). Its handlers, with the protobuf runtime, are imported here: a
    stateless server never loads them (tests/test_server_imports.py)."""
    from pykes.api.handlers import kms
    from pykes.kms.frames import MAX_BODY as MAX_KMS_BODY

    command = {
        "max_body": MAX_KMS_BODY,
        "counted": True,
        "auth": "admin",
        "authorize": kms.authorize,
        "in_enclave": False,
        "path_enclave": True,
        "answer_error": kms.answer_error,
    }
    return (
        Route("/v1/kms", "POST", kms.serve, **command),  # cluster and enclave commands
        Route("/v1/kms/", "POST", kms.serve, **command),  # /v1/kms/<enclave>
        Route("/v1/health/live", "GET", kms.live, timeout=10.0, auth="none"),
        Route("/v1/health/ready", "GET", kms.ready, timeout=10.0, auth="none"),
    )


@dataclass(frozen=True, slots=True)
class RouteOverride:
    skip_auth: bool = False
    timeout: float = 0.0  # > 0 replaces the route default


def _override(route: Route, o: RouteOverride | None) -> Route:
    if o is None:
        return route
    return replace(
        route,
        timeout=o.timeout if o.timeout > 0 else route.timeout,
        auth="identify" if o.skip_auth and route.auth == "policy" else route.auth,
    )


class RouteTable:
    """Route lookup with Go ``net/http.ServeMux`` semantics (docs/compat/api.md §3.1).

    ``routes`` are the current API (what ``/v1/api`` lists); with ``legacy`` (the
    default, ``api.legacy: off`` turns it off) the legacy routes are served as well;
    ``stateful`` adds stateful mode's routes and handlers, and the KMS API.
    """

    __slots__ = ("routes", "exact", "subtrees", "skip_auth_any", "legacy")

    def __init__(
        self,
        overrides: Mapping[str, RouteOverride] | None = None,
        legacy: bool = True,
        stateful: bool = False,
    ) -> None:
        overrides = overrides or {}
        routes = []
        for route in DEFAULT_ROUTES + STATEFUL_ROUTES * stateful:
            if stateful and route.path in STATEFUL_HANDLERS:
                route = replace(route, handler=STATEFUL_HANDLERS[route.path])
            if legacy and route.path in LEGACY_HANDLERS:
                route = replace(route, handler=LEGACY_HANDLERS[route.path])
            routes.append(_override(route, overrides.get(route.path)))
        self.routes: tuple[Route, ...] = tuple(routes)
        self.legacy = legacy
        old_api = LEGACY_ROUTES + STATEFUL_LEGACY_ROUTES * stateful
        served = routes + [_override(r, overrides.get(r.path)) for r in old_api] * legacy
        if stateful:
            served += kms_routes()
        self.exact: dict[str, Route] = {r.path: r for r in served}
        # Longest prefix first, like ServeMux's most-specific-pattern rule.
        self.subtrees: tuple[Route, ...] = tuple(
            sorted((r for r in served if r.subtree), key=lambda r: -len(r.path))
        )
        self.skip_auth_any = any(o.skip_auth for p, o in overrides.items() if p in self.exact)

    def listing(self) -> bytes:
        """The answer of ``/v1/api``: the current API's routes (docs/compat/api.md §5.5)."""
        return go_json(
            [
                {
                    "method": r.method,
                    "path": r.path,
                    "max_body": r.max_body,
                    "timeout": int(r.timeout),
                }
                for r in self.routes
            ]
        )

    def lookup(self, path: str) -> Route | None:
        """The route serving ``path`` (already cleaned), or None."""
        route = self.exact.get(path)
        if route is not None:
            return route
        # Fast path: "/v1/key/generate/<name>" → the prefix up to the last "/".
        route = self.exact.get(path[: path.rfind("/") + 1])
        if route is not None and route.subtree:
            return route
        for route in self.subtrees:
            if path.startswith(route.path):
                return route
        return None

    def redirect_target(self, path: str) -> str | None:
        """A subtree root requested without its trailing slash → the slash form."""
        route = self.exact.get(path + "/")
        if route is not None and route.subtree:
            return path + "/"
        return None
