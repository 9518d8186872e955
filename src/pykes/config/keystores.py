"""The ``keystore`` section: one dataclass per backend (spec/config.md §3).

Every class has a ``kind`` class attribute and a ``description`` property giving the
banner text (spec/config.md §5). Defaults documented in the spec ("kv", "transit",
"approle", "kubernetes", Vault status ping 15 s, GCP endpoint) are applied by the
parser, so the fields hold the effective values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

DEFAULT_VAULT_ENGINE = "kv"
DEFAULT_VAULT_VERSION = "v1"
DEFAULT_VAULT_TRANSIT_ENGINE = "transit"
DEFAULT_VAULT_APPROLE_ENGINE = "approle"
DEFAULT_VAULT_KUBERNETES_ENGINE = "kubernetes"
DEFAULT_VAULT_STATUS_PING = 15.0  # seconds; the config value 0 means this default
DEFAULT_GCP_ENDPOINT = "secretmanager.googleapis.com:443"


@dataclass
class FSKeyStoreConfig:
    """``keystore.fs``: keys are files in ``path`` (created with mode 0755 if absent)."""

    kind: ClassVar[str] = "fs"
    path: str = ""

    @property
    def description(self) -> str:
        return f"Filesystem: {self.path}"


@dataclass
class VaultTransitConfig:
    """``keystore.vault.transit``: extra encryption of stored values with a transit key."""

    engine: str = DEFAULT_VAULT_TRANSIT_ENGINE
    key: str = ""


@dataclass
class VaultAppRoleConfig:
    """``keystore.vault.approle``; ``namespace`` "" = the Vault namespace, "/" = root."""

    engine: str = DEFAULT_VAULT_APPROLE_ENGINE
    namespace: str = ""
    id: str = ""
    secret: str = ""


@dataclass
class VaultKubernetesConfig:
    """``keystore.vault.kubernetes``; a ``jwt`` containing ``/`` is a file path."""

    engine: str = DEFAULT_VAULT_KUBERNETES_ENGINE
    namespace: str = ""
    role: str = ""
    jwt: str = ""


@dataclass
class VaultTLSConfig:
    """``keystore.vault.tls``: optional mTLS client key/cert and CA for Vault."""

    key: str = ""
    cert: str = ""
    ca: str = ""


@dataclass
class VaultKeyStoreConfig:
    """``keystore.vault``: HashiCorp Vault K/V (exactly one of approle/kubernetes).

    ``status_ping`` is the health-check interval in seconds; a configured value ≤ 0
    (or none) gives the 15 s default. ``version`` is kept as written ("v1" if empty);
    the backend rejects other values when connecting.
    """

    kind: ClassVar[str] = "vault"
    endpoint: str = ""
    engine: str = DEFAULT_VAULT_ENGINE
    version: str = DEFAULT_VAULT_VERSION
    namespace: str = ""
    prefix: str = ""
    transit: VaultTransitConfig | None = None
    approle: VaultAppRoleConfig | None = None
    kubernetes: VaultKubernetesConfig | None = None
    tls: VaultTLSConfig = field(default_factory=VaultTLSConfig)
    status_ping: float = DEFAULT_VAULT_STATUS_PING

    @property
    def description(self) -> str:
        return f"Hashicorp Vault: {self.endpoint}"


@dataclass
class FortanixKeyStoreConfig:
    """``keystore.fortanix.sdkms``: Fortanix SDKMS / DSM."""

    kind: ClassVar[str] = "fortanix"
    endpoint: str = ""
    group_id: str = ""
    api_key: str = ""
    ca: str = ""

    @property
    def description(self) -> str:
        return f"Fortanix SDKMS: {self.endpoint}"


@dataclass
class GemaltoKeyStoreConfig:
    """``keystore.gemalto.keysecure``: Thales CipherTrust Manager / Gemalto KeySecure."""

    kind: ClassVar[str] = "gemalto"
    endpoint: str = ""
    token: str = ""
    domain: str = ""
    ca: str = ""

    @property
    def description(self) -> str:
        return f"Gemalto KeySecure: {self.endpoint}"


@dataclass
class AWSKeyStoreConfig:
    """``keystore.aws.secretsmanager``; empty credentials → the SDK default chain."""

    kind: ClassVar[str] = "aws"
    endpoint: str = ""
    region: str = ""
    kms_key: str = ""
    access_key: str = ""
    secret_key: str = ""
    session_token: str = ""

    @property
    def description(self) -> str:
        return f"AWS SecretsManager: {self.endpoint}"


@dataclass
class GCPKeyStoreConfig:
    """``keystore.gcp.secretmanager``; empty credentials → application default credentials.

    ``private_key`` is kept as written: the backend converts literal ``\\n`` sequences
    to newlines (spec/config.md §3.6). An empty ``scopes`` list means GCP's defaults.
    """

    kind: ClassVar[str] = "gcp"
    project_id: str = ""
    endpoint: str = DEFAULT_GCP_ENDPOINT
    scopes: list[str] = field(default_factory=list)
    client_email: str = ""
    client_id: str = ""
    private_key_id: str = ""
    private_key: str = ""

    @property
    def description(self) -> str:
        return f"GCP SecretManager: Project={self.project_id}"


@dataclass
class AzureKeyStoreConfig:
    """``keystore.azure.keyvault``.

    Client-secret auth sets ``tenant_id``/``client_id``/``client_secret``; managed
    identity sets ``managed_identity_client_id``; neither → Azure's default chain.
    """

    kind: ClassVar[str] = "azure"
    endpoint: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    managed_identity_client_id: str = ""

    @property
    def description(self) -> str:
        return f"Azure KeyVault: {self.endpoint}"


@dataclass
class EntrustKeyStoreConfig:
    """``keystore.entrust.keycontrol``: Entrust KeyControl."""

    kind: ClassVar[str] = "entrust"
    endpoint: str = ""
    vault_id: str = ""
    box_id: str = ""
    username: str = ""
    password: str = ""
    ca: str = ""

    @property
    def description(self) -> str:
        return f"Entrust KeyControl: {self.endpoint}"


@dataclass
class MemKeyStoreConfig:
    """The volatile in-memory keystore of ``kes server --dev`` (never parsed from YAML)."""

    kind: ClassVar[str] = "mem"

    @property
    def description(self) -> str:
        return "In Memory"


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
