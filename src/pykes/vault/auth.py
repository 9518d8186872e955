"""Vault login (AppRole, Kubernetes) and token renewal (docs/compat/keystore.md §4.3).

Renewal policy of :class:`TokenKeeper` (one asyncio task per keystore):

* a token with TTL 0 never expires and is never renewed;
* at 80 % of the TTL the token is renewed with ``auth/token/renew-self`` (increment =
  the TTL granted at login), up to 3 tries with 0.25 s / 0.5 s back-off, no retry on
  a 4xx answer;
* if renewal fails, the token is not renewable, or the granted TTL is shorter than
  ``min(login TTL, 30 s)`` or capped by the max TTL (Vault's warning), the keeper
  logs in again; failed logins are retried with back-off 0.5 s → 3 s;
* a token obtained by a re-login is put into use after ``min(remaining/2, 30 s)``,
  ``remaining`` being the old token's lifetime left minus 1 s of rounding slack
  (replication lag: replicas may not know a brand-new token yet);
* while Vault is sealed renewal pauses.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykes.vault.http import (
    NO_NAMESPACE,
    VaultError,
    VaultHTTP,
    VaultUnreachable,
    join_path,
)

if TYPE_CHECKING:
    from pykes.config import VaultKeyStoreConfig

RENEW_FRACTION = 0.8
"""Renew when this fraction of the TTL has passed."""

RENEW_TRIES = 3
RENEW_BACKOFF = 0.25
LOGIN_BACKOFF_MIN = 0.5
LOGIN_BACKOFF_MAX = 3.0
SHORT_TTL = 30.0
"""A renewal granting less than ``min(login TTL, SHORT_TTL)`` triggers a re-login."""
SWAP_DELAY_MAX = 30.0
"""A freshly logged-in token is used after ``min(remaining/2, SWAP_DELAY_MAX)``."""
TTL_SLACK = 1.0
"""Vault reports TTLs in whole (rounded) seconds: assume a token dies this much sooner."""

log = logging.getLogger(__name__)


def _now() -> float:
    return asyncio.get_running_loop().time()


@dataclass(frozen=True)
class Token:
    """A Vault client token. ``ttl`` in seconds (0 = never expires), ``obtained`` on
    the event loop clock. ``repr`` hides the secret."""

    value: str
    ttl: float
    renewable: bool
    obtained: float

    @property
    def expires(self) -> float:
        return self.obtained + self.ttl if self.ttl > 0 else math.inf

    def __repr__(self) -> str:
        return f"Token(ttl={self.ttl:g}, renewable={self.renewable})"


def auth_namespace(configured: str, keystore_namespace: str) -> str:
    """The namespace of a login: ``"/"`` → none (root), ``""`` → the keystore's."""
    if configured == "/":
        return NO_NAMESPACE
    return configured or keystore_namespace


@dataclass(frozen=True)
class AppRoleLogin:
    """``POST auth/<engine>/login {"role_id","secret_id"}``."""

    engine: str
    namespace: str
    role_id: str
    secret_id: str

    async def body(self) -> dict[str, Any]:
        return {"role_id": self.role_id, "secret_id": self.secret_id}


@dataclass(frozen=True)
class KubernetesLogin:
    """``POST auth/<engine>/login {"role","jwt"}``; a ``jwt`` containing ``/`` is a
    file path, read again on every login (Kubernetes rotates projected tokens)."""

    engine: str
    namespace: str
    role: str
    jwt: str

    async def body(self) -> dict[str, Any]:
        jwt = self.jwt
        if "/" in jwt:
            try:
                jwt = (await asyncio.to_thread(_read_text, jwt)).strip()
            except OSError as err:
                raise VaultError(
                    f"vault: failed to read kubernetes JWT from '{self.jwt}': {err.strerror}"
                ) from None
        return {"role": self.role, "jwt": jwt}


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


LoginMethod = AppRoleLogin | KubernetesLogin


def login_method(config: VaultKeyStoreConfig) -> LoginMethod:
    """The configured AppRole or Kubernetes login (exactly one must be present)."""
    if config.approle is not None and config.kubernetes is not None:
        raise ValueError("vault: more than one authentication method specified")
    if config.approle is not None:
        a = config.approle
        ns = auth_namespace(a.namespace, config.namespace)
        return AppRoleLogin(a.engine or "approle", ns, a.id, a.secret)
    if config.kubernetes is not None:
        k = config.kubernetes
        ns = auth_namespace(k.namespace, config.namespace)
        return KubernetesLogin(k.engine or "kubernetes", ns, k.role, k.jwt)
    raise ValueError("vault: no authentication method specified")


