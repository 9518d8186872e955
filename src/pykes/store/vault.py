"""The OpenBao/Vault K/V v2 engine (``store.vault``): the store's records as K/V v2
secrets, so that many pykes nodes share one store. OpenBao (its Raft storage) orders and
replicates the writes; pykes adds no consensus of its own.

The Engine protocol on K/V v2 (docs/store.md, "The OpenBao engine"):

* the record ``P`` is the secret ``<engine>/data/<prefix>/P`` holding
  ``{"value": <standard base64>}``; its version is the secret's K/V v2 version;
* ``put(P, value, 0)`` writes with ``options.cas = 0`` (no such secret) — or, over a
  deleted record, with the number of its destroyed version; ``put(P, value, n)`` is a
  ``PATCH`` with ``options.cas = n``, which K/V v2 also refuses on a destroyed version;
* ``delete(P, n)`` destroys version ``n`` (its value is erased), then reads the metadata:
  ``n`` must be the current version, else it is a conflict (the destroy hit an older
  version). The name stays in the metadata: K/V v2 cannot delete metadata on a
  condition, and deleting it unconditionally could erase a record created meanwhile;
* ``list(prefix)`` is ``LIST <engine>/detailed-metadata/<folder>`` (OpenBao ≥ 2.2) in
  pages, without destroyed records: one request per 1,000 names.

The engine needs a K/V v2 engine that keeps one version per secret (``max_versions=1``):
an older version of a key ring would keep a deleted key version readable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Any

from pykes.store.engine import Record, VersionConflict, check_path
from pykes.store.errors import RecordTooLargeError
from pykes.vault.client import VaultClient, client_for
from pykes.vault.http import DEFAULT_TIMEOUT, VaultError, VaultResponse, join_path

if TYPE_CHECKING:
    from pykes.config import VaultKeyStoreConfig

LIST_PAGE = 1000
"""Names per listing request (each comes with its metadata, ~400 bytes)."""

_CAS_MISMATCH = "check-and-set parameter did not match"
_TOO_LARGE = "too large"  # OpenBao Raft: "put failed due to value being too large; …"


class VaultEngine:
    """Records in a K/V v2 engine of OpenBao (or Vault). Create it with :meth:`connect`;
    every call may be awaited from any task of the loop that connected it."""

    def __init__(self, config: VaultKeyStoreConfig, client: VaultClient) -> None:
        if config.version != "v2":
            raise ValueError(
                f"vault: the store needs a K/V v2 engine (version: v2), not '{config.version}'"
                ": K/V v1 has no check-and-set"
            )
        if config.transit is not None:
            raise ValueError(
                "vault: the store seals its records itself: 'transit' is not used by the store"
            )
        self._engine = config.engine
        self._prefix = config.prefix
        self._client = client
        where = join_path(config.engine, config.prefix)
        self.description = f"OpenBao/Vault K/V v2: {config.endpoint} {where}"

    @classmethod
    async def connect(
        cls, config: VaultKeyStoreConfig, *, timeout: float = DEFAULT_TIMEOUT
    ) -> VaultEngine:
        """Log in with ``config`` (a ``keystore.vault``-shaped section) and check the
        engine's settings. Raises ``ValueError`` for invalid settings,
        ``VaultUnreachable`` if Vault is unreachable or sealed, and ``VaultError`` if the
        login fails or the engine does not keep exactly one version per secret."""
        engine = cls(config, client_for(config, timeout=timeout))
        try:
            await engine._client.start()
            await engine._check_engine()
        except BaseException:
            await engine.close()
            raise
        return engine

    # --- the Engine protocol ----------------------------------------------------------

    async def get(self, path: str) -> Record | None:
        location = self._path("data", check_path(path))
        resp = await self._call("GET", location)
        if resp.status == 404:  # none, or its current version destroyed
            return None
        if resp.status != 200:
            raise VaultError(f"vault: failed to read '{location}': {resp.describe()}")
        secret = resp.data if isinstance(resp.data, dict) else {}
        fields, metadata = secret.get("data"), secret.get("metadata")
        value = fields.get("value") if isinstance(fields, dict) else None
        version = metadata.get("version") if isinstance(metadata, dict) else None
        if not isinstance(value, str) or not isinstance(version, int) or version < 1:
            raise VaultError(f"vault: '{location}' is not a record of a pykes store")
        try:
            return Record(base64.b64decode(value, validate=True), version)
        except (binascii.Error, ValueError):
            raise VaultError(f"vault: '{location}' is not a record of a pykes store") from None

    async def put(self, path: str, value: bytes, expected_version: int) -> int:
        location = self._path("data", check_path(path))
        data = {"value": base64.b64encode(value).decode("ascii")}
        if expected_version:
            # A PATCH, unlike a write, fails on a destroyed (deleted) current version.
            body = {"options": {"cas": expected_version}, "data": data}
            resp = await self._call("PATCH", location, body=body)
        else:
            resp = await self._create(location, data)
        if resp.status == 404 or _cas_mismatch(resp):
            raise VersionConflict(path, expected_version)
        if resp.status == 413 or any(_TOO_LARGE in error for error in resp.errors):
            raise RecordTooLargeError(len(value))
        written = resp.data.get("version") if isinstance(resp.data, dict) else None
        if resp.status != 200 or not isinstance(written, int):
            raise VaultError(f"vault: failed to write '{location}': {resp.describe()}")
        return written

    async def delete(self, path: str, expected_version: int) -> None:
        check_path(path)
        if expected_version < 1:
            raise VersionConflict(path, expected_version)
        location = self._path("destroy", path)
        resp = await self._call("PUT", location, body={"versions": [expected_version]})
        if resp.status not in (200, 204):
            raise VaultError(f"vault: failed to delete '{location}': {resp.describe()}")
        location = self._path("metadata", path)
        resp = await self._call("GET", location)
        if resp.status == 404:
            raise VersionConflict(path, expected_version)
        if resp.status != 200 or not isinstance(resp.data, dict):
            raise VaultError(f"vault: failed to read '{location}': {resp.describe()}")
        if resp.data.get("current_version") != expected_version:
            raise VersionConflict(path, expected_version)  # the destroy hit an older one

    async def list(self, prefix: str) -> list[str]:
        if prefix:
            check_path(prefix.rstrip("/"))
        folder, _, start = prefix.rpartition("/")
        folder = folder + "/" if folder else ""
        location = self._path("detailed-metadata", folder)
        found: list[str] = []
        after = ""
        while True:
            params = {"list": "true", "limit": str(LIST_PAGE)}
            if after:
                params["after"] = after
            resp = await self._call("GET", location, params=params)
            if resp.status == 404:  # an empty folder, or nothing after ``after``
                break
            page = resp.data if isinstance(resp.data, dict) else None
            if resp.status != 200 or page is None or not isinstance(page.get("keys"), list):
                raise VaultError(f"vault: failed to list '{location}': {resp.describe()}")
            names, infos = page["keys"], page.get("key_info") or {}
            found += [
                folder + name
                for name in names
                if name.startswith(start) and not name.endswith("/") and _live(infos.get(name))
            ]
            if len(names) < LIST_PAGE:
                break
            after = names[-1]
        return sorted(found)

    async def close(self) -> None:
        await self._client.close()

    # --- K/V v2 -----------------------------------------------------------------------

    def _path(self, kind: str, path: str) -> str:
        """``<engine>/<kind>/<prefix>/<path>`` (``kind``: data, metadata, destroy, …)."""
        return join_path(self._engine, kind, self._prefix, path)

    async def _call(self, method: str, location: str, **kw: Any) -> VaultResponse:
        self._client.check_ready()
        call = self._client.call(method, location, **kw)
        if asyncio.current_task() is None:
            # The server runs a handler eagerly, outside any Task, until it first waits
            # (pykes.wire.eager); httpx (anyio) needs a current Task.
            return await asyncio.get_running_loop().create_task(call)
        return await call

    async def _create(self, location: str, data: dict[str, str]) -> VaultResponse:
        """Write a new record: where none is (``cas`` 0), or over a deleted one (``cas``
        its destroyed version, so that only one of concurrent creators wins)."""
        resp = await self._call("POST", location, body={"options": {"cas": 0}, "data": data})
        if not _cas_mismatch(resp):
            return resp
        current = await self._call("GET", location)
        metadata = current.data.get("metadata") if isinstance(current.data, dict) else None
        version = metadata.get("version") if isinstance(metadata, dict) else None
        if current.status != 404 or not isinstance(version, int):
            return resp  # a live record: the conflict stands
        body = {"options": {"cas": version}, "data": data}
        return await self._call("POST", location, body=body)

    async def _check_engine(self) -> None:
        """The engine must keep one version per secret and never delete one by itself."""
        location = join_path(self._engine, "config")
        resp = await self._call("GET", location)
        settings = resp.data if isinstance(resp.data, dict) else None
        if resp.status != 200 or settings is None:
            raise VaultError(
                f"vault: failed to read '{location}' (the store checks the K/V engine's "
                f"settings): {resp.describe()}"
            )
        kept = settings.get("max_versions")
        if kept != 1:
            raise VaultError(
                f"vault: the K/V engine '{self._engine}' keeps "
                f"{kept or 'the default number of'} versions of a secret; the store needs "
                f"exactly 1, so that what it deletes is gone: "
                f"bao write {location} max_versions=1"
            )
        if settings.get("delete_version_after") not in ("0s", 0, None):
            raise VaultError(
                f"vault: the K/V engine '{self._engine}' deletes versions after "
                f"{settings['delete_version_after']}; the store's records must stay: "
                f"bao write {location} delete_version_after=0s"
            )


def _cas_mismatch(resp: VaultResponse) -> bool:
    return resp.status == 400 and any(_CAS_MISMATCH in error for error in resp.errors)


def _live(info: object) -> bool:
    """Whether a listed secret's metadata shows a current version that is not deleted."""
    if not isinstance(info, dict):
        return False
    current, versions = info.get("current_version"), info.get("versions")
    if not isinstance(current, int) or not isinstance(versions, dict):
        return False
    version = versions.get(str(current))
    return (
        isinstance(version, dict)
        and not version.get("destroyed")
        and not version.get("deletion_time")
    )
