"""The legacy API of the v0.x and 2021–2023 servers (docs/compat/api.md §7, docs/legacy-api.md).

Run-time policies and assignments (``/v1/policy/write|delete``,
``/v1/identity/assign|forget``) live in the shared :class:`EphemeralStore`: lost at
restart, seen by every worker at once. In stateful mode they are kept in the request's
enclave instead (docs/stateful.md). The config file stays authoritative: its
policies cannot be overwritten or deleted and its identities cannot be re-assigned
or forgotten through the API; the admin can never be assigned.

Old response forms (ndjson lists, policy read with string arrays) are served only when
the request asks for them with the ``legacy`` query parameter (``?legacy``); without
it every current route answers exactly as before.

No policy that is safe on Go KES grants more here (docs/legacy-api.md, authorization):
a legacy route is authorized as the current route it stands for too, the write routes
only through patterns that name them, and nothing written grants more than its writer.
"""

from __future__ import annotations

import json
import sys
import time
from base64 import b64encode
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from pykes.api.handlers import identities, keys, logs, policies, rings
from pykes.api.handlers.common import INVALID_BODY, query_flag, require_name
from pykes.api.handlers.globs import compile_glob, literal_prefix
from pykes.api.messages import EMPTY_OK, JSON, NDJSON, Request, Response, StreamResponse
from pykes.auth.ephemeral import Assignment, EphemeralPolicy, EphemeralStore, StoreFullError
from pykes.auth.policy import Policy
from pykes.crypto import wipe
from pykes.errors import APIError, IdentityNotFoundError, PolicyNotFoundError
from pykes.goformat.json import BodyError, b64decode_std, go_json
from pykes.goformat.timestamp import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.messages import Handler
    from pykes.auth.authorizer import Authorizer

MAX_BULK = 1000  # ciphertexts per bulk decrypt (docs/compat/api.md §7.1)


# ----------------------------------------------------------------- authorization
WRITE_ROUTES = ("/v1/policy/write/", "/v1/policy/delete/", "/v1/identity/assign/",
                "/v1/identity/forget/", "/v1/policy/create/", "/v1/policy/assign/",
                "/v1/identity/create/", "/v1/identity/delete/")  # fmt: skip
"""Reached only by the admin and through patterns that name them (never a wildcard
written for the current API, which Go KES 404s here)."""


def authorize_write(authorizer: Authorizer, req: Request) -> None:
    """The authorization step of a legacy write route (``Route.authorize``)."""
    assert req.route is not None
    authorizer.authorize_explicitly(req.identity, req.path, req.route.path)


def authorize_as(current: str) -> Callable[[Authorizer, Request], None]:
    """The authorization step of a legacy route that stands for the current route
    ``current`` (+ the resource): both paths must be allowed."""

    def authorize(authorizer: Authorizer, req: Request) -> None:
        authorizer.authorize(req.identity, req.path)
        authorizer.authorize(req.identity, current + req.resource)

    return authorize


def write_routes_notice(policies: Mapping[str, Policy], legacy: bool) -> str | None:
    """The start-up line that says which config policies let non-admin identities
    write run-time policies and assignments (None: only the admin can)."""
    names = [
        name
        for name, policy in sorted(policies.items())
        if any((p[:-1] if p.endswith("*") else p).startswith(WRITE_ROUTES) for p in policy.allow)
    ]
    if not legacy or not names:
        return None
    return (
        "WARNING: legacy write routes (run-time policies and assignments) are reachable by "
        f"non-admin identities through the policies {', '.join(map(repr, names))}: each can "
        "grant no more than its own policy (docs/legacy-api.md; 'api: legacy: off' turns "
        "the legacy API off)"
    )


def _authorize_grant(ctx: Context, req: Request, policy: Policy) -> None:
    ctx.authorizer.authorize_grant(req.identity, policy, WRITE_ROUTES)


# ----------------------------------------------------------------- request signals
def wants_legacy(req: Request) -> bool:
    """``?legacy`` (or ``?legacy=1|true|on``) asks for the old response form."""
    return query_flag(req.query, "legacy")


def _store(ctx: Context) -> EphemeralStore:
    store = ctx.authorizer.ephemeral
    if not isinstance(store, EphemeralStore):  # a ctx built without one (tests, tools)
        raise APIError(501, "not implemented")
    return store


