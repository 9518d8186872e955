"""Local HTTPS replay servers for the cloud keystores that cannot run here.

Each server is a real HTTPS endpoint on 127.0.0.1 (the ``pki`` test certificate) that
emulates, statefully, the documented REST resources a keystore uses — enough for
create / get / delete / list — and records every request. The request and response
shapes were built from the vendors' public REST documentation, not captured from a
live system:

* :class:`GCPSecretManager` — Google Cloud Secret Manager REST reference v1
  (``projects.secrets.create``, ``.addVersion``, ``.versions.access``, ``.delete``,
  ``.list``; ``google.rpc.Status`` errors) and Google's OAuth 2.0 for server-to-server
  applications (the JWT-bearer grant at the token URI).
* :class:`AzureKeyVault` — Azure Key Vault Secrets REST API 7.4 / 7.5 (Get / Set /
  Update / Delete Secret, Get Secret Versions, Get Secrets, Get Deleted Secret, Purge
  Deleted Secret; the
  ``{"error": {"code", "message", "innererror"}}`` error body; the 401 bearer challenge)
  the Microsoft identity platform client-credentials token request, and the App Service
  managed identity token endpoint (``IDENTITY_ENDPOINT``, api-version 2019-08-01).

``fail_next(count, status, body)`` makes the next API requests (not token requests)
answer with an error, to exercise retries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ReplayServer:
    """A threaded HTTPS server on 127.0.0.1 dispatching to :meth:`handle`."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self._faults: list[Reply] = []
        self._connections: set[Any] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = -1  # one write per response (flushed after each request)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                rec = Recorded(
                    self.command,
                    urllib.parse.unquote(url.path),
                    urllib.parse.parse_qs(url.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with server.lock:
                    server.requests.append(rec)
                    reply = server.dispatch(rec)
                data = b""
                if reply.body is not None:
                    data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                if data:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server.lock:
                    server._connections.discard(self.connection)
                super().finish()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop listening and drop open (keep-alive) connections."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def fail_next(self, count: int, status: int, body: Any = None) -> None:
        """Answer the next ``count`` API requests with ``status``/``body``."""
        with self.lock:
            self._faults.extend(Reply(status, body) for _ in range(count))

    def api_requests(self, method: str | None = None, contains: str = "") -> list[Recorded]:
        """Recorded API requests (not token requests, not status probes of ``/``),
        optionally by method and path substring."""
        with self.lock:
            return [
                r
                for r in self.requests
                if not self.is_token_request(r)
                and r.path != "/"
                and (method is None or r.method == method)
                and contains in r.path
            ]

    def is_token_request(self, rec: Recorded) -> bool:
        return False

    def dispatch(self, rec: Recorded) -> Reply:
        if not self.is_token_request(rec) and rec.path != "/" and self._faults:
            return self._faults.pop(0)
        return self.handle(rec)

    def handle(self, rec: Recorded) -> Reply:  # pragma: no cover - overridden
        return Reply(404)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self._faults.clear()


def _now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


# --------------------------------------------------------------------------- GCP
@dataclass
class ServiceAccount:
    """A test service-account key: the four KES config fields plus the public key."""

    client_email: str
    client_id: str
    private_key_id: str
    private_key_pem: str
    public_key: rsa.RSAPublicKey


def make_service_account() -> ServiceAccount:
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ServiceAccount(
        client_email="kes@pykes-test.iam.gserviceaccount.com",
        client_id="112233445566778899001",
        private_key_id=secrets.token_hex(20),
        private_key_pem=pem,
        public_key=key.public_key(),
    )


def _gcp_error(code: int, status: str, message: str) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message, "status": status}})


