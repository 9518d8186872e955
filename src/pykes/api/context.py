"""What a request's handler may touch, resolved once at the top of the pipeline.

A :class:`Context` is one tenant's keys, policies and identities, plus the server's logs,
metrics and facts. Handlers receive it and reach nothing global. In stateless mode a
server has exactly one (its keystore is the only key space); stateful mode adds one per
enclave behind the same seam.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pykes import __version__
from pykes.auth.authorizer import Authorizer
from pykes.auth.policy import Policy
from pykes.crypto import KeyType, KeyVersion
from pykes.keystore import KeyCache
from pykes.observe.logs import Logs
from pykes.observe.metrics import Metrics

if TYPE_CHECKING:  # stateful mode's, imported only there (the store loads sqlite3)
    from pykes.api.kms_access import KMSAccess
    from pykes.api.stored import EnclaveKeys, StoredEnclaves

COMMIT = "<unknown>"
DEFAULT_TENANT = "default"


@dataclass(eq=False)
class ServerFacts:
    """Server-wide services and facts, the same for every tenant."""

    log: Logs
    metrics: Metrics
    api_listing: bytes = b"[]"  # the answer of /v1/api: the current API's routes
    start_ns: int = field(default_factory=time.time_ns)
    start_monotonic: float = field(default_factory=time.monotonic)
    address: str = ""  # the address the server listens on, as configured (host:port)
    default_key_type: KeyType = KeyType.AES256
    version: str = __version__
    commit: str = COMMIT


@dataclass(eq=False, slots=True)
class Context:
    """One tenant: its keys (``keys``), who may do what (``authorizer``, with the config
    file's ``policies``), and the server's ``log`` and ``facts``.

    In stateful mode the tenant is an enclave: ``keys`` are its key rings, ``enclaves``
    the store its policies, identities and enclaves are written to (None: stateless),
    ``kms`` its KMS API identities and policies."""

    keys: KeyCache[KeyVersion] | EnclaveKeys
    authorizer: Authorizer
    policies: Mapping[str, Policy]
    facts: ServerFacts
    log: Logs
    tenant: str = DEFAULT_TENANT
    enclaves: StoredEnclaves | None = None
    kms: KMSAccess | None = None  # stateful mode: who may run which KMS API command

    @property
    def admin(self) -> str:
        return self.authorizer.admin
