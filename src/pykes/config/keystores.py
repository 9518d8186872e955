"""The ``keystore`` section: one dataclass per backend (docs/compat/config.md §3).

Each field declares its YAML path, default and checks (see ``pykes.config.schema``);
the fields hold the effective values. ``BACKENDS`` gives each backend's path under
``keystore:`` in the order the Go server checks them, so with several sections the
first one's own errors win over "more than once keystore specified". Nested sections
(``aws.secretsmanager``…) count only when the inner mapping is present.
``keystore.kes`` is decoded (type errors are reported) but never counts as a keystore;
``keystore.generic`` is an unknown key and ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from pykes.config.decode import Ptr, Str, StrList, Struct
from pykes.config.schema import Section, duration, exclusive, section, text, texts
from pykes.errors import ConfigError
from pykes.goformat.oserror import go_os_error


class Backend:
    """A keystore config: ``kind`` names the backend module (``pykes.keystore.<kind>``),
    ``description`` is the start-up banner line (docs/compat/config.md §5)."""

    kind: ClassVar[str]
    yaml: ClassVar[Section]

    @property
    def description(self) -> str:
        return self.yaml.banner.format_map(vars(self))


@dataclass
class EndpointBackend(Backend):
    """A keystore reached at ``endpoint``: the first setting checked."""

    endpoint: str = text(required="no endpoint specified")


@dataclass
class FSKeyStoreConfig(Backend):
    """``keystore.fs``: keys are files in ``path`` (created with mode 0755 if absent)."""

    kind: ClassVar[str] = "fs"
    yaml: ClassVar[Section] = Section("invalid fs keystore: ", banner="Filesystem: {path}")
    path: str = text(required="no path specified")


@dataclass
class VaultAppRoleConfig:
    """``keystore.vault.approle``; ``namespace`` "" = the Vault namespace, "/" = root."""

    yaml: ClassVar[Section] = Section("invalid approle config: ")
    engine: str = text(default="approle")
    namespace: str = text()
    id: str = text(required="no approle ID specified")
    secret: str = text(required="no approle secret specified")


def _jwt_file_readable(jwt: str) -> None:
    """A JWT that is a path is checked now (and re-read on every login)."""
    if "/" in jwt or os.sep in jwt:
        try:
            with open(jwt, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"kesconf: failed to read vault kubernetes JWT from '{jwt}': "
                f"{go_os_error(jwt, exc)}"
            ) from None


@dataclass
class VaultKubernetesConfig:
    """``keystore.vault.kubernetes``; a ``jwt`` containing ``/`` is a file path."""

    yaml: ClassVar[Section] = Section("invalid kubernetes config: ")
    engine: str = text(default="kubernetes")
    namespace: str = text()
    role: str = text()
    jwt: str = text(required="no JWT specified", check=_jwt_file_readable)


@dataclass
class VaultTransitConfig:
    """``keystore.vault.transit``: extra encryption of stored values with a transit key."""

    yaml: ClassVar[Section] = Section("invalid transit config: ")
    engine: str = text(default="transit")
    key: str = text(required="no key name specified")


@dataclass
class VaultTLSConfig:
    """``keystore.vault.tls``: optional mTLS client key/cert and CA for Vault."""

    yaml: ClassVar[Section] = Section("invalid tls config: ")
    key: str = text(required="no TLS private key provided", when="cert")
    cert: str = text(required="no TLS certificate provided", when="key")
    ca: str = text()


@dataclass
class VaultKeyStoreConfig(EndpointBackend):
    """``keystore.vault``: HashiCorp Vault K/V (exactly one of approle/kubernetes).

    ``status_ping`` is the health-check interval in seconds; a configured value ≤ 0
    (or none) gives the 15 s default. ``version`` is kept as written ("v1" if empty);
    the backend rejects other values when connecting.
    """

    kind: ClassVar[str] = "vault"
    yaml: ClassVar[Section] = Section(
        "invalid vault keystore: ",
        banner="Hashicorp Vault: {endpoint}",
        rules=(
            exclusive(
                ("approle", "kubernetes"),
                many="more than one authentication method specified",
                missing="no authentication method specified",
            ),
        ),
    )
    engine: str = text(default="kv")
    version: str = text(default="v1")
    namespace: str = text()
    prefix: str = text()
    # the Go server checks the login methods before transit
    approle: VaultAppRoleConfig | None = section(VaultAppRoleConfig, optional=True)
    kubernetes: VaultKubernetesConfig | None = section(VaultKubernetesConfig, optional=True)
    transit: VaultTransitConfig | None = section(VaultTransitConfig, optional=True)
    tls: VaultTLSConfig = section(VaultTLSConfig)
    status_ping: float = duration("status.ping", default=15.0)


@dataclass
class FortanixKeyStoreConfig(EndpointBackend):
    """``keystore.fortanix.sdkms``: Fortanix SDKMS / DSM."""

    kind: ClassVar[str] = "fortanix"
    yaml: ClassVar[Section] = Section(
        "invalid fortanix SDKMS keystore: ", banner="Fortanix SDKMS: {endpoint}"
    )
    group_id: str = text()
    api_key: str = text("credentials.key", required="no API key specified")
    ca: str = text("tls.ca")


@dataclass
class GemaltoKeyStoreConfig(EndpointBackend):
    """``keystore.gemalto.keysecure``: Thales CipherTrust Manager / Gemalto KeySecure."""

    kind: ClassVar[str] = "gemalto"
    yaml: ClassVar[Section] = Section(
        "invalid gemalto keysecure keystore: ", banner="Gemalto KeySecure: {endpoint}"
    )
    token: str = text("credentials.token", required="no token specified")
    domain: str = text("credentials.domain")
    ca: str = text("tls.ca")


@dataclass
class AWSKeyStoreConfig(EndpointBackend):
    """``keystore.aws.secretsmanager``; empty credentials → the SDK default chain."""

    kind: ClassVar[str] = "aws"
    yaml: ClassVar[Section] = Section(
        "invalid AWS secretsmanager keystore: ", banner="AWS SecretsManager: {endpoint}"
    )
    region: str = text(required="no region specified")
    kms_key: str = text("kmskey")
    access_key: str = text("credentials.accesskey")
    secret_key: str = text("credentials.secretkey")
    session_token: str = text("credentials.token")


@dataclass
class GCPKeyStoreConfig(Backend):
    """``keystore.gcp.secretmanager``; empty credentials → application default credentials.

    ``private_key`` is kept as written: the backend converts literal ``\\n`` sequences
    to newlines (docs/compat/config.md §3.6). An empty ``scopes`` list means GCP's
    defaults.
    """

    kind: ClassVar[str] = "gcp"
    yaml: ClassVar[Section] = Section(
        "invalid GCP secretmanager keystore: ", banner="GCP SecretManager: Project={project_id}"
    )
    project_id: str = text(required="no project ID specified")
    endpoint: str = text(default="secretmanager.googleapis.com:443")
    scopes: list[str] = texts()
    client_email: str = text("credentials.client_email")
    client_id: str = text("credentials.client_id")
    private_key_id: str = text("credentials.private_key_id")
    private_key: str = text("credentials.private_key")


@dataclass
class AzureKeyStoreConfig(EndpointBackend):
    """``keystore.azure.keyvault``.

    Client-secret auth sets ``tenant_id``/``client_id``/``client_secret``; managed
    identity sets ``managed_identity_client_id``; neither → Azure's default chain.
    """

    kind: ClassVar[str] = "azure"
    yaml: ClassVar[Section] = Section(
        "invalid Azure keyvault keystore: ",
        banner="Azure KeyVault: {endpoint}",
        optional=("credentials", "managed_identity"),
        rules=(
            exclusive(
                ("credentials", "managed_identity"),
                many="more than one authentication method specified",
            ),
        ),
    )
    tenant_id: str = text("credentials.tenant_id", required="no tenant ID specified")
    client_id: str = text("credentials.client_id", required="no client ID specified")
    client_secret: str = text("credentials.client_secret", required="no client secret specified")
    managed_identity_client_id: str = text(
        "managed_identity.client_id", required="no client ID specified"
    )


@dataclass
class EntrustKeyStoreConfig(EndpointBackend):
    """``keystore.entrust.keycontrol``: Entrust KeyControl.

    A missing ``credentials`` block (which crashes the Go server) is reported as a
    missing username.
    """

    kind: ClassVar[str] = "entrust"
    yaml: ClassVar[Section] = Section(
        "invalid Entrust KeyControl keystore: ", banner="Entrust KeyControl: {endpoint}"
    )
    vault_id: str = text(required="no vault ID specified")
    box_id: str = text(required="no box ID specified")
    username: str = text("credentials.username", required="no username specified")
    password: str = text("credentials.password", required="no password specified")
    ca: str = text("tls.ca")


@dataclass
class MemKeyStoreConfig(Backend):
    """The volatile in-memory keystore of ``kes server --dev`` (never parsed from YAML)."""

    kind: ClassVar[str] = "mem"
    yaml: ClassVar[Section] = Section(banner="In Memory")


KeyStoreConfig = (
    FSKeyStoreConfig
    | VaultKeyStoreConfig
    | FortanixKeyStoreConfig
    | GemaltoKeyStoreConfig
    | AWSKeyStoreConfig
    | GCPKeyStoreConfig
    | AzureKeyStoreConfig
    | EntrustKeyStoreConfig
    | MemKeyStoreConfig
)
"""Any keystore configuration (a type alias; ``MemKeyStoreConfig`` only in dev mode)."""

BACKENDS: dict[str, type[KeyStoreConfig]] = {
    "fs": FSKeyStoreConfig,
    "vault": VaultKeyStoreConfig,
    "fortanix.sdkms": FortanixKeyStoreConfig,
    "gemalto.keysecure": GemaltoKeyStoreConfig,
    "gcp.secretmanager": GCPKeyStoreConfig,
    "aws.secretsmanager": AWSKeyStoreConfig,
    "azure.keyvault": AzureKeyStoreConfig,
    "entrust.keycontrol": EntrustKeyStoreConfig,
}

#: ``keystore.kes``: decoded, never used (docs/compat/config.md §3.9).
KES_SECTION = Ptr(
    Struct(endpoint=StrList(), enclave=Str(), tls=Struct(cert=Str(), key=Str(), ca=Str()))
)