class GCPSecretManager(ReplayServer):
    """Secret Manager v1 REST resources of one project plus the OAuth2 token URI.

    The token endpoint (``POST /token``) implements the JWT-bearer grant: the assertion
    must be an RS256 JWT signed by ``account``'s key (verified with its public key),
    with ``iss`` = client email, ``aud`` = ``https://oauth2.googleapis.com/token`` (the
    documented audience of a token request) and a ``scope`` claim. API requests must
    carry an access token it issued.
    """

    PAGE_SIZE_MAX = 3  # small, so paging is exercised with a handful of secrets

    def __init__(self, cert: Path, key: Path, account: ServiceAccount, project: str) -> None:
        self.account = account
        self.project = project
        self.secrets: dict[str, dict[int, bytes]] = {}
        self.tokens: set[str] = set()
        self.assertions: list[dict[str, Any]] = []
        self.token_errors: list[str] = []
        super().__init__(cert, key)

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def is_token_request(self, rec: Recorded) -> bool:
        return rec.path == "/token"

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.secrets.clear()

    def _token(self, rec: Recorded) -> Reply:
        form = urllib.parse.parse_qs(rec.body.decode())
        grant = form.get("grant_type", [""])[0]
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", [""])[0]
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.account.public_key,
                algorithms=["RS256"],
                # The documented aud of an access-token request, whatever the token URI.
                audience="https://oauth2.googleapis.com/token",
                issuer=self.account.client_email,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as err:
            self.token_errors.append(str(err))
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT"})
        if header.get("kid") != self.account.private_key_id or not claims.get("scope"):
            self.token_errors.append("kid or scope")
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT"})
        self.assertions.append(claims)
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def handle(self, rec: Recorded) -> Reply:
        if rec.path == "/token" and rec.method == "POST":
            return self._token(rec)
        if rec.path == "/":
            return Reply(404, None)
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _gcp_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        base = f"/v1/projects/{self.project}/secrets"
        path = rec.path
        if not path.startswith(base):
            return _gcp_error(403, "PERMISSION_DENIED", "Permission denied on resource project.")
        rest = path[len(base) :]
        if rest == "" and rec.method == "POST":
            return self._create(rec)
        if rest == "" and rec.method == "GET":
            return self._list(rec)
        rest = rest.lstrip("/")
        if rest.endswith(":addVersion") and rec.method == "POST":
            return self._add_version(rest[: -len(":addVersion")], rec)
        if rest.endswith(":access") and rec.method == "GET":
            name, _, version = rest[: -len(":access")].partition("/versions/")
            return self._access(name, version)
        if "/" not in rest and rec.method == "DELETE":
            if self.secrets.pop(rest, None) is None:
                return self._not_found(rest)
            return Reply(200, {})
        return _gcp_error(404, "NOT_FOUND", "Method not found.")

    def _full(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{name}"

    def _not_found(self, name: str) -> Reply:
        return _gcp_error(404, "NOT_FOUND", f"Secret [{self._full(name)}] not found.")

    def _create(self, rec: Recorded) -> Reply:
        name = rec.query.get("secretId", [""])[0]
        body = json.loads(rec.body or b"{}")
        if "automatic" not in body.get("replication", {}):
            return _gcp_error(400, "INVALID_ARGUMENT", "Replication policy is required.")
        if name in self.secrets:
            return _gcp_error(409, "ALREADY_EXISTS", f"Secret [{self._full(name)}] already exists.")
        self.secrets[name] = {}
        return Reply(
            200,
            {
                "name": self._full(name),
                "replication": {"automatic": {}},
                "createTime": _now_rfc3339(),
                "etag": '"1"',
            },
        )

    def _add_version(self, name: str, rec: Recorded) -> Reply:
        versions = self.secrets.get(name)
        if versions is None:
            return self._not_found(name)
        data = base64.b64decode(json.loads(rec.body)["payload"].get("data", ""))
        number = len(versions) + 1
        versions[number] = data
        return Reply(
            200,
            {
                "name": f"{self._full(name)}/versions/{number}",
                "createTime": _now_rfc3339(),
                "state": "ENABLED",
                "replicationStatus": {"automatic": {}},
                "etag": '"1"',
            },
        )

    def _access(self, name: str, version: str) -> Reply:
        versions = self.secrets.get(name)
        if versions is None:
            return self._not_found(name)
        if version == "latest" and versions:
            version = str(max(versions))
        if not version.isdigit() or int(version) not in versions:
            return _gcp_error(
                404,
                "NOT_FOUND",
                f"Secret Version [{self._full(name)}/versions/{version}] not found.",
            )
        data = versions[int(version)]
        return Reply(
            200,
            {
                "name": f"{self._full(name)}/versions/{version}",
                "payload": {"data": base64.b64encode(data).decode()},
            },
        )

    def _list(self, rec: Recorded) -> Reply:
        size = int(rec.query.get("pageSize", ["0"])[0] or 0)
        size = min(size or self.PAGE_SIZE_MAX, self.PAGE_SIZE_MAX)
        start = int(rec.query.get("pageToken", ["0"])[0] or 0)
        names = sorted(self.secrets)
        chunk = names[start : start + size]
        body: dict[str, Any] = {
            "secrets": [{"name": self._full(n), "replication": {"automatic": {}}} for n in chunk],
            "totalSize": len(names),
        }
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        if not chunk:
            body.pop("secrets")
        return Reply(200, body)


# --------------------------------------------------------------------------- Azure
@dataclass
class AzureVersion:
    version: str
    value: str
    created: int
    enabled: bool = True
    exp: int | None = None
    nbf: int | None = None


def _az_error(status: int, code: str, message: str, inner: str | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner is not None:
        error["innererror"] = {"code": inner}
    return Reply(status, {"error": error})


class AzureKeyVault(ReplayServer):
    """One Key Vault's secrets REST resources plus a Microsoft identity token endpoint.

    Requests without a bearer token get the documented 401 challenge; tokens come from
    ``POST /{tenant}/oauth2/v2.0/token`` (client-credentials grant, checked against
    ``tenant``/``client_id``/``client_secret``). Deleted secrets stay soft-deleted until
    purged; ``being_deleted`` counts how many purge attempts still answer
    ``ObjectIsBeingDeleted``.
    """

    page_size = 25
    """Page size of list answers (the documented ``maxresults`` default is 25; tests
    lower it to exercise ``nextLink`` paging)."""

    def __init__(
        self, cert: Path, key: Path, tenant: str, client_id: str, client_secret: str
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.secrets: dict[str, list[AzureVersion]] = {}
        self.deleted: dict[str, list[AzureVersion]] = {}
        self.being_deleted = 0
        self.tokens: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self._clock = int(time.time()) - 1000
        super().__init__(cert, key)

    MSI_PATH = "/msi/token"
    MSI_HEADER = "replay-identity-header"
    """App Service managed identity endpoint (``IDENTITY_ENDPOINT``) and the secret
    ``IDENTITY_HEADER`` it checks."""

    def is_token_request(self, rec: Recorded) -> bool:
        return rec.path.endswith("/oauth2/v2.0/token") or rec.path == self.MSI_PATH

    def _msi_token(self, rec: Recorded) -> Reply:
        """App Service managed identity token (api-version 2019-08-01)."""
        query = {k: v[0] for k, v in rec.query.items()}
        self.token_forms.append(query)
        if (
            rec.headers.get("x-identity-header") != self.MSI_HEADER
            or query.get("api-version") != "2019-08-01"
            or query.get("client_id") != self.client_id
        ):
            return Reply(400, {"error": "invalid_request"})
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return Reply(
            200,
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": query.get("resource", ""),
                "token_type": "Bearer",
                "client_id": self.client_id,
            },
        )

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.secrets.clear()
            self.deleted.clear()
            self.being_deleted = 0

    def tick(self) -> int:
        self._clock += 1
        return self._clock

    def _token(self, rec: Recorded) -> Reply:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(rec.body.decode()).items()}
        self.token_forms.append({k: v for k, v in form.items() if k != "client_secret"})
        if (
            rec.path != f"/{self.tenant}/oauth2/v2.0/token"
            or form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return Reply(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
            )
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return Reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    def _attributes(self, v: AzureVersion) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "enabled": v.enabled,
            "created": v.created,
            "updated": v.created,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }
        if v.exp is not None:
            attrs["exp"] = v.exp
        if v.nbf is not None:
            attrs["nbf"] = v.nbf
        return attrs

    def _bundle(self, name: str, v: AzureVersion) -> dict[str, Any]:
        return {
            "value": v.value,
            "id": f"{self.url}/secrets/{name}/{v.version}",
            "attributes": self._attributes(v),
        }

    def _not_found(self, name: str) -> Reply:
        return _az_error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {name} was not found in this key vault. If you recently "
            "deleted this secret you may be able to recover it using the correct recovery "
            "command.",
        )

    def add_version(self, name: str, value: str, **attrs: Any) -> AzureVersion:
        """Store a new version directly (test setup, e.g. several versions)."""
        with self.lock:
            v = AzureVersion(secrets.token_hex(16), value, self.tick(), **attrs)
            self.secrets.setdefault(name, []).append(v)
            return v

    def handle(self, rec: Recorded) -> Reply:
        if rec.path == self.MSI_PATH and rec.method == "GET":
            return self._msi_token(rec)
        if self.is_token_request(rec) and rec.method == "POST":
            return self._token(rec)
        if rec.path == "/":
            return Reply(403, None)
        if "api-version" not in rec.query:
            return _az_error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.tenant}", '
                'resource="https://vault.azure.net"'
            )
            return Reply(
                401,
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token.",
                    }
                },
                {"WWW-Authenticate": challenge},
            )
        parts = [p for p in rec.path.split("/") if p]
        if parts == ["secrets"] and rec.method == "GET":
            return self._list(rec)
        if len(parts) >= 2 and parts[0] == "secrets":
            name = parts[1]
            if len(parts) == 2 and rec.method == "PUT":
                return self._set(name, rec)
            if len(parts) == 2 and rec.method == "GET":
                return self._get(name, "")
            if len(parts) == 2 and rec.method == "DELETE":
                return self._delete(name)
            if len(parts) == 3 and parts[2] == "versions" and rec.method == "GET":
                return self._versions(name, rec)
            if len(parts) == 3 and rec.method == "GET":
                return self._get(name, parts[2])
            if len(parts) == 3 and rec.method == "PATCH":
                return self._update(name, parts[2], rec)
        if len(parts) == 2 and parts[0] == "deletedsecrets" and rec.method == "DELETE":
            return self._purge(parts[1])
        if len(parts) == 2 and parts[0] == "deletedsecrets" and rec.method == "GET":
            return self._get_deleted(parts[1])
        return _az_error(400, "BadParameter", "Method or path not supported.")

    def _set(self, name: str, rec: Recorded) -> Reply:
        if name in self.deleted:
            if self.being_deleted:
                return _az_error(
                    409,
                    "Conflict",
                    f"Secret {name} is currently being deleted.",
                    "ObjectIsBeingDeleted",
                )
            return _az_error(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the secret can only be recovered or purged.",
                "ObjectIsDeletedButRecoverable",
            )
        body = json.loads(rec.body)
        v = AzureVersion(secrets.token_hex(16), body["value"], self.tick())
        self.secrets.setdefault(name, []).append(v)
        return Reply(200, self._bundle(name, v))

    def _get(self, name: str, version: str) -> Reply:
        versions = self.secrets.get(name)
        if not versions:
            return self._not_found(name)
        if not version:
            return Reply(200, self._bundle(name, versions[-1]))
        for v in versions:
            if v.version == version:
                if not v.enabled:
                    return _az_error(
                        403, "Forbidden", "Operation get is not allowed on a disabled secret."
                    )
                return Reply(200, self._bundle(name, v))
        return self._not_found(name)

    def _update(self, name: str, version: str, rec: Recorded) -> Reply:
        """Update Secret: only ``attributes.enabled`` is emulated."""
        for v in self.secrets.get(name, []):
            if v.version == version:
                attrs = json.loads(rec.body or b"{}").get("attributes", {})
                if "enabled" in attrs:
                    v.enabled = bool(attrs["enabled"])
                body = self._bundle(name, v)
                body.pop("value")
                return Reply(200, body)
        return self._not_found(name)

    def _delete(self, name: str) -> Reply:
        versions = self.secrets.pop(name, None)
        if versions is None:
            return self._not_found(name)
        self.deleted[name] = versions
        return self._deleted_bundle(name)

    def _get_deleted(self, name: str) -> Reply:
        if name not in self.deleted:
            return _az_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return self._deleted_bundle(name)

    def _deleted_bundle(self, name: str) -> Reply:
        versions = self.deleted[name]
        now = self.tick()
        return Reply(
            200,
            {
                "recoveryId": f"{self.url}/deletedsecrets/{name}",
                "deletedDate": now,
                "scheduledPurgeDate": now + 90 * 86400,
                "id": f"{self.url}/secrets/{name}/{versions[-1].version}",
                "attributes": self._attributes(versions[-1]),
            },
        )

    def _purge(self, name: str) -> Reply:
        if name not in self.deleted:
            return _az_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        if self.being_deleted:
            self.being_deleted -= 1
            return _az_error(
                409,
                "Conflict",
                f"Secret {name} is currently being deleted.",
                "ObjectIsBeingDeleted",
            )
        del self.deleted[name]
        return Reply(204)

    def _page(self, rec: Recorded, items: list[dict[str, Any]], path: str) -> Reply:
        size = int(rec.query.get("maxresults", ["0"])[0] or 0)
        size = min(size or self.page_size, self.page_size)
        start = int(rec.query.get("$skiptoken", ["0"])[0] or 0)
        body: dict[str, Any] = {"value": items[start : start + size], "nextLink": None}
        if start + size < len(items):
            api = rec.query["api-version"][0]
            body["nextLink"] = (
                f"{self.url}{path}?api-version={api}&$skiptoken={start + size}&maxresults={size}"
            )
        return Reply(200, body)

    def _versions(self, name: str, rec: Recorded) -> Reply:
        items = [
            {
                "id": f"{self.url}/secrets/{name}/{v.version}",
                "attributes": self._attributes(v),
            }
            for v in self.secrets.get(name, [])
        ]
        return self._page(rec, items, f"/secrets/{name}/versions")

    def _list(self, rec: Recorded) -> Reply:
        items = [
            {"id": f"{self.url}/secrets/{n}", "attributes": self._attributes(vs[-1])}
            for n, vs in sorted(self.secrets.items())
        ]
        return self._page(rec, items, "/secrets")


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- configs
GCP_PROJECT = "pykes-test"


