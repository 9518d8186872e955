"""Request building and response parsing, shared by :class:`~pykes.client.Client` and
:class:`~pykes.client.AsyncClient` (sans-I/O).

Every API call is an :class:`Op`: method, path, body, headers, the response size limit
of the Go SDK and a parser turning the :class:`Reply` into the typed result. The
transports only move bytes; everything KES-specific lives here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pykes.client.errors import APIError, ResponseError, error_from_response
from pykes.client.metrics import Metric, parse_metrics
from pykes.client.types import (
    API,
    DEK,
    EnclaveInfo,
    IdentityInfo,
    KeyAlgorithm,
    KeyInfo,
    Policy,
    PolicyInfo,
    State,
    Versioned,
    as_object,
    b64,
    get_bytes,
    get_str,
    get_strings,
    parse_time,
)

T = TypeVar("T")

KiB = 1 << 10
MiB = 1 << 20
HMAC_LIMIT = 1000  # the Go SDK's mem.KB (decimal) for /v1/key/hmac responses
JSON = (("Content-Type", "application/json"),)
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Reply:
    """A received response: status, ``Content-Type`` and the (size-limited) body."""

    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Op(Generic[T]):
    """One API request and how to interpret its response."""

    method: str
    path: str
    parse: Callable[[Reply], T]
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    limit: int = MiB
    #: the typed error of an error response (status, Content-Type, body): the KES API's
    #: unless the op is of another API (the KMS API's, pykes.client.kms)
    error: Callable[[int, str, bytes], APIError] = error_from_response


def finish(op: Op[T], reply: Reply) -> T:
    """Turn a reply into the op's result or raise the typed error."""
    if reply.status >= 400:
        raise op.error(reply.status, reply.content_type, reply.body)
    if len(reply.body) > op.limit:
        raise ResponseError(f"kes: response body exceeds the limit of {op.limit} bytes")
    return op.parse(reply)


def join(api: str, arg: str) -> str:
    """``api/<escaped arg>`` like the Go SDK's ``join``: the argument is one escaped
    path segment and an empty argument yields the slash-less path (docs/compat/api.md §8)."""
    if not arg:
        return api
    escaped = quote(arg, safe="$&+,;=:@")
    if escaped in (".", ".."):  # never let a name become a dot-segment
        escaped = escaped.replace(".", "%2E")
    return f"{api}/{escaped}"


def encode(value: dict[str, Any]) -> bytes:
    """Compact JSON like Go's ``json.Marshal``."""
    return json.dumps(value, separators=(",", ":")).encode()


def decode(reply: Reply) -> Any:
    """The first JSON value of the body (Go's ``json.Decoder.Decode``)."""
    text = reply.body.decode("utf-8", "replace").lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError as err:
        raise ResponseError(f"kes: invalid JSON response: {err}") from None
    return value


def expect_ok(reply: Reply) -> None:
    if reply.status != 200:
        raise APIError(reply.status, reply.body.decode("utf-8", "replace"))


def _none(reply: Reply) -> None:
    expect_ok(reply)


def _json(convert: Callable[[Any], T]) -> Callable[[Reply], T]:
    def parse(reply: Reply) -> T:
        expect_ok(reply)
        return convert(decode(reply))

    return parse


# ----------------------------------------------------------------------- system
def version() -> Op[str]:
    return Op(
        "GET", "/version", _json(lambda v: get_str(as_object(v, "version"), "version")), limit=KiB
    )


def _ready(reply: Reply) -> bool:
    return reply.status == 200


def ready() -> Op[bool]:
    return Op("GET", "/v1/ready", _ready)


def status() -> Op[State]:
    return Op("GET", "/v1/status", _json(State.from_json))


def _apis(value: Any) -> list[API]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ResponseError("kes: invalid API list: not a JSON array")
    return [API.from_json(v) for v in value]


def apis() -> Op[list[API]]:
    return Op("GET", "/v1/api", _json(_apis))


def _metrics(reply: Reply) -> Metric:
    expect_ok(reply)
    return parse_metrics(reply.body.decode("utf-8", "replace"))


