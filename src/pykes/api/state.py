"""Everything a request handler needs, built once from the configuration.

A SIGHUP reload builds a new ``ServerState`` and swaps it in; handlers read the
state they were given at the start of a request, so in-flight requests finish with
the old one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pykes import __version__
from pykes.api.routes import RouteTable
from pykes.auth.authorizer import Authorizer
from pykes.auth.policy import Policy
from pykes.auth.proxy import TLSProxy
from pykes.crypto import KeyType, KeyVersion
from pykes.keystore import KeyCache
from pykes.observe.logs import Logs
from pykes.observe.metrics import Metrics

COMMIT = "<unknown>"


@dataclass(eq=False)
class ServerState:
    routes: RouteTable
    authorizer: Authorizer
    policies: dict[str, Policy]
    keys: KeyCache[KeyVersion]
    log: Logs
    metrics: Metrics
    start_ns: int = field(default_factory=time.time_ns)
    start_monotonic: float = field(default_factory=time.monotonic)
    default_key_type: KeyType = KeyType.AES256
    version: str = __version__
    commit: str = COMMIT
    # tls.proxy (docs/compat/auth.md §10); no identities = no proxies, one set lookup per request
    proxy: TLSProxy = field(default_factory=lambda: TLSProxy(frozenset()))

    @property
    def admin(self) -> str:
        return self.authorizer.admin