def gcp_config(server: GCPSecretManager, **overrides: Any) -> Any:
    """The ``keystore.gcp.secretmanager`` section for a replay server; the private key
    is written with literal ``\\n`` sequences, as in a one-line YAML/env value."""
    from pykes.config import GCPKeyStoreConfig

    account = server.account
    values: dict[str, Any] = {
        "project_id": server.project,
        "endpoint": server.host,
        "client_email": account.client_email,
        "client_id": account.client_id,
        "private_key_id": account.private_key_id,
        "private_key": account.private_key_pem.replace("\n", "\\n"),
        **overrides,
    }
    return GCPKeyStoreConfig(**values)


def gcp_options(server: GCPSecretManager, ca_file: Path, **overrides: Any) -> dict[str, Any]:
    """Keyword options of ``pykes.keystore.gcp.connect`` for a replay server."""
    return {"token_uri": server.token_uri, "ca_file": str(ca_file), **overrides}


AZURE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE_CLIENT_ID = "00000000-1111-2222-3333-444444444444"
AZURE_CLIENT_SECRET = "replay~client~secret"


def azure_vault(cert: Path, key: Path) -> AzureKeyVault:
    return AzureKeyVault(cert, key, AZURE_TENANT, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)


def azure_config(server: AzureKeyVault, **overrides: Any) -> Any:
    """The ``keystore.azure.keyvault`` section (client-secret auth) for a replay server."""
    from pykes.config import AzureKeyStoreConfig

    values: dict[str, Any] = {
        "endpoint": server.url,
        "tenant_id": server.tenant,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        **overrides,
    }
    return AzureKeyStoreConfig(**values)


