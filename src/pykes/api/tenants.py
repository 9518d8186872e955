"""Stateful mode's contexts, one per enclave: built from the store when an enclave is first
asked for, kept until a write changes the enclave's policies or identities (on any
worker: the shared record of changes, keystore/changes.py, names the enclave), or until
the ring cache expires (``cache.expiry.any``: what another node wrote).

The server's admin acts in every enclave; other identities in the enclaves whose store
assigns them a policy (``default`` also has the config file's policies and
assignments). A request naming an enclave that does not exist gets ``404 enclave does
not exist`` if it comes from the admin, else the 403 of any refused request: names of
enclaves do not leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pykes.api.context import Context, ServerFacts
from pykes.api.messages import Request
from pykes.api.selector import DEFAULT_ENCLAVE, header_enclave, named_enclave
from pykes.api.stored import StoredEnclaves
from pykes.auth.authorizer import Authorizer
from pykes.auth.ephemeral import Assignment, EphemeralPolicy, FixedPolicies, Snapshot
from pykes.auth.policy import Policy
from pykes.auth.proxy import TLSProxy
from pykes.errors import ERR_NOT_ALLOWED, APIError
from pykes.keystore.changes import KeyChanges
from pykes.observe.logs import Logs
from pykes.store.errors import EnclaveNotFoundError
from pykes.store.records import IdentityRecord, PolicyRecord

MAX_CONTEXTS = 4096
"""Enclave contexts a worker keeps at most; all are dropped when full (rebuilt on use)."""


class Tenants:
    """A worker's enclave contexts. ``policies`` and ``assignments`` are the config
    file's, for ``default``."""

    def __init__(
        self,
        stored: StoredEnclaves,
        changes: KeyChanges,
        *,
        admin: str,
        policies: Mapping[str, Policy],
        assignments: Mapping[str, str],
        facts: ServerFacts,
        log: Logs,
    ) -> None:
        self.stored = stored
        self.admin = admin
        self._config_policies = MappingProxyType(dict(policies))
        self._config_assignments = MappingProxyType(dict(assignments))
        self._facts = facts
        self._log = log
        self._changes = changes
        self._generation = changes.generation
        self._seen = self._generation[0]
        self._contexts: dict[str, Context] = {}

    # --- one request ---------------------------------------------------------------

    def selected(self, req: Request) -> Context | None:
        """The context of the enclave a routed ``req`` names, if this worker holds it
        and ``req`` has no query string (the usual request): one header scan and one
        dict lookup, no coroutine. None: ``request_context`` decides. Only valid names
        are ever held, so a hit needs no name check."""
        if req.query:
            return None
        if self._generation[0] != self._seen:
            self._catch_up()
        route = req.route
        if route is not None and not route.in_enclave:
            return self._contexts.get(DEFAULT_ENCLAVE)
        ctx = self._contexts.get(header_enclave(req) or DEFAULT_ENCLAVE)
        if ctx is not None:
            req.enclave = ctx.tenant  # its audit line names it (a held name: valid)
        return ctx

    async def request_context(self, req: Request, proxy: TLSProxy) -> Context:
        """The context ``req`` acts in: the enclave it names (enclave administration
        acts in ``default``); ``APIError`` for an invalid or unknown enclave."""
        route = req.route
        in_enclave = route is None or route.in_enclave
        if in_enclave:
            name = req.enclave = named_enclave(req)  # its audit line names it
        else:
            name = DEFAULT_ENCLAVE
        ctx = self.cached(name)
        if ctx is None:
            ctx = await self.context(name)
            if ctx is None:
                if self._is_admin(req, proxy):
                    raise EnclaveNotFoundError()
                raise APIError(ERR_NOT_ALLOWED.status, ERR_NOT_ALLOWED.message)
        return ctx

    def _is_admin(self, req: Request, proxy: TLSProxy) -> bool:
        identity = req.identity
        if identity in proxy.identities:  # the client a TLS proxy forwards
            try:
                identity = proxy.client_identity(req.headers)
            except APIError:
                return False
        return bool(identity) and identity == self.admin

    # --- the contexts ----------------------------------------------------------------

    def cached(self, name: str) -> Context | None:
        if self._generation[0] != self._seen:
            self._catch_up()
        return self._contexts.get(name)

    async def context(self, name: str) -> Context | None:
        """The context of enclave ``name`` read from the store (None: no such enclave).
        Kept unless a write of the enclave was published while it was read."""
        before = self._seen
        try:
            policies, identities = await self.stored.records(name)
        except EnclaveNotFoundError:
            return None
        ctx = self._build(name, policies, identities)
        if self._generation[0] == before or self._unchanged_since(before, name):
            if len(self._contexts) >= MAX_CONTEXTS:
                self._contexts = {}
            self._contexts[name] = ctx
        return ctx

    def _build(
        self, name: str, policies: list[PolicyRecord], identities: list[IdentityRecord]
    ) -> Context:
        stored = Snapshot(
            0,
            MappingProxyType(
                {
                    p.name: EphemeralPolicy(Policy(p.name, p.allow, p.deny), p.created_at_ns,
                                            p.created_by)
                    for p in policies
                }
            ),
            MappingProxyType(
                {i.identity: Assignment(i.policy, i.created_at_ns, i.created_by)
                 for i in identities}
            ),
        )  # fmt: skip
        config = name == DEFAULT_ENCLAVE  # the config file's policies apply to default
        config_policies = self._config_policies if config else {}
        authorizer = Authorizer(
            self.admin,
            config_policies,
            self._config_assignments if config else {},
            FixedPolicies(stored),
        )
        return Context(
            keys=self.stored.keys(name),
            authorizer=authorizer,
            policies=config_policies,
            facts=self._facts,
            log=self._log,
            tenant=name,
            enclaves=self.stored,
        )

    def expire(self) -> None:
        """Drop every context (the ring cache's ``cache.expiry.any`` ticker): what other
        nodes wrote to a shared store is seen at most that long after (docs/stateful.md,
        "Consistency across nodes")."""
        self._contexts = {}

    def _catch_up(self) -> None:
        """Drop the contexts of the enclaves written since ``self._seen`` (names
        without a ``/``: the others are key rings)."""
        self._seen, changed = self._changes.since(self._seen)
        if changed is None:
            self._contexts = {}
            return
        for name in changed:
            self._contexts.pop(name, None)

    def _unchanged_since(self, generation: int, name: str) -> bool:
        changed = self._changes.since(generation)[1]
        return changed is not None and name not in changed