def _update(ctx: Context, change: Any) -> None:
    try:
        _store(ctx).update(change)
    except StoreFullError as err:
        raise APIError(400, str(err)) from None


# ----------------------------------------------------------------- body parsing
def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _first_json_value(body: bytes) -> Any:
    """The first JSON value of a body (Go's ``json.Decoder``); ValueError otherwise."""
    text = body.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    value, _ = _DECODER.raw_decode(text, start)
    return value


def _field(obj: dict[str, Any], name: str) -> Any:
    """A struct field the Go way: the exact key, else a case-insensitive match."""
    if name in obj:
        return obj[name]
    found = None
    for key, value in obj.items():
        if key.casefold() == name:
            found = value
    return found


def _patterns(value: Any) -> tuple[str, ...]:
    """A pattern list: an array of strings (old form) or an object whose keys are the
    patterns (the current ``{"<pattern>":{}}`` form); null → none."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise BodyError("patterns must be strings")
    return tuple(value)


def _policy_body(req: Request) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """allow, deny and identities of a policy body: ``{"allow":…,"deny":…}`` or the
    ≤ v0.14 ``{"paths":[…],"identities":[…]}`` (paths = allow)."""
    if req.body_too_large:
        raise APIError(400, INVALID_BODY)
    try:
        doc = _first_json_value(req.body)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise BodyError("not an object")
        allow = _patterns(_field(doc, "allow")) + _patterns(_field(doc, "paths"))
        deny = _patterns(_field(doc, "deny"))
        idents = _patterns(_field(doc, "identities"))
    except (ValueError, RecursionError):  # BodyError is a ValueError
        raise APIError(400, INVALID_BODY) from None
    return allow, deny, idents


# ----------------------------------------------------------------- policies
def _check_assignable(ctx: Context, req: Request, policy: str, identity: str) -> None:
    require_name("identity", identity)
    if ctx.authorizer.is_admin(identity):
        raise APIError(
            400, f"cannot assign policy '{policy}' to '{identity}': identity is already admin"
        )
    if identity in ctx.authorizer.assignments:
        raise APIError(
            400,
            f"cannot assign policy '{policy}' to '{identity}': identity already has a policy",
        )
    proxy = getattr(ctx, "proxy", None)  # tls.proxy (docs/compat/auth.md §10), when configured
    if proxy is not None and identity in proxy.identities:
        raise APIError(
            400, f"cannot assign policy '{policy}' to '{identity}': identity is a TLS proxy"
        )
    if identity == req.identity:
        raise APIError(403, "identity cannot assign policy to itself")


def _checked_policy(ctx: Context, req: Request) -> tuple[Policy, tuple[str, ...]]:
    """The policy a write route's body defines and the identities it assigns, once the
    writer may grant them."""
    name = require_name("policy name", req.resource)
    allow, deny, idents = _policy_body(req)
    if name in ctx.policies:
        raise APIError(400, "policy already exists")  # the config file's; SDK ErrPolicyExists
    written = Policy(name, allow, deny)
    _authorize_grant(ctx, req, written)
    for identity in idents:
        _check_assignable(ctx, req, name, identity)
    return written, idents


async def policy_write(ctx: Context, req: Request) -> Response:
    """``POST /v1/policy/write/{name}``: create or replace an ephemeral policy; the
    identities already assigned to it stay assigned."""
    written, idents = _checked_policy(ctx, req)
    name, allow, deny = written.name, written.allow, written.deny
    if ctx.enclaves is not None:  # stateful mode: kept in the enclave
        await ctx.enclaves.write_policy(ctx.tenant, name, allow, deny, idents, req.identity)
        return EMPTY_OK
    now, by = time.time_ns(), req.identity
    policy = EphemeralPolicy(written, now, by)

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        pols[name] = policy
        for identity in idents:
            assigned[identity] = Assignment(name, now, by)

    _update(ctx, change)
    return EMPTY_OK


async def policy_delete(ctx: Context, req: Request) -> Response:
    """``DELETE /v1/policy/delete/{name}``: the policy and its run-time assignments."""
    name = require_name("policy name", req.resource)
    if name in ctx.policies:
        raise APIError(400, f"cannot delete policy '{name}': policy is defined in the config file")
    if ctx.enclaves is not None:  # stateful mode: kept in the enclave
        await ctx.enclaves.delete_policy(ctx.tenant, name)
        return EMPTY_OK

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        if pols.pop(name, None) is None:
            raise PolicyNotFoundError()
        for identity in [i for i, a in assigned.items() if a.policy == name]:
            del assigned[identity]

    _update(ctx, change)
    return EMPTY_OK


async def policy_read(ctx: Context, req: Request) -> Response:
    """``GET /v1/policy/read/{name}``: the current shape, or with ``?legacy`` the old
    one (``allow``/``deny`` as arrays of strings, docs/compat/api.md §7.1)."""
    if not wants_legacy(req):
        return await policies.read(ctx, req)
    found = policies.lookup(ctx, req.resource)
    out: dict[str, object] = {"name": found.policy.name}
    out["allow"] = sorted(set(found.policy.allow))
    out["deny"] = sorted(set(found.policy.deny))
    out["created_at"] = format_rfc3339_nano(found.created_at_ns, local=True)
    out["created_by"] = found.created_by
    return Response(200, go_json(out))


# ----------------------------------------------------------------- identities
async def self_describe(ctx: Context, req: Request) -> Response:
    """``GET /v1/identity/self/describe``: with ``?legacy`` the 2021–2023 shape
    (``policy_name`` plus a nested ``policy`` with string arrays, docs/compat/api.md §7.1)."""
    if not wants_legacy(req):
        return await identities.self_describe(ctx, req)
    identity = req.identity
    if identity and ctx.authorizer.is_admin(identity):
        created_at = format_rfc3339_nano(ctx.facts.start_ns, local=True)
        return Response(
            200, go_json({"identity": identity, "admin": True, "created_at": created_at})
        )
    found = identities.assigned(ctx, identity) if identity else None
    if found is None:
        raise IdentityNotFoundError()
    policy, at, by = found
    entry = policies.lookup(ctx, policy.name)
    created_at = format_rfc3339_nano(at, local=True)
    out = {
        "identity": identity,
        "admin": False,
        "policy_name": policy.name,
        "created_at": created_at,
        "created_by": by,
        "policy": {
            "allow": sorted(set(policy.allow)),
            "deny": sorted(set(policy.deny)),
            "created_at": format_rfc3339_nano(entry.created_at_ns, local=True),
            "created_by": entry.created_by,
        },
    }
    return Response(200, go_json(out))


def _split_assign(resource: str) -> tuple[str, str]:
    policy, _, identity = resource.partition("/")
    require_name("policy name", policy)
    require_name("identity", identity)
    return policy, identity


async def identity_assign(ctx: Context, req: Request) -> Response:
    """``POST /v1/identity/assign/{policy}/{identity}``: one policy per identity; a
    run-time assignment replaces the identity's previous run-time assignment."""
    policy, identity = _split_assign(req.resource)
    return await _assign(ctx, req, policy, identity)