def azure_options(server: AzureKeyVault, ca_file: Path, **overrides: Any) -> dict[str, Any]:
    """Keyword options of ``pykes.keystore.azure.connect`` for a replay server: the token
    authority is the replay server, its certificate is trusted, and the SDK's check that
    the challenge resource (``https://vault.azure.net``) matches the vault host is off,
    since the vault is 127.0.0.1. Back-offs are shortened."""
    return {
        "authority": server.url,
        "ca_file": str(ca_file),
        "verify_challenge_resource": False,
        "retry_backoff": 0.05,
        "retry_backoff_max": 0.2,
        "purge_delay": (0.01, 0.05),
        **overrides,
    }


def run_store(
    connect: Callable[..., Awaitable[Any]],
    config: Any,
    options: dict[str, Any],
    scenario: Callable[[Any], Awaitable[None]],
) -> None:
    """Connect a store, run ``scenario(store)`` and close the store, in a fresh loop."""

    async def main() -> None:
        store = await connect(config, **options)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


# ------------------------------------------------------------------ shared scenarios
async def create_get_list_delete(store: Any, name: str, value: bytes) -> None:
    """The documented lifecycle: create, read back, list, delete, list empty."""
    from pykes.keystore import KeyStore

    assert isinstance(store, KeyStore)
    await store.create(name, value)
    assert await store.get(name) == value
    assert await store.list("", 0) == ([name], "")
    await store.delete(name)
    assert await store.list("", 0) == ([], "")


async def round_trip_then_gone(store: Any, name: str, value: bytes) -> None:
    """Create, read back and delete ``name``; afterwards reading it is "not found"."""
    from pykes.errors import KeyNotFoundError

    await store.create(name, value)
    assert await store.get(name) == value
    await store.delete(name)
    with pytest.raises(KeyNotFoundError):
        await store.get(name)


async def second_create_keeps_first(store: Any, name: str) -> None:
    """A second create of ``name`` raises "key exists" and leaves the first value."""
    from pykes.errors import KeyExistsError

    await store.create(name, b"first")
    with pytest.raises(KeyExistsError):
        await store.create(name, b"second")
    assert await store.get(name) == b"first"


def assert_unreachable_quickly(
    connect: Callable[..., Awaitable[Any]], config: Any, match: str, options: dict[str, Any]
) -> None:
    """``connect(config, **options)`` to a closed port fails within 2 s with "unreachable"
    naming the backend (``match``)."""
    from pykes.errors import KeyStoreUnreachable

    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(KeyStoreUnreachable, match=match):
            await connect(config, **options)
        assert time.monotonic() - start < 2

    asyncio.run(main())
