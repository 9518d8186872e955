"""A local HTTPS server replaying vendor REST exchanges for keystore tests.

Vendor key managers (Fortanix DSM, CipherTrust Manager, Entrust KeyControl) cannot run
here, so their HTTP APIs are replayed: a real HTTPS server on 127.0.0.1 (the test PKI's
server certificate) serves the request/response shapes of the vendors' public REST
documentation. Nothing in the client is patched; the keystore talks real TLS + HTTP.

* :class:`ReplayServer` runs a ``ThreadingHTTPServer`` in a daemon thread, records
  every request and answers with, in order: a scripted reply queued with
  :meth:`ReplayServer.script` (matched on method, path and optionally body members),
  else the vendor emulator.
* The emulators (:class:`FortanixEmulator`, :class:`GemaltoEmulator`,
  :class:`EntrustEmulator`) keep a small key set so create/get/delete/list behave like
  the documented API, issue and expire auth tokens, and can be reset between tests.

The exchanges follow the documented shapes and docs/compat/keystore.md §4.7–§4.9; they were
not captured from live systems.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass(frozen=True)
class Request:
    """One recorded request (``headers`` with lower-case names)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Reply:
    """A response: status, JSON (or text when ``body`` is a str) body, extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def text(status: int, message: str) -> Reply:
    return Reply(status, message, {"Content-Type": "text/plain; charset=utf-8"})


@dataclass
class _Script:
    method: str
    path: str
    body: dict[str, Any] | None
    replies: list[Reply]


class Emulator:
    """Base class of the vendor emulators: a lock, a key set and token bookkeeping."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, Any] = {}
        self.tokens: dict[str, float] = {}  # token → expiry (time.monotonic())
        self.token_lifetime = 300.0
        self._ids = itertools.count(1)

    def reset(self) -> None:
        with self.lock:
            self.keys.clear()
            self.tokens.clear()

    def issue_token(self) -> str:
        token = f"tok-{next(self._ids)}"
        self.tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def expire_tokens(self) -> None:
        """Invalidate every issued token (the next request gets 401)."""
        with self.lock:
            self.tokens.clear()

    def handle(self, req: Request) -> Reply:
        with self.lock:
            return self.route(req)

    def route(self, req: Request) -> Reply:  # pragma: no cover - overridden
        return Reply(404, {"message": "not found"})


class FortanixEmulator(Emulator):
    """Fortanix DSM: ``/sys/v1/health``, ``/sys/v1/session/*``, ``/crypto/v1/keys*``.

    Errors are plain text (``sobject does not exist``). ``GET /crypto/v1/keys`` sorts
    by name; the documentation does not say whether ``start`` is inclusive, so both
    readings are available (``inclusive_start``, default exclusive).
    """

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.inclusive_start = False

    def route(self, req: Request) -> Reply:
        if req.method == "GET" and req.path == "/sys/v1/health":
            return Reply(204)
        if req.method == "GET" and req.path == "/":
            return Reply(200, {"version": "replay"})
        if req.path == "/sys/v1/session/terminate":
            bearer = req.headers.get("authorization", "").removeprefix("Bearer ")
            return Reply(204) if self.tokens.pop(bearer, None) else text(401, "invalid session")
        if req.headers.get("authorization") != "Basic " + self.api_key:
            return text(401, "invalid API key")
        if req.method == "POST" and req.path == "/sys/v1/session/auth":
            return Reply(200, {"token_type": "Bearer", "access_token": self.issue_token()})
        if req.method == "PUT" and req.path == "/crypto/v1/keys":
            return self._create(req.body)
        if req.method == "POST" and req.path == "/crypto/v1/keys/export":
            obj = self.keys.get(req.body.get("name", ""))
            return Reply(200, obj) if obj else text(404, "sobject does not exist")
        if req.method == "GET" and req.path == "/crypto/v1/keys":
            names = sorted(self.keys)
            start = req.query.get("start")
            if start is not None:
                names = [n for n in names if n > start or (self.inclusive_start and n == start)]
            limit = int(req.query.get("limit", "100"))
            return Reply(200, [self._meta(self.keys[n]) for n in names[:limit]])
        if req.method == "DELETE" and req.path.startswith("/crypto/v1/keys/"):
            kid = req.path.rsplit("/", 1)[1]
            for name, obj in list(self.keys.items()):
                if obj["kid"] == kid:
                    del self.keys[name]
                    return Reply(204)
            return text(404, "sobject does not exist")
        return text(404, "no such route")

    def add(self, name: str, value: bytes) -> None:
        """Store a key directly (test setup), as a create would."""
        body = {"obj_type": "OPAQUE", "name": name, "key_ops": ["EXPORT", "APPMANAGEABLE"]}
        with self.lock:
            self._create({**body, "value": base64.b64encode(value).decode()})

    def _create(self, body: dict[str, Any]) -> Reply:
        name = body["name"]
        if name in self.keys:
            return text(409, "sobject already exists")
        obj = {
            "kid": f"kid-{next(self._ids):08d}",
            "name": name,
            "obj_type": body["obj_type"],
            "key_ops": body["key_ops"],
            "value": body["value"],
            "enabled": body.get("enabled", True),
        }
        if "group_id" in body:
            obj["group_id"] = body["group_id"]
        self.keys[name] = obj
        return Reply(201, self._meta(obj))

    @staticmethod
    def _meta(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k != "value"}


