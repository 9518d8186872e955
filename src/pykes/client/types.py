"""Typed results of the KES API and their JSON forms (Go SDK ``kes`` types).

Decoding follows Go's ``encoding/json`` as the SDK uses it: missing fields take their
zero value, ``null`` is "no value", ``[]byte`` fields are standard padded base64,
timestamps are RFC 3339. ``to_json()`` methods return the dicts the Go SDK's
``MarshalJSON`` methods produce (used by ``kes … --json``).

Timestamps are timezone-aware :class:`datetime.datetime` objects (microsecond
precision; the nanosecond digits a server may send are truncated). Go's zero time
(``0001-01-01T00:00:00Z``) is :data:`ZERO_TIME`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, TypeVar

from pykes.client.errors import ResponseError
from pykes.goformat.duration import DurationError, parse_duration_ns

__all__ = [
    "API",
    "DEK",
    "ZERO_TIME",
    "AuditEvent",
    "EnclaveInfo",
    "ErrorEvent",
    "IdentityInfo",
    "KeyAlgorithm",
    "KeyInfo",
    "Policy",
    "PolicyInfo",
    "State",
    "Versioned",
    "format_time",
    "parse_time",
]

T = TypeVar("T")

ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
"""Go's zero ``time.Time``: what a missing timestamp decodes to."""

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_time(value: Any) -> dt.datetime:
    """RFC 3339 text (any fraction length, any offset) → aware datetime."""
    if value is None:
        return ZERO_TIME
    if not isinstance(value, str):
        raise ResponseError("kes: invalid timestamp: not a string")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ResponseError(f"kes: invalid timestamp '{value}'")
    date, clock, fraction, zone = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return dt.datetime.fromisoformat(f"{date}T{clock}.{micros}{zone}")
    except ValueError:
        raise ResponseError(f"kes: invalid timestamp '{value}'") from None