def metrics() -> Op[Metric]:
    return Op("GET", "/v1/metrics", _metrics)


# ----------------------------------------------------------------------- keys
def create_key(name: str) -> Op[None]:
    return Op("POST", join("/v1/key/create", name), _none)


def import_key(name: str, key: bytes, cipher: KeyAlgorithm) -> Op[None]:
    body = encode({"key": b64(key), "cipher": str(cipher)})
    return Op("POST", join("/v1/key/import", name), _none, body, JSON)


def describe_key(name: str) -> Op[KeyInfo]:
    return Op("GET", join("/v1/key/describe", name), _json(KeyInfo.from_json))


def delete_key(name: str) -> Op[None]:
    return Op("DELETE", join("/v1/key/delete", name), _none)


def _dek(value: Any) -> DEK:
    obj = as_object(value, "DEK")
    return DEK(get_bytes(obj, "plaintext"), get_bytes(obj, "ciphertext"), get_str(obj, "version"))


def generate_key(name: str, context: bytes | None) -> Op[DEK]:
    body = encode({"context": b64(context)} if context else {})
    return Op("POST", join("/v1/key/generate", name), _json(_dek), body, JSON)


def _versioned(field: str) -> Callable[[Reply], Versioned]:
    """The base64 ``field`` of an answer and the ``version`` that made it."""

    def convert(value: Any) -> Versioned:
        obj = as_object(value, field)
        return Versioned(get_bytes(obj, field), get_str(obj, "version"))

    return _json(convert)


def encrypt(name: str, plaintext: bytes, context: bytes | None) -> Op[Versioned]:
    request = {"plaintext": b64(plaintext)}
    if context:
        request["context"] = b64(context)
    return Op(
        "POST", join("/v1/key/encrypt", name), _versioned("ciphertext"), encode(request), JSON
    )


def decrypt(
    name: str, ciphertext: bytes, context: bytes | None, version: str | int = ""
) -> Op[bytes]:
    request = {"ciphertext": b64(ciphertext)}
    if context:
        request["context"] = b64(context)
    if version != "":  # sent only when given, as the Go SDK (api.md §6)
        request["version"] = str(version)
    parse = _json(lambda v: get_bytes(as_object(v, "plaintext"), "plaintext"))
    return Op("POST", join("/v1/key/decrypt", name), parse, encode(request), JSON)


def hmac(name: str, message: bytes) -> Op[Versioned]:
    body = encode({"message": b64(message)})
    return Op("PUT", join("/v1/key/hmac", name), _versioned("hmac"), body, limit=HMAC_LIMIT)


def rotate_key(name: str) -> Op[str]:
    """A pykes extension: a new version of the key; the answer is its number."""
    parse = _json(lambda v: get_str(as_object(v, "rotation"), "version"))
    return Op("PUT", join("/v1/key/rotate", name), parse)


def delete_key_version(name: str, version: str | int) -> Op[None]:
    """A pykes extension: what the version encrypted no longer decrypts."""
    return Op("DELETE", join(join("/v1/key/version/delete", name), str(version)), _none)


def set_key_min_version(name: str, version: str | int) -> Op[None]:
    """A pykes extension: versions below ``version`` no longer decrypt (until lowered)."""
    return Op("PUT", join(join("/v1/key/version/minimum", name), str(version)), _none)


Page = tuple[list[str], str]


def _legacy_listing(reply: Reply, field: str) -> Page:
    """An ``application/x-ndjson`` listing of a pre-2023 server (one object a line)."""
    names: list[str] = []
    for line in reply.body.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            obj = as_object(json.loads(line), "listing")
        except ValueError as err:
            raise ResponseError(f"kes: invalid listing: {err}") from None
        error = get_str(obj, "error")
        if error:
            raise ResponseError(error)
        names.append(get_str(obj, field))
    return names, ""