class GemaltoEmulator(Emulator):
    """CipherTrust Manager: ``/api/v1/auth/tokens`` and ``/api/v1/vault/secrets``."""

    def __init__(self, refresh_token: str, duration: int = 300) -> None:
        super().__init__()
        self.refresh_token = refresh_token
        self.token_lifetime = float(duration)

    def add(self, name: str, value: bytes) -> None:
        """Store a key directly (test setup), as a create would."""
        with self.lock:
            self.keys[name] = value.decode()

    def route(self, req: Request) -> Reply:
        if req.method == "GET" and req.path == "/":
            return Reply(200, {"status": "replay"})
        if req.method == "POST" and req.path == "/api/v1/auth/tokens":
            body = req.body or {}
            if body.get("grant_type") != "refresh_token" or (
                body.get("refresh_token") != self.refresh_token
            ):
                return Reply(401, {"code": 10, "codeDesc": "UNAUTHORIZED"})
            jwt = self.issue_token()
            return Reply(
                200,
                {"jwt": jwt, "duration": int(self.token_lifetime), "token_type": "Bearer"},
            )
        bearer = req.headers.get("authorization", "").removeprefix("Bearer ")
        if not self.token_valid(bearer):
            return Reply(401, {"code": 10, "codeDesc": "Token is expired"})
        prefix = "/api/v1/vault/secrets"
        if req.path == prefix and req.method == "POST":
            name = req.body["name"]
            if name in self.keys:
                return Reply(409, {"code": 4, "codeDesc": "RESOURCE_ALREADY_EXISTS"})
            self.keys[name] = req.body["material"]
            return Reply(201, {"id": f"id-{next(self._ids)}", "name": name})
        if req.path == prefix and req.method == "GET":
            skip, limit = int(req.query["skip"]), int(req.query["limit"])
            names = sorted(self.keys)
            resources = [{"name": n, "dataType": "seed"} for n in names[skip : skip + limit]]
            return Reply(
                200, {"skip": skip, "limit": limit, "total": len(names), "resources": resources}
            )
        if req.path.startswith(prefix + "/"):
            rest = req.path[len(prefix) + 1 :]
            if req.method == "POST" and rest.endswith("/export"):
                name = unquote(rest.removesuffix("/export"))
                if name not in self.keys:
                    return Reply(404, {"code": 5, "codeDesc": "NCERRResourceNotFound"})
                return Reply(200, {"id": "id", "material": self.keys[name]})
            if req.method == "DELETE":
                name = unquote(rest)
                if self.keys.pop(name, None) is None:
                    return Reply(404, {"code": 5, "codeDesc": "NCERRResourceNotFound"})
                return Reply(204)
        return Reply(404, {"codeDesc": "no such route"})