async def login(http: VaultHTTP, method: LoginMethod) -> Token:
    """Log in; raise :class:`VaultError` (or :class:`VaultUnreachable`) on failure."""
    path = join_path("auth", method.engine, "login")
    resp = await http.request(
        "POST", path, body=await method.body(), namespace=method.namespace, authenticated=False
    )
    if resp.is_sealed():
        raise VaultUnreachable("vault: authentication failed: key store is sealed")
    if resp.status != 200:
        raise VaultError(f"vault: authentication failed: {resp.describe()}")
    return _token_from(resp.body, "authentication failed")


def _token_from(body: dict[str, Any], what: str) -> Token:
    auth = body.get("auth")
    if not isinstance(auth, dict) or not isinstance(auth.get("client_token"), str):
        raise VaultError(f"vault: {what}: response contains no token")
    ttl = auth.get("lease_duration", 0)
    return Token(
        value=auth["client_token"],
        ttl=float(ttl) if isinstance(ttl, int | float) else 0.0,
        renewable=bool(auth.get("renewable", False)),
        obtained=_now(),
    )


class TokenKeeper:
    """Keeps ``http.token`` valid: renews before expiry, re-logs in when needed.

    ``unsealed`` is set whenever Vault is not known to be sealed; renewal and re-login
    wait on it. ``renewals`` and ``logins`` count successful renewals and logins
    (including the initial one). Failures are logged (never with the token).
    """

    def __init__(
        self,
        http: VaultHTTP,
        method: LoginMethod,
        token: Token,
        unsealed: asyncio.Event,
    ) -> None:
        self._http = http
        self._method = method
        self._login_ttl = token.ttl
        self._unsealed = unsealed
        self.renewals = 0
        self.logins = 1
        self.token = token
        http.token = token.value

    @property
    def token(self) -> Token:
        return self._token

    @token.setter
    def token(self, token: Token) -> None:
        self._token = token
        self._http.token = token.value

    async def run(self) -> None:
        """The renewal loop; runs until cancelled."""
        while True:
            current = self._token
            if current.ttl <= 0:
                return  # a token without TTL never expires
            await _sleep_until(current.obtained + RENEW_FRACTION * current.ttl)
            await self._unsealed.wait()
            if current.renewable:
                renewed, capped = await self._renew(current)
                if renewed is not None:
                    self.token = renewed
                    self.renewals += 1
                    if not capped and renewed.ttl >= min(self._login_ttl, SHORT_TTL):
                        continue
            fresh = await self._login_until_success()
            remaining = self._token.expires - _now() - TTL_SLACK
            if remaining > 0:
                await asyncio.sleep(min(remaining / 2, SWAP_DELAY_MAX))
            self._login_ttl = fresh.ttl
            self.token = fresh
            self.logins += 1

    async def _renew(self, current: Token) -> tuple[Token | None, bool]:
        """``renew-self``; returns the renewed token (or ``None``) and whether Vault
        capped the TTL at the token's max TTL (then a re-login is due)."""
        increment = max(1, round(self._login_ttl))
        for attempt in range(RENEW_TRIES):
            if attempt:
                delay = RENEW_BACKOFF * 2 ** (attempt - 1)
                if current.expires - _now() - TTL_SLACK < delay:
                    break  # no time left for retries: log in instead
                await asyncio.sleep(delay)
            try:
                resp = await self._http.request(
                    "POST",
                    "auth/token/renew-self",
                    body={"increment": increment},
                    namespace=self._method.namespace,
                )
            except VaultError as err:
                log.warning(f"vault: failed to renew token: {err}")
                continue
            if resp.status == 200:
                try:
                    token = _token_from(resp.body, "failed to renew token")
                except VaultError as err:
                    log.warning(str(err))
                    return None, False
                if token.ttl <= 0 or token.value != current.value:
                    return None, False
                warnings = resp.body.get("warnings") or []
                capped = any("max_ttl" in str(w) for w in warnings)
                return token, capped
            if any("max TTL" in e for e in resp.errors):
                return None, True  # the expected end of a token's life: no warning
            log.warning(f"vault: failed to renew token: {resp.describe()}")
            if 400 <= resp.status < 500:
                return None, False
        return None, False

    async def _login_until_success(self) -> Token:
        delay = LOGIN_BACKOFF_MIN
        while True:
            await self._unsealed.wait()
            try:
                return await login(self._http, self._method)
            except VaultError as err:
                log.warning(str(err))
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOGIN_BACKOFF_MAX)


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - _now()))