def _listing(field: str, legacy_field: str, sort_legacy: bool) -> Callable[[Reply], Page]:
    def parse(reply: Reply) -> Page:
        expect_ok(reply)
        if reply.content_type.strip() == NDJSON:
            names, cont = _legacy_listing(reply, legacy_field)
            return (sorted(names) if sort_legacy else names), cont
        obj = as_object(decode(reply), "listing")
        return get_strings(obj, field), get_str(obj, "continue_at")

    return parse


def list_keys(prefix: str) -> Op[Page]:
    return Op("GET", join("/v1/key/list", prefix), _listing("names", "name", True))


# ----------------------------------------------------------------------- enclaves
def create_enclave(name: str) -> Op[None]:
    return Op("PUT", join("/v1/enclave/create", name), _none)


def describe_enclave(name: str) -> Op[EnclaveInfo]:
    return Op("GET", join("/v1/enclave/describe", name), _json(EnclaveInfo.from_json))


def delete_enclave(name: str, force: bool) -> Op[None]:
    path = join("/v1/enclave/delete", name)
    return Op("DELETE", path + "?force=true" if force else path, _none)


def list_enclaves(prefix: str) -> Op[Page]:
    return Op("GET", join("/v1/enclave/list", prefix), _listing("names", "name", True))


# ----------------------------------------------------------------------- policies
def describe_policy(name: str) -> Op[PolicyInfo]:
    def convert(value: Any) -> PolicyInfo:
        obj = as_object(value, "policy info")
        created_by = get_str(obj, "created_by")
        return PolicyInfo(name, parse_time(obj.get("created_at")), created_by)

    return Op("GET", join("/v1/policy/describe", name), _json(convert))


def get_policy(name: str) -> Op[Policy]:
    return Op("GET", join("/v1/policy/read", name), _json(Policy.from_json))


def list_policies(prefix: str) -> Op[Page]:
    return Op("GET", join("/v1/policy/list", prefix), _listing("names", "name", True))


# ----------------------------------------------------------------------- identities
def describe_identity(identity: str) -> Op[IdentityInfo]:
    parse = _json(lambda v: IdentityInfo.from_json(v, identity))
    return Op("GET", join("/v1/identity/describe", identity), parse)


def _self(value: Any) -> tuple[IdentityInfo, Policy]:
    obj = as_object(value, "identity info")
    info = IdentityInfo.from_json(obj)
    # The flat shape the Go SDK decodes (docs/compat/api.md §5.20): allow/deny at top level.
    policy = Policy.from_json({"allow": obj.get("allow"), "deny": obj.get("deny")})
    return info, policy


def describe_self() -> Op[tuple[IdentityInfo, Policy]]:
    return Op("GET", "/v1/identity/self/describe", _json(_self))


def list_identities(prefix: str) -> Op[Page]:
    return Op("GET", join("/v1/identity/list", prefix), _listing("identities", "identity", False))


# ----------------------------------------------------------------------- logs
def _stream(reply: Reply) -> None:
    expect_ok(reply)


def audit_log() -> Op[None]:
    return Op("GET", "/v1/log/audit", _stream)


def error_log() -> Op[None]:
    return Op("GET", "/v1/log/error", _stream)


# ----------------------------------------------------------------------- pagination
class Pager:
    """Walks a paginated listing like the Go SDK's ``ListIter`` — ``continue_at`` is
    sent back as the next *prefix* (the only continuation the API offers) — with two
    guards the Go SDK lacks: it stops when ``continue_at`` does not start with the
    requested prefix (it would list names outside the request) or does not advance.

    Caveat inherited from the API: when a server paginates (pykes only does past the
    SDK's 1 MiB response limit, Go servers at 1024 names) the names between the end
    of a page and the next prefix's range are not visited.
    """

    def __init__(self, prefix: str) -> None:
        self._base = prefix.removesuffix("*")
        self._next: str | None = prefix

    @property
    def next_prefix(self) -> str | None:
        """The prefix to request next, or ``None`` when the listing is complete."""
        return self._next

    def feed(self, page: Page) -> list[str]:
        names, continue_at = page
        self._next = None
        if names and continue_at and continue_at.startswith(self._base) and continue_at > names[-1]:
            self._next = continue_at
        return names