class EntrustEmulator(Emulator):
    """Entrust KeyControl Vault API: ``/vault/1.0/<Operation>/`` (all POST)."""

    def __init__(self, vault_id: str, box_id: str, username: str, password: str) -> None:
        super().__init__()
        self.vault_id, self.box_id = vault_id, box_id
        self.username, self.password = username, password
        self.expired: set[str] = set()
        self.page_cap = 1000  # the server may return fewer than max_items per page

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.expired.clear()

    def add(self, name: str, value: bytes, expired: bool = False) -> None:
        """Store a secret directly (test setup), optionally already expired."""
        with self.lock:
            self.keys[name] = base64.b64encode(value).decode()
            if expired:
                self.expired.add(name)

    def _login_reply(self) -> Reply:
        token = self.issue_token()
        expires = datetime.now(UTC) + timedelta(seconds=self.token_lifetime)
        return Reply(200, {"access_token": token, "expires_at": expires.isoformat()})

    def route(self, req: Request) -> Reply:
        if req.path == f"/vault/1.0/Login/{self.vault_id}/":
            body = req.body or {}
            if (body.get("username"), body.get("password")) != (self.username, self.password):
                return Reply(401, {"error": "Invalid credentials"})
            return self._login_reply()
        token = req.headers.get("x-vault-auth", "")
        if not self.token_valid(token):
            return Reply(401, {"error": "Authentication token is invalid or expired"})
        if req.path == "/vault/1.0/Renew/":
            self.tokens.pop(token, None)
            return self._login_reply()
        body = req.body or {}
        if body.get("box_id") != self.box_id:
            return Reply(404, {"error": "Box not found"})
        op = req.path.removeprefix("/vault/1.0/").rstrip("/")
        if op == "GetBox":
            return Reply(200, {"box_id": self.box_id, "name": self.box_id})
        if op == "CreateSecret":
            if body["name"] in self.keys:
                return Reply(409, {"error": "Secret already exists"})
            self.keys[body["name"]] = body["secret_data"]
            return Reply(200, {"secret_id": body["name"]})
        if op in ("CheckoutSecret", "DeleteSecret"):
            name = body["secret_id"]
            if name not in self.keys or name in self.expired:
                return Reply(404, {"error": "Secret not found"})
            if op == "DeleteSecret":
                del self.keys[name]
                return Reply(200, {})
            return Reply(200, {"secret_id": name, "secret_data": self.keys[name]})
        if op == "ListSecretIds":
            return self._list(body)
        return Reply(404, {"error": "Unknown operation"})

    def _list(self, body: dict[str, Any]) -> Reply:
        names = sorted(self.keys)
        if body.get("next_token"):
            ctx = json.loads(base64.b64decode(body["next_token"]))
            names = [n for n in names if n >= ctx["next_ctx"]]
        limit = min(int(body.get("max_items", 256)), self.page_cap)
        page, rest = names[:limit], names[limit:]
        token = ""
        if rest:
            raw = json.dumps({"box_id": self.box_id, "next_ctx": rest[0]})
            token = base64.b64encode(raw.encode()).decode()
        secrets = [{"name": n, "expired": n in self.expired} for n in page]
        return Reply(200, {"secrets": secrets, "next_token": token})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        req = Request(
            self.command,
            url.path,
            dict(parse_qsl(url.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        reply = self.server.replay.dispatch(req)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if payload and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.conn_lock = threading.Lock()
        self.connections: set[socket.socket] = set()

    def drop_connections(self) -> None:
        """Close kept-alive client connections (a stopped server must look down)."""
        with self.conn_lock:
            conns, self.connections = self.connections, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()


class ReplayServer:
    """An HTTPS server on 127.0.0.1 answering from scripts, then from ``emulator``."""

    def __init__(self, emulator: Emulator, cert: Path, key: Path) -> None:
        self.emulator = emulator
        self.requests: list[Request] = []
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._httpd = _Server(("127.0.0.1", 0))
        self._httpd.replay = self
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close open connections (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()

    def reset(self) -> None:
        """Forget recorded requests and scripts and empty the emulator."""
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
        self.emulator.reset()

    def script(
        self, method: str, path: str, *replies: Reply, body: dict[str, Any] | None = None
    ) -> None:
        """Answer the next ``len(replies)`` matching requests with ``replies`` in order.

        A request matches on method and path and, if ``body`` is given, when its JSON
        body holds those members with those values.
        """
        with self._lock:
            self._scripts.append(_Script(method, path, body, list(replies)))

    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return sum(len(s.replies) for s in self._scripts)

    async def wait_calls(
        self, method: str, path: str, count: int, timeout: float = 5.0
    ) -> list[Request]:
        """Poll (from an event loop) until ``count`` matching requests were recorded."""
        deadline = time.monotonic() + timeout
        while len(calls := self.calls(method, path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(calls)} of {count} {method} {path} requests seen")
            await asyncio.sleep(0.02)
        return calls

    def calls(self, method: str, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def dispatch(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            for script in self._scripts:
                if script.replies and _matches(script, req):
                    return script.replies.pop(0)
        return self.emulator.handle(req)


def _matches(script: _Script, req: Request) -> bool:
    if (script.method, script.path) != (req.method, req.path):
        return False
    if script.body is None:
        return True
    return isinstance(req.body, dict) and all(req.body.get(k) == v for k, v in script.body.items())


def start(emulator: Emulator, cert: Path, key: Path) -> ReplayServer:
    """Start a replay server for ``emulator``; call :meth:`ReplayServer.stop` after."""
    return ReplayServer(emulator, cert, key).start()
