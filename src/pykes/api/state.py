"""Everything the API needs to answer requests, built once from the configuration.

A SIGHUP reload builds a new ``ServerState`` and swaps it in; a request keeps the state
it started with, so in-flight requests finish with the old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykes.api.context import Context
from pykes.api.routes import RouteTable
from pykes.auth.proxy import TLSProxy
from pykes.observe.logs import Logs
from pykes.observe.metrics import Metrics


@dataclass(eq=False)
class ServerState:
    routes: RouteTable
    context: Context  # stateless mode: the one tenant, the keystore's key space
    # tls.proxy (docs/compat/auth.md §10); no identities = no proxies, one set lookup per request
    proxy: TLSProxy = field(default_factory=lambda: TLSProxy(frozenset()))
    # Every request carries its header fields (``Request.headers``), not only a TLS
    # proxy's: for what the API reads from headers beyond the proxy's (e.g. a tenant).
    reads_headers: bool = False

    def __post_init__(self) -> None:
        # The pipeline's per-request services, one attribute load away.
        self.log: Logs = self.context.log
        self.metrics: Metrics = self.context.facts.metrics
