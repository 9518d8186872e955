"""The legacy API of the v0.x and 2021–2023 servers (api.md §7, docs/legacy-api.md).

Run-time policies and assignments (``/v1/policy/write|delete``,
``/v1/identity/assign|forget``) live in the shared :class:`EphemeralStore`: lost at
restart, seen by every worker at once. The config file stays authoritative: its
policies cannot be overwritten or deleted and its identities cannot be re-assigned
or forgotten through the API; the admin can never be assigned.

Old response forms (ndjson lists, policy read with string arrays) are served only when
the request asks for them with the ``legacy`` query parameter (``?legacy``); without
it every current route answers exactly as before.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import time
from base64 import b64encode
from typing import TYPE_CHECKING, Any

from pykes.auth import Policy, StoreFullError
from pykes.auth.ephemeral import Assignment, EphemeralPolicy, EphemeralStore
from pykes.crypto import wipe
from pykes.errors import APIError, IdentityNotFoundError, PolicyNotFoundError
from pykes.goformat.json import BodyError, b64decode_std, go_json
from pykes.goformat.timestamp import format_rfc3339_nano
from pykes.server.handlers import identities, keys, logs, policies
from pykes.server.handlers.common import INVALID_BODY, require_name
from pykes.server.http import EMPTY_OK, JSON, NDJSON, Request, Response, StreamResponse

if TYPE_CHECKING:
    from pykes.server.routes import Handler
    from pykes.server.state import ServerState

MAX_BULK = 1000  # ciphertexts per bulk decrypt (api.md §7.1)
_FALSE = frozenset(("0", "false", "off", "no"))


# ----------------------------------------------------------------- request signals
def wants_legacy(req: Request) -> bool:
    """``?legacy`` (or ``?legacy=1|true|on``) asks for the old response form."""
    if "legacy" not in req.query:
        return False
    for part in req.query.split("&"):
        name, eq, value = part.partition("=")
        if name == "legacy":
            return not eq or value.lower() not in _FALSE
    return False


def _store(state: ServerState) -> EphemeralStore:
    store = state.authorizer.ephemeral
    if store is None:  # a state built without one (tests, tools): nothing to write to
        raise APIError(501, "not implemented")
    return store


def _update(state: ServerState, change: Any) -> None:
    try:
        _store(state).update(change)
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
def _check_assignable(state: ServerState, req: Request, policy: str, identity: str) -> None:
    require_name("identity", identity)
    if state.authorizer.is_admin(identity):
        raise APIError(
            400, f"cannot assign policy '{policy}' to '{identity}': identity is already admin"
        )
    if identity in state.authorizer.assignments:
        raise APIError(
            400,
            f"cannot assign policy '{policy}' to '{identity}': identity already has a policy",
        )
    proxy = getattr(state, "proxy", None)  # tls.proxy (auth.md §10), when configured
    if proxy is not None and identity in proxy.identities:
        raise APIError(
            400, f"cannot assign policy '{policy}' to '{identity}': identity is a TLS proxy"
        )
    if identity == req.identity:
        raise APIError(403, "identity cannot assign policy to itself")


async def policy_write(state: ServerState, req: Request) -> Response:
    """``POST /v1/policy/write/{name}``: create or replace an ephemeral policy; the
    identities already assigned to it stay assigned."""
    name = require_name("policy name", req.resource)
    allow, deny, idents = _policy_body(req)
    if name in state.policies:
        raise APIError(400, "policy already exists")  # the config file's; SDK ErrPolicyExists
    for identity in idents:
        _check_assignable(state, req, name, identity)
    now, by = time.time_ns(), req.identity
    policy = EphemeralPolicy(Policy(name, allow, deny), now, by)

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        pols[name] = policy
        for identity in idents:
            assigned[identity] = Assignment(name, now, by)

    _update(state, change)
    return EMPTY_OK


async def policy_delete(state: ServerState, req: Request) -> Response:
    """``DELETE /v1/policy/delete/{name}``: the policy and its run-time assignments."""
    name = require_name("policy name", req.resource)
    if name in state.policies:
        raise APIError(400, f"cannot delete policy '{name}': policy is defined in the config file")

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        if pols.pop(name, None) is None:
            raise PolicyNotFoundError()
        for identity in [i for i, a in assigned.items() if a.policy == name]:
            del assigned[identity]

    _update(state, change)
    return EMPTY_OK


async def policy_read(state: ServerState, req: Request) -> Response:
    """``GET /v1/policy/read/{name}``: the current shape, or with ``?legacy`` the old
    one (``allow``/``deny`` as arrays of strings, api.md §7.1)."""
    if not wants_legacy(req):
        return await policies.read(state, req)
    found = policies.lookup(state, req.resource)
    out: dict[str, object] = {"name": found.policy.name}
    out["allow"] = sorted(set(found.policy.allow))
    out["deny"] = sorted(set(found.policy.deny))
    out["created_at"] = format_rfc3339_nano(found.created_at_ns, local=True)
    out["created_by"] = found.created_by
    return Response(200, go_json(out))


# ----------------------------------------------------------------- identities
async def self_describe(state: ServerState, req: Request) -> Response:
    """``GET /v1/identity/self/describe``: with ``?legacy`` the 2021–2023 shape
    (``policy_name`` plus a nested ``policy`` with string arrays, api.md §7.1)."""
    if not wants_legacy(req):
        return await identities.self_describe(state, req)
    identity = req.identity
    if identity and state.authorizer.is_admin(identity):
        created_at = format_rfc3339_nano(state.start_ns, local=True)
        return Response(
            200, go_json({"identity": identity, "admin": True, "created_at": created_at})
        )
    found = identities.assigned(state, identity) if identity else None
    if found is None:
        raise IdentityNotFoundError()
    policy, at, by = found
    entry = policies.lookup(state, policy.name)
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


async def identity_assign(state: ServerState, req: Request) -> Response:
    """``POST /v1/identity/assign/{policy}/{identity}``: one policy per identity; a
    run-time assignment replaces the identity's previous run-time assignment."""
    policy, identity = _split_assign(req.resource)
    _check_assignable(state, req, policy, identity)
    now, by = time.time_ns(), req.identity
    in_config = policy in state.policies

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        if not in_config and policy not in pols:
            raise PolicyNotFoundError()
        assigned[identity] = Assignment(policy, now, by)

    _update(state, change)
    return EMPTY_OK


