"""Everything the API needs to answer requests, built once from the configuration.

A SIGHUP reload builds a new ``ServerState`` and swaps it in; a request keeps the state
it started with, so in-flight requests finish with the old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pykes.api.context import Context
from pykes.api.routes import RouteTable
from pykes.auth.proxy import TLSProxy
from pykes.keystore import KeyCache
from pykes.observe.logs import Logs
from pykes.observe.metrics import Metrics

if TYPE_CHECKING:
    from pykes.api.tenants import Tenants


@dataclass(eq=False)
class ServerState:
    routes: RouteTable
    context: Context  # stateless mode: the one tenant, the keystore's key space
    # tls.proxy (docs/compat/auth.md §10); no identities = no proxies, one set lookup per request
    proxy: TLSProxy = field(default_factory=lambda: TLSProxy(frozenset()))
    # Every request carries the enclave selector (``Request.headers``: over HTTP/1.1 that
    # field alone, api/selector.py), not only a TLS proxy's requests their fields.
    reads_headers: bool = False
    # Stateful mode: each enclave's context (``context`` is then default's as it was
    # at start, for the routes that need no identity). None: stateless.
    tenants: Tenants | None = None
    # Stateless mode: the query strings looked at for an enclave, the names warned about.
    queries_seen: set[str] = field(default_factory=set)
    enclaves_seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # The pipeline's per-request services, one attribute load away.
        self.log: Logs = self.context.log
        self.metrics: Metrics = self.context.facts.metrics

    @property
    def key_cache(self) -> KeyCache[Any]:
        """The cache whose tickers this state runs: the keystore's, or the ring cache."""
        if self.tenants is not None:
            return self.tenants.stored.rings
        keys = self.context.keys
        assert isinstance(keys, KeyCache)
        return keys

    async def start(self) -> None:
        await self.key_cache.start()

    async def close(self) -> None:
        """Stop the cache (the keystore's connections with it; not the stateful store,
        which outlives a SIGHUP: its worker closes it)."""
        await self.key_cache.close()