async def _assign(
    ctx: Context, req: Request, policy: str, identity: str, *, new: bool = False
) -> Response:
    """Assign ``policy`` to ``identity`` (``new``: an identity not assigned yet)."""
    _authorize_grant(ctx, req, policies.lookup(ctx, policy).policy)  # 404 if unknown
    _check_assignable(ctx, req, policy, identity)
    now, by = time.time_ns(), req.identity
    in_config = policy in ctx.policies
    if ctx.enclaves is not None:  # stateful mode: kept in the enclave
        await ctx.enclaves.assign(ctx.tenant, identity, policy, by, stored=not in_config, new=new)
        return EMPTY_OK

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        if not in_config and policy not in pols:
            raise PolicyNotFoundError()
        assigned[identity] = Assignment(policy, now, by)

    _update(ctx, change)
    return EMPTY_OK


async def identity_forget(ctx: Context, req: Request) -> Response:
    """``DELETE /v1/identity/forget/{identity}``: drop a run-time assignment."""
    identity = require_name("identity", req.resource)
    if ctx.authorizer.is_admin(identity):
        raise APIError(400, f"cannot forget identity '{identity}': identity is admin")
    if identity in ctx.authorizer.assignments:
        raise APIError(
            400,
            f"cannot forget identity '{identity}': identity is assigned in the config file",
        )
    if ctx.enclaves is not None:  # stateful mode: kept in the enclave
        await ctx.enclaves.forget(ctx.tenant, identity)
        return EMPTY_OK

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        if assigned.pop(identity, None) is None:
            raise IdentityNotFoundError()

    _update(ctx, change)
    return EMPTY_OK