async def identity_forget(state: ServerState, req: Request) -> Response:
    """``DELETE /v1/identity/forget/{identity}``: drop a run-time assignment."""
    identity = require_name("identity", req.resource)
    if state.authorizer.is_admin(identity):
        raise APIError(400, f"cannot forget identity '{identity}': identity is admin")
    if identity in state.authorizer.assignments:
        raise APIError(
            400,
            f"cannot forget identity '{identity}': identity is assigned in the config file",
        )

    def change(pols: dict[str, EphemeralPolicy], assigned: dict[str, Assignment]) -> None:
        if assigned.pop(identity, None) is None:
            raise IdentityNotFoundError()

    _update(state, change)
    return EMPTY_OK


# ----------------------------------------------------------------- log traces
async def audit_trace(state: ServerState, req: Request) -> StreamResponse:
    """``GET /v1/log/audit/trace``: the ``/v1/log/audit`` stream."""
    return await logs.audit_stream(state, req)


async def error_trace(state: ServerState, req: Request) -> StreamResponse:
    """``GET /v1/log/error/trace``: the ``/v1/log/error`` stream."""
    return await logs.error_stream(state, req)


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


async def bulk_decrypt(state: ServerState, req: Request) -> Response:
    """``POST /v1/key/bulk/decrypt/{name}``: ≤ 1000 ``{ciphertext, context}`` → the
    ``{plaintext}`` of each, in order; any failure fails the whole call."""
    name = require_name("key name", req.resource)
    items = _bulk_body(req)
    key = await keys._load(state, req, name)  # noqa: SLF001 - the key path of keys.py
    parts = []
    for ct, ctx in items:
        plaintext = key.decrypt(ct, ctx)  # DecryptError (400) fails the whole call
        try:  # a bytearray, wiped here; its base64 form goes out
            parts.append(b'{"plaintext":"' + b64encode(plaintext) + b'"}')
        finally:
            wipe(plaintext)
    return Response(200, b"[" + b",".join(parts) + b"]\n", JSON)


# ----------------------------------------------------------------- old list forms
def _glob(pattern: str) -> re.Pattern[str]:
    """Go ``path.Match`` globs on names (``*``, ``?``, ``[...]``/``[^...]``); an empty
    pattern matches everything (the old SDKs sent ``*``)."""
    if not pattern:
        pattern = "*"
    return re.compile(fnmatch.translate(pattern.replace("[^", "[!")))


def _literal_prefix(pattern: str) -> str:
    for i, c in enumerate(pattern):
        if c in "*?[\\":
            return pattern[:i]
    return pattern


def _ndjson(items: list[dict[str, object]]) -> Response:
    return Response(200, b"".join(go_json(i) for i in items), NDJSON)


def _legacy_list(current: Handler, legacy: Handler) -> Handler:
    async def handler(state: ServerState, req: Request) -> Response | StreamResponse:
        if wants_legacy(req):
            return await legacy(state, req)
        return await current(state, req)

    handler.__name__ = getattr(current, "__name__", "list_")
    handler.__doc__ = f"{current.__doc__ or ''} With ``?legacy``: the old ndjson stream."
    return handler


async def _keys_ndjson(state: ServerState, req: Request) -> Response:
    glob = _glob(req.resource)
    try:
        names, _ = await state.keys.list(_literal_prefix(req.resource), sys.maxsize)
    except APIError as err:
        return _ndjson([{"error": err.message}])
    except Exception as err:
        state.log.error(f"failed to list keys: {err or type(err).__name__}", req)
        return _ndjson([{"error": "failed to list keys"}])
    return _ndjson([{"name": n} for n in names if glob.match(n)])


async def _policies_ndjson(state: ServerState, req: Request) -> Response:
    glob = _glob(req.resource)
    names = sorted(n for n in policies.all_names(state) if glob.match(n))
    return _ndjson([{"name": n} for n in names])


async def _identities_ndjson(state: ServerState, req: Request) -> Response:
    glob = _glob(req.resource)
    rows = [r for r in identities.all_identities(state) if glob.match(r.identity)]
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