def format_time(value: dt.datetime) -> str:
    """Format like Go's ``time.RFC3339Nano`` (trailing fraction zeros trimmed, ``Z``
    for a zero UTC offset, ``±hh:mm`` otherwise)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    v = value
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset() or dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = abs(int(offset.total_seconds())) // 60
    sign = "-" if offset < dt.timedelta(0) else "+"
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --------------------------------------------------------------------- field decoding
def as_object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResponseError(f"kes: invalid {what}: not a JSON object")
    return value


def _field(obj: dict[str, Any], name: str, kind: type | UnionType, zero: T, what: str) -> T:
    """Field ``name`` if it is a ``kind`` (a JSON boolean is not a number, though
    Python's ``bool`` is an ``int``), ``zero`` if missing or null; else the Go SDK's
    decoding error."""
    value = obj.get(name)
    if value is None:
        return zero
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ResponseError(f"kes: invalid response: '{name}' is not {what}")
    return value


def get_str(obj: dict[str, Any], name: str) -> str:
    return _field(obj, name, str, "", "a string")


def get_int(obj: dict[str, Any], name: str) -> int:
    return _field(obj, name, int, 0, "an integer")


def get_float(obj: dict[str, Any], name: str) -> float:
    return float(_field(obj, name, int | float, 0.0, "a number"))


def get_bool(obj: dict[str, Any], name: str) -> bool:
    return _field(obj, name, bool, False, "a boolean")


def get_bytes(obj: dict[str, Any], name: str) -> bytes:
    text = _field(obj, name, str, "", "a base64 string")
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError(f"kes: invalid response: '{name}' is not valid base64") from None


def get_strings(obj: dict[str, Any], name: str) -> list[str]:
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ResponseError(f"kes: invalid response: '{name}' is not a list of strings")
    return list(value)


def get_rules(obj: dict[str, Any], name: str) -> tuple[str, ...]:
    """A policy rule set: ``{"<pattern>": {}, …}`` (or a legacy ``["<pattern>", …]``)."""
    value = obj.get(name)
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple(sorted(value))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ResponseError(f"kes: invalid response: '{name}' is not a policy rule set")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _with_creation(out: dict[str, Any], created_at: dt.datetime, created_by: str) -> dict[str, Any]:
    """``out`` and then the Go SDK's ``created_at`` and ``created_by`` (omitted when empty)."""
    out["created_at"] = format_time(created_at)
    if created_by:
        out["created_by"] = created_by
    return out


# --------------------------------------------------------------------- result types
class KeyAlgorithm(enum.Enum):
    """The algorithm a key is used with (Go ``kes.KeyAlgorithm``)."""

    AES256 = "AES256"
    CHACHA20 = "ChaCha20"

    @classmethod
    def parse(cls, text: str) -> KeyAlgorithm:
        """Accept the current names and the legacy ``AES256-GCM_SHA256`` /
        ``XCHACHA20-POLY1305``; anything else raises :class:`ValueError`."""
        aliases = {
            "AES256": cls.AES256,
            "AES256-GCM_SHA256": cls.AES256,
            "ChaCha20": cls.CHACHA20,
            "XCHACHA20-POLY1305": cls.CHACHA20,
        }
        try:
            return aliases[text]
        except KeyError:
            raise ValueError(f"kes: invalid key algorithm '{text}'") from None

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class State:
    """A ``/v1/status`` snapshot (Go ``kes.State``).

    ``keystore_latency`` is the integer as sent: milliseconds for every KES server
    (the Go SDK misreads it as nanoseconds, docs/compat/api.md §5.3). Unlike the Go SDK, a
    status with ``keystore_unreachable`` but without ``keystore_unavailable`` is not
    rejected; the caller decides (``kes status`` fails like the Go CLI).
    """

    version: str
    os: str
    arch: str
    uptime: float  # seconds
    cpus: int
    usable_cpus: int
    heap_alloc: int
    stack_alloc: int
    keystore_latency: int = 0
    keystore_unreachable: bool = False
    keystore_unavailable: bool = False

    @property
    def keystore_reachable(self) -> bool:
        return not self.keystore_unreachable

    @classmethod
    def from_json(cls, value: Any) -> State:
        obj = as_object(value, "status")
        state = cls(
            version=get_str(obj, "version"),
            os=get_str(obj, "os"),
            arch=get_str(obj, "arch"),
            uptime=get_float(obj, "uptime"),
            cpus=get_int(obj, "num_cpu"),
            usable_cpus=get_int(obj, "num_cpu_used"),
            heap_alloc=get_int(obj, "mem_heap_used"),
            stack_alloc=get_int(obj, "mem_stack_used"),
            keystore_latency=get_int(obj, "keystore_latency"),
            keystore_unreachable=get_bool(obj, "keystore_unreachable"),
            keystore_unavailable=get_bool(obj, "keystore_unavailable"),
        )
        if state.cpus < 0:
            raise ResponseError(f"kes: invalid number of CPUs '{state.cpus}'")
        if state.usable_cpus < 0:
            raise ResponseError(f"kes: invalid number of usable CPUs '{state.usable_cpus}'")
        return state

    def to_json(self) -> dict[str, Any]:
        """Go ``State.MarshalJSON``: omitempty fields, uptime rounded to seconds."""
        out: dict[str, Any] = {
            "version": self.version,
            "os": self.os,
            "arch": self.arch,
            "uptime": round(self.uptime),
            "num_cpu": self.cpus,
            "num_cpu_used": self.usable_cpus,
            "mem_heap_used": self.heap_alloc,
            "mem_stack_used": self.stack_alloc,
            "keystore_latency": self.keystore_latency,
            "keystore_unreachable": self.keystore_unreachable,
            "keystore_unavailable": self.keystore_unavailable,
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class API:
    """One server route as listed by ``/v1/api`` (``timeout`` in seconds, 0 = none)."""

    method: str
    path: str
    max_body: int
    timeout: int

    @classmethod
    def from_json(cls, value: Any) -> API:
        obj = as_object(value, "API")
        api = cls(
            get_str(obj, "method"),
            get_str(obj, "path"),
            get_int(obj, "max_body"),
            get_int(obj, "timeout"),
        )
        if api.timeout < 0:
            raise ResponseError(f"kes: invalid API timeout '{api.timeout}s'")
        if api.max_body < 0:
            raise ResponseError(f"kes: invalid API max body '{api.max_body}'")
        return api

    def to_json(self) -> dict[str, Any]:
        out = {
            "method": self.method,
            "path": self.path,
            "max_body": self.max_body,
            "timeout": self.timeout,
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class KeyInfo:
    """``/v1/key/describe`` result (Go ``kes.KeyInfo``). A server that keeps key
    versions (stateful pykes) adds the latest ``version``, the ``min_version`` that may
    still decrypt and every stored version (decimal texts); the others leave them empty."""

    name: str
    algorithm: KeyAlgorithm
    created_at: dt.datetime
    created_by: str
    version: str = ""
    min_version: str = ""
    versions: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> KeyInfo:
        obj = as_object(value, "key info")
        raw = obj.get("algorithm")
        try:
            # A missing algorithm is Go's zero value: AES256.
            algorithm = KeyAlgorithm.AES256 if raw is None else KeyAlgorithm.parse(raw)
        except (ValueError, TypeError) as err:
            raise ResponseError(str(err)) from None
        return cls(
            name=get_str(obj, "name"),
            algorithm=algorithm,
            created_at=parse_time(obj.get("created_at")),
            created_by=get_str(obj, "created_by"),
            version=get_str(obj, "version"),
            min_version=get_str(obj, "min_version"),
            versions=tuple(get_strings(obj, "versions")),
        )

    def to_json(self) -> dict[str, Any]:
        """``{"name","algorithm","created_at","created_by"?}`` and, when the server sent
        them, ``"version"``, ``"min_version"`` and ``"versions"``.

        Deliberate fix: the Go SDK omits ``algorithm`` for AES256 keys (zero value +
        ``omitempty``, docs/compat/cli.md §4); it is always present here.
        """
        out: dict[str, Any] = {"name": self.name, "algorithm": str(self.algorithm)}
        _with_creation(out, self.created_at, self.created_by)
        versions = {
            "version": self.version,
            "min_version": self.min_version,
            "versions": list(self.versions),
        }
        out.update((k, v) for k, v in versions.items() if v)
        return out


@dataclass(frozen=True)
class DEK:
    """A data encryption key: use ``plaintext``, store ``ciphertext``.

    The plaintext is excluded from ``repr()`` so it does not end up in logs.
    """

    plaintext: bytes = field(repr=False)
    ciphertext: bytes
    version: str = ""


class Versioned(bytes):
    """Bytes made with one version of a key — the ciphertext of ``encrypt``, the MAC of
    ``hmac`` — and that version's number as the server sends it (decimal text; empty
    when the server reports none, as stateless servers). A ``bytes`` in every other
    respect, so code written before key versions keeps working."""

    version: str

    def __new__(cls, data: bytes, version: str = "") -> Versioned:
        made = super().__new__(cls, data)
        made.version = version
        return made

    def __reduce__(self) -> tuple[type[Versioned], tuple[bytes, str]]:
        return Versioned, (bytes(self), self.version)

    def __repr__(self) -> str:
        return f"Versioned({bytes(self)!r}, version={self.version!r})"


@dataclass(frozen=True)
class EnclaveInfo:
    """``/v1/enclave/describe`` result (the 2023 Go SDK's ``kes.EnclaveInfo``)."""

    name: str
    created_at: dt.datetime
    created_by: str

    @classmethod
    def from_json(cls, value: Any) -> EnclaveInfo:
        obj = as_object(value, "enclave info")
        return cls(
            get_str(obj, "name"), parse_time(obj.get("created_at")), get_str(obj, "created_by")
        )

    def to_json(self) -> dict[str, Any]:
        return _with_creation({"name": self.name}, self.created_at, self.created_by)


@dataclass(frozen=True)
class PolicyInfo:
    """``/v1/policy/describe`` result."""

    name: str
    created_at: dt.datetime
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return _with_creation({"name": self.name}, self.created_at, self.created_by)


@dataclass(frozen=True)
class Policy:
    """A policy: ``allow`` / ``deny`` path patterns (sorted)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    created_at: dt.datetime = ZERO_TIME
    created_by: str = ""

    @classmethod
    def from_json(cls, value: Any) -> Policy:
        obj = as_object(value, "policy")
        return cls(
            allow=get_rules(obj, "allow"),
            deny=get_rules(obj, "deny"),
            created_at=parse_time(obj.get("created_at")),
            created_by=get_str(obj, "created_by"),
        )

    def to_json(self) -> dict[str, Any]:
        """``{"allow":{…},"deny":{…},"created_at":…,"created_by":…}`` (docs/compat/cli.md §5)."""
        out: dict[str, Any] = {}
        if self.allow:
            out["allow"] = {p: {} for p in self.allow}
        if self.deny:
            out["deny"] = {p: {} for p in self.deny}
        return _with_creation(out, self.created_at, self.created_by)


@dataclass(frozen=True)
class IdentityInfo:
    """``/v1/identity/describe`` and ``/v1/identity/self/describe`` result.

    ``ttl`` (seconds) and ``expires_at`` are never sent by current servers.
    """

    identity: str
    policy: str
    is_admin: bool
    created_at: dt.datetime
    created_by: str
    ttl: float = 0.0
    expires_at: dt.datetime = ZERO_TIME

    @classmethod
    def from_json(cls, value: Any, identity: str | None = None) -> IdentityInfo:
        obj = as_object(value, "identity info")
        ttl_text = get_str(obj, "ttl")
        ttl = 0.0
        if ttl_text:
            try:
                ttl = parse_duration_ns(ttl_text) / 1e9
            except DurationError as err:
                raise ResponseError(str(err)) from None
        return cls(
            identity=get_str(obj, "identity") if identity is None else identity,
            policy=get_str(obj, "policy"),
            is_admin=get_bool(obj, "admin"),
            created_at=parse_time(obj.get("created_at")),
            created_by=get_str(obj, "created_by"),
            ttl=ttl,
            expires_at=parse_time(obj.get("expires_at")),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"identity": self.identity}
        if self.policy:
            out["policy"] = self.policy
        if self.is_admin:
            out["admin"] = True
        return _with_creation(out, self.created_at, self.created_by)


@dataclass(frozen=True)
class AuditEvent:
    """One ``/v1/log/audit`` event.

    ``response_time`` is in nanoseconds, as the SDK and ``kes log`` decode it (Go
    duration); pykes servers send nanoseconds, the Go server milliseconds.
    ``ip`` is empty if absent or not an IP address (as the Go SDK).
    """

    time: dt.datetime
    status: int
    path: str
    identity: str = ""
    ip: str = ""
    response_time: int = 0

    @classmethod
    def from_json(cls, value: Any) -> AuditEvent:
        import ipaddress

        obj = as_object(value, "audit event")
        request = as_object(obj.get("request"), "audit event request")
        response = as_object(obj.get("response"), "audit event response")
        ip = get_str(request, "ip")
        try:
            ip = str(ipaddress.ip_address(ip)) if ip else ""
        except ValueError:
            ip = ""
        return cls(
            time=parse_time(obj.get("time")),
            status=get_int(response, "code"),
            path=get_str(request, "path"),
            identity=get_str(request, "identity"),
            ip=ip,
            response_time=get_int(response, "time"),
        )

    def to_json(self) -> dict[str, Any]:
        """Re-encoded as the Go ``AuditStream.WriteTo`` does."""
        request: dict[str, Any] = {}
        if self.ip:
            request["ip"] = self.ip
        request["path"] = self.path
        if self.identity:
            request["identity"] = self.identity
        return {
            "time": format_time(self.time),
            "request": request,
            "response": {"code": self.status, "time": self.response_time},
        }


@dataclass(frozen=True)
class ErrorEvent:
    """One ``/v1/log/error`` event: the error log line."""

    message: str

    @classmethod
    def from_json(cls, value: Any) -> ErrorEvent:
        return cls(get_str(as_object(value, "error event"), "message"))

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message}