# ----------------------------------------------------------------- the 2023 stateful API
# What kms-go's ``Enclave`` (up to 6b500c0) sends for policies and identities; served in
# stateful mode only, in the request's enclave, authorized as the write routes above.
_ZERO_TTL = ("", "0", "0s")  # Go's time.Duration(0).String() is "0s"


def _body_object(req: Request) -> dict[str, Any]:
    if req.body_too_large:
        raise APIError(400, INVALID_BODY)
    try:
        doc = _first_json_value(req.body)
    except (ValueError, RecursionError):
        raise APIError(400, INVALID_BODY) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise APIError(400, INVALID_BODY)
    return doc


def _body_string(doc: dict[str, Any], name: str) -> str:
    value = _field(doc, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise APIError(400, INVALID_BODY)
    return value


def _stateful(ctx: Context) -> None:
    if ctx.enclaves is None:  # (routed in stateful mode only)
        raise APIError(501, "not implemented")


async def policy_create(ctx: Context, req: Request) -> Response:
    """``PUT /v1/policy/create/{name}`` (``Enclave.CreatePolicy``): a new policy,
    ``400 policy already exists`` if there is one. The SDK sends its ``Policy`` struct
    as Go marshals it (``Allow``/``Deny`` keys), which the body parser accepts."""
    _stateful(ctx)
    written, idents = _checked_policy(ctx, req)
    assert ctx.enclaves is not None
    await ctx.enclaves.write_policy(
        ctx.tenant, written.name, written.allow, written.deny, idents, req.identity, new=True
    )
    return EMPTY_OK


async def policy_assign(ctx: Context, req: Request) -> Response:
    """``POST /v1/policy/assign/{policy}`` with ``{"identity":"<id>"}``
    (``Enclave.AssignPolicy``): as ``/v1/identity/assign/{policy}/{identity}``."""
    _stateful(ctx)
    policy = require_name("policy name", req.resource)
    identity = _body_string(_body_object(req), "identity")
    return await _assign(ctx, req, policy, identity)


async def identity_create(ctx: Context, req: Request) -> Response:
    """``PUT /v1/identity/create/{identity}`` with ``{"policy","admin","ttl"}``
    (``Enclave.CreateIdentity``): a new identity assigned to ``policy``; ``400 identity
    already exists`` if it has one. The server's one admin is ``admin.identity``, and
    identities do not expire: ``admin`` true or a TTL other than zero is a 400."""
    _stateful(ctx)
    identity = require_name("identity", req.resource)
    doc = _body_object(req)
    admin = _field(doc, "admin")
    if admin not in (None, False):
        raise APIError(400, "cannot create an admin identity: the admin is 'admin.identity'")
    if _body_string(doc, "ttl") not in _ZERO_TTL:
        raise APIError(400, "identities with a TTL are not supported")
    policy = require_name("policy name", _body_string(doc, "policy"))
    return await _assign(ctx, req, policy, identity, new=True)


# ----------------------------------------------------------------- log traces
async def audit_trace(ctx: Context, req: Request) -> StreamResponse:
    """``GET /v1/log/audit/trace``: the ``/v1/log/audit`` stream."""
    return await logs.audit_stream(ctx, req)


async def error_trace(ctx: Context, req: Request) -> StreamResponse:
    """``GET /v1/log/error/trace``: the ``/v1/log/error`` stream."""
    return await logs.error_stream(ctx, req)


# ----------------------------------------------------------------- bulk decrypt
def _bulk_body(req: Request) -> list[tuple[bytes, bytes]]:
    if req.body_too_large:
        raise APIError(400, INVALID_BODY)
    try:
        doc = _first_json_value(req.body)
        if doc is None:
            doc = []
        if not isinstance(doc, list):
            raise BodyError("not an array")
        if len(doc) > MAX_BULK:
            raise APIError(400, "too many ciphertexts")
        out = []
        for item in doc:
            if item is None:
                item = {}
            if not isinstance(item, dict):
                raise BodyError("not an object")
            out.append((_bytes(_field(item, "ciphertext")), _bytes(_field(item, "context"))))
    except (ValueError, RecursionError):
        raise APIError(400, INVALID_BODY) from None
    return out


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BodyError("not a string")
    return b64decode_std(value)


async def bulk_decrypt(ctx: Context, req: Request) -> Response:
    """``POST /v1/key/bulk/decrypt/{name}``: ≤ 1000 ``{ciphertext, context}`` → the
    ``{plaintext}`` of each, in order; any failure fails the whole call."""
    name = require_name("key name", req.resource)
    items = _bulk_body(req)
    key = await keys.load_key(ctx, req, name)
    decrypt: Callable[[bytes, bytes], bytearray]
    if ctx.enclaves is not None:  # stateful mode: a key ring, each item finds its version
        decrypt = partial(rings.decrypt_with, key, version="")
    else:
        decrypt = key.decrypt
    parts = []
    for ct, context in items:
        plaintext = decrypt(ct, context)  # DecryptError (400) fails the whole call
        try:  # a bytearray, wiped here; its base64 form goes out
            parts.append(b'{"plaintext":"' + b64encode(plaintext) + b'"}')
        finally:
            wipe(plaintext)
    return Response(200, b"[" + b",".join(parts) + b"]\n", JSON)


# ----------------------------------------------------------------- old list forms
def _glob(ctx: Context, req: Request) -> Callable[[str], object]:
    """The matcher of a list form's glob (handlers/globs.py), checked before any use.
    The request stands for the current listing of the glob's literal prefix (every
    name it matches starts with it), which the policy must allow too."""
    route = req.route
    if route is not None and route.auth == "policy":  # (403 before 400, as everywhere)
        current = f"{route.path}{literal_prefix(req.resource)}*"
        ctx.authorizer.authorize(req.identity, current)
    compiled = compile_glob(req.resource)
    if compiled is None:
        raise APIError(400, f"listing pattern '{req.resource}' is empty, too long or is invalid")
    return compiled.fullmatch


def _ndjson(items: list[dict[str, object]]) -> Response:
    response = Response(200, b"".join(go_json(i) for i in items), NDJSON)
    response.content_type = NDJSON  # also for no line at all (Go sets the header)
    return response


def _legacy_list(current: Handler, legacy: Handler) -> Handler:
    async def handler(ctx: Context, req: Request) -> Response | StreamResponse:
        if wants_legacy(req):
            return await legacy(ctx, req)
        return await current(ctx, req)

    handler.__name__ = getattr(current, "__name__", "list_")
    handler.__doc__ = f"{current.__doc__ or ''} With ``?legacy``: the old ndjson stream."
    return handler


async def _keys_ndjson(ctx: Context, req: Request) -> Response:
    glob = _glob(ctx, req)
    try:
        names, _ = await ctx.keys.list(literal_prefix(req.resource), sys.maxsize)
    except APIError as err:
        return _ndjson([{"error": err.message}])
    except Exception as err:
        ctx.log.error(f"failed to list keys: {err or type(err).__name__}", req)
        return _ndjson([{"error": "failed to list keys"}])
    return _ndjson([{"name": n} for n in names if glob(n)])


async def _policies_ndjson(ctx: Context, req: Request) -> Response:
    glob = _glob(ctx, req)
    names = sorted(n for n in policies.all_names(ctx) if glob(n))
    return _ndjson([{"name": n} for n in names])


async def _identities_ndjson(ctx: Context, req: Request) -> Response:
    glob = _glob(ctx, req)
    rows = [r for r in identities.all_identities(ctx) if glob(r.identity)]
    return _ndjson(
        [
            {
                "identity": r.identity,
                "admin": r.admin,
                "policy": r.policy,
                "created_at": format_rfc3339_nano(r.created_at_ns, local=True),
                "created_by": r.created_by,
            }
            for r in rows
        ]
    )


key_list = _legacy_list(keys.list_, _keys_ndjson)
policy_list = _legacy_list(policies.list_, _policies_ndjson)
identity_list = _legacy_list(identities.list_, _identities_ndjson)
