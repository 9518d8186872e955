"""The ``keystore`` section: every backend with all fields, defaults, required-field
errors and banner descriptions (docs/compat/config.md §3, §5)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from pykes.config import (
    AWSKeyStoreConfig,
    AzureKeyStoreConfig,
    EntrustKeyStoreConfig,
    FortanixKeyStoreConfig,
    FSKeyStoreConfig,
    GCPKeyStoreConfig,
    GemaltoKeyStoreConfig,
    KeyStoreConfig,
    VaultAppRoleConfig,
    VaultKeyStoreConfig,
    VaultKubernetesConfig,
    VaultTLSConfig,
    VaultTransitConfig,
    parse_config,
)
from pykes.errors import ConfigError

HEAD = (
    "admin:\n  identity: 3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22\n"
    "tls:\n  key: /k\n  cert: /c\n"
)


def keystore(section: str, env: dict[str, str] | None = None) -> KeyStoreConfig:
    return parse_config(HEAD + "keystore:\n" + section, environ=env or {}).keystore


def error_of(section: str) -> str:
    with pytest.raises(ConfigError) as info:
        keystore(section)
    return str(info.value)


VAULT_FULL = """\
  vault:
    endpoint: https://vault.example.com:8200
    engine: secrets
    version: v2
    namespace: ns1
    prefix: tenant-1
    transit:
      engine: my-transit
      key: kes-key
    approle:
      engine: my-approle
      namespace: /
      id: db02de05-fa39-4855-059b-67221c5c2f63
      secret: 6a174c20-f6de-a53c-74d2-6018fcceff64
      retry: 15s
    tls:
      key: /vault/client.key
      cert: /vault/client.crt
      ca: /vault/ca.pem
    status:
      ping: 10s
"""


def test_vault_all_fields() -> None:
    ks = keystore(VAULT_FULL)
    assert ks == VaultKeyStoreConfig(
        endpoint="https://vault.example.com:8200",
        engine="secrets",
        version="v2",
        namespace="ns1",
        prefix="tenant-1",
        transit=VaultTransitConfig(engine="my-transit", key="kes-key"),
        approle=VaultAppRoleConfig(
            engine="my-approle",
            namespace="/",
            id="db02de05-fa39-4855-059b-67221c5c2f63",
            secret="6a174c20-f6de-a53c-74d2-6018fcceff64",
        ),
        kubernetes=None,
        tls=VaultTLSConfig(key="/vault/client.key", cert="/vault/client.crt", ca="/vault/ca.pem"),
        status_ping=10.0,
    )
    assert ks.kind == "vault"
    assert ks.description == "Hashicorp Vault: https://vault.example.com:8200"


def test_vault_defaults_with_kubernetes() -> None:
    ks = keystore(
        "  vault:\n    endpoint: https://127.0.0.1:8201\n"
        "    kubernetes:\n      role: default\n      jwt: eyJhbGciOiJSUzI1NiJ9.e30.sig\n"
        "    transit:\n      key: t\n"
    )
    assert ks == VaultKeyStoreConfig(
        endpoint="https://127.0.0.1:8201",
        engine="kv",
        version="v1",
        namespace="",
        prefix="",
        transit=VaultTransitConfig(engine="transit", key="t"),
        approle=None,
        kubernetes=VaultKubernetesConfig(
            engine="kubernetes", namespace="", role="default", jwt="eyJhbGciOiJSUzI1NiJ9.e30.sig"
        ),
        tls=VaultTLSConfig(key="", cert="", ca=""),
        status_ping=15.0,
    )


def test_vault_approle_defaults_and_env() -> None:
    env = {"ROLE_ID": "id-1", "ROLE_SECRET": "s-1", "PING": "1m", "VAULT": "https://v:8200"}
    ks = keystore(
        "  vault:\n    endpoint: ${VAULT}\n"
        "    approle:\n      id: ${ROLE_ID}\n      secret: ${ROLE_SECRET}\n"
        "    status:\n      ping: ${PING}\n",
        env,
    )
    assert isinstance(ks, VaultKeyStoreConfig)
    assert ks.endpoint == "https://v:8200"
    assert ks.approle == VaultAppRoleConfig(engine="approle", namespace="", id="id-1", secret="s-1")
    assert ks.status_ping == 60.0


def test_vault_kubernetes_jwt_file(tmp_path: Path) -> None:
    jwt = tmp_path / "token"
    jwt.write_text("eyJ.jwt.sig")
    ks = keystore(f"  vault:\n    endpoint: https://v\n    kubernetes:\n      jwt: {jwt}\n")
    assert isinstance(ks, VaultKeyStoreConfig) and ks.kubernetes is not None
    assert ks.kubernetes.jwt == str(jwt)  # the path is kept, re-read on every login
    missing = tmp_path / "missing"
    section = f"  vault:\n    endpoint: https://v\n    kubernetes:\n      jwt: {missing}\n"
    assert error_of(section) == (
        f"kesconf: failed to read vault kubernetes JWT from '{missing}': "
        f"open {missing}: no such file or directory"
    )


VAULT = "  vault:\n    endpoint: https://v:8200\n"
APPROLE = "    approle:\n      id: i\n      secret: s\n"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  vault:\n    engine: kv\n" + APPROLE,
            "kesconf: invalid vault keystore: no endpoint specified",
        ),
        (VAULT, "kesconf: invalid vault keystore: no authentication method specified"),
        (
            VAULT + "    approle:\n",  # a null section is not present
            "kesconf: invalid vault keystore: no authentication method specified",
        ),
        (
            VAULT + APPROLE + "    kubernetes:\n      jwt: x\n",
            "kesconf: invalid vault keystore: more than one authentication method specified",
        ),
        (
            VAULT + "    approle: {}\n",
            "kesconf: invalid vault keystore: invalid approle config: no approle ID specified",
        ),
        (
            VAULT + "    approle:\n      id: i\n",
            "kesconf: invalid vault keystore: invalid approle config: no approle secret specified",
        ),
        (
            VAULT + "    kubernetes:\n      role: r\n",
            "kesconf: invalid vault keystore: invalid kubernetes config: no JWT specified",
        ),
        (
            VAULT + APPROLE + "    transit:\n      engine: transit\n",
            "kesconf: invalid vault keystore: invalid transit config: no key name specified",
        ),
        (
            VAULT + APPROLE + "    tls:\n      key: /client.key\n",
            "kesconf: invalid vault keystore: invalid tls config: no TLS certificate provided",
        ),
        (
            VAULT + APPROLE + "    tls:\n      cert: /client.crt\n",
            "kesconf: invalid vault keystore: invalid tls config: no TLS private key provided",
        ),
    ],
)
def test_vault_errors(section: str, message: str) -> None:
    assert error_of(section) == message


def test_fs() -> None:
    ks = keystore("  fs:\n    path: /var/lib/kes/keys\n")
    assert ks == FSKeyStoreConfig(path="/var/lib/kes/keys")
    assert ks.kind == "fs"
    assert ks.description == "Filesystem: /var/lib/kes/keys"
    assert error_of("  fs:\n    path: ''\n") == "kesconf: invalid fs keystore: no path specified"


def test_fortanix() -> None:
    ks = keystore(
        "  fortanix:\n    sdkms:\n"
        "      endpoint: https://sdkms.fortanix.com\n"
        "      group_id: ba7c5b7b-2c5b-4d07-a8a9-bb9e2b7e5ec5\n"
        "      credentials:\n        key: NWMyMDhlZDctZjk0YS00YmU1LTk2NGEtZTM3NTY3\n"
        "      tls:\n        ca: /fortanix/ca.pem\n"
    )
    assert ks == FortanixKeyStoreConfig(
        endpoint="https://sdkms.fortanix.com",
        group_id="ba7c5b7b-2c5b-4d07-a8a9-bb9e2b7e5ec5",
        api_key="NWMyMDhlZDctZjk0YS00YmU1LTk2NGEtZTM3NTY3",
        ca="/fortanix/ca.pem",
    )
    assert ks.kind == "fortanix"
    assert ks.description == "Fortanix SDKMS: https://sdkms.fortanix.com"


def test_gemalto() -> None:
    ks = keystore(
        "  gemalto:\n    keysecure:\n"
        "      endpoint: https://ciphertrust.example.com\n"
        "      credentials:\n        token: refresh-token\n        domain: kes-domain\n"
        "        retry: 15s\n"
        "      tls:\n        ca: /gemalto/ca.pem\n"
    )
    assert ks == GemaltoKeyStoreConfig(
        endpoint="https://ciphertrust.example.com",
        token="refresh-token",
        domain="kes-domain",
        ca="/gemalto/ca.pem",
    )
    assert ks.kind == "gemalto"
    assert ks.description == "Gemalto KeySecure: https://ciphertrust.example.com"


def test_aws() -> None:
    ks = keystore(
        "  aws:\n    secretsmanager:\n"
        "      endpoint: secretsmanager.us-east-2.amazonaws.com\n"
        "      region: us-east-2\n"
        "      kmskey: alias/kes\n"
        "      credentials:\n"
        "        accesskey: AKIAIOSFODNN7EXAMPLE\n"
        "        secretkey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        "        token: session\n"
    )
    assert ks == AWSKeyStoreConfig(
        endpoint="secretsmanager.us-east-2.amazonaws.com",
        region="us-east-2",
        kms_key="alias/kes",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token="session",
    )
    assert ks.kind == "aws"
    assert ks.description == "AWS SecretsManager: secretsmanager.us-east-2.amazonaws.com"


def test_aws_without_credentials() -> None:
    ks = keystore("  aws:\n    secretsmanager:\n      endpoint: e\n      region: r\n")
    assert ks == AWSKeyStoreConfig(endpoint="e", region="r")
    assert (ks.access_key, ks.secret_key, ks.session_token, ks.kms_key) == ("", "", "", "")


def test_gcp() -> None:
    ks = keystore(
        "  gcp:\n    secretmanager:\n"
        "      project_id: my-project\n"
        "      endpoint: secretmanager.example.com:443\n"
        "      scopes:\n        - https://www.googleapis.com/auth/cloud-platform\n"
        "      credentials:\n"
        "        client_email: kes@my-project.iam.gserviceaccount.com\n"
        "        client_id: '1234567890'\n"
        "        private_key_id: abcdef\n"
        '        private_key: "-----BEGIN PRIVATE KEY-----\\\\nMIIE'
        '\\\\n-----END PRIVATE KEY-----"\n'
    )
    assert ks == GCPKeyStoreConfig(
        project_id="my-project",
        endpoint="secretmanager.example.com:443",
        scopes=["https://www.googleapis.com/auth/cloud-platform"],
        client_email="kes@my-project.iam.gserviceaccount.com",
        client_id="1234567890",
        private_key_id="abcdef",
        private_key="-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----",
    )
    assert ks.kind == "gcp"
    assert ks.description == "GCP SecretManager: Project=my-project"


def test_gcp_defaults() -> None:
    ks = keystore("  gcp:\n    secretmanager:\n      project_id: p\n")
    assert ks == GCPKeyStoreConfig(
        project_id="p", endpoint="secretmanager.googleapis.com:443", scopes=[]
    )


def test_azure_client_credentials() -> None:
    ks = keystore(
        "  azure:\n    keyvault:\n"
        "      endpoint: https://my-vault.vault.azure.net\n"
        "      credentials:\n"
        "        tenant_id: t-1\n        client_id: c-1\n        client_secret: s-1\n"
    )
    assert ks == AzureKeyStoreConfig(
        endpoint="https://my-vault.vault.azure.net",
        tenant_id="t-1",
        client_id="c-1",
        client_secret="s-1",
        managed_identity_client_id="",
    )
    assert ks.kind == "azure"
    assert ks.description == "Azure KeyVault: https://my-vault.vault.azure.net"


def test_azure_managed_identity_and_default_chain() -> None:
    ks = keystore(
        "  azure:\n    keyvault:\n      endpoint: https://v\n"
        "      managed_identity:\n        client_id: mi-1\n"
    )
    assert ks == AzureKeyStoreConfig(endpoint="https://v", managed_identity_client_id="mi-1")
    ks = keystore("  azure:\n    keyvault:\n      endpoint: https://v\n")
    assert ks == AzureKeyStoreConfig(endpoint="https://v")


def test_entrust() -> None:
    ks = keystore(
        "  entrust:\n    keycontrol:\n"
        "      endpoint: https://keycontrol.example.com\n"
        "      vault_id: 6b7ac25d-6c4b-4c1c-a4d8-4b2f2a9c0f11\n"
        "      box_id: kes-box\n"
        "      credentials:\n        username: kes\n        password: p4ss\n"
        "      tls:\n        ca: /entrust/ca.pem\n"
    )
    assert ks == EntrustKeyStoreConfig(
        endpoint="https://keycontrol.example.com",
        vault_id="6b7ac25d-6c4b-4c1c-a4d8-4b2f2a9c0f11",
        box_id="kes-box",
        username="kes",
        password="p4ss",
        ca="/entrust/ca.pem",
    )
    assert ks.kind == "entrust"
    assert ks.description == "Entrust KeyControl: https://keycontrol.example.com"


ENTRUST = "  entrust:\n    keycontrol:\n"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  fortanix:\n    sdkms:\n      credentials:\n        key: k\n",
            "kesconf: invalid fortanix SDKMS keystore: no endpoint specified",
        ),
        (
            "  fortanix:\n    sdkms:\n      endpoint: https://f\n",
            "kesconf: invalid fortanix SDKMS keystore: no API key specified",
        ),
        (
            "  gemalto:\n    keysecure:\n      credentials:\n        token: t\n",
            "kesconf: invalid gemalto keysecure keystore: no endpoint specified",
        ),
        (
            "  gemalto:\n    keysecure:\n      endpoint: https://g\n",
            "kesconf: invalid gemalto keysecure keystore: no token specified",
        ),
        (
            "  aws:\n    secretsmanager:\n      region: us-east-1\n",
            "kesconf: invalid AWS secretsmanager keystore: no endpoint specified",
        ),
        (
            "  aws:\n    secretsmanager:\n      endpoint: e\n",
            "kesconf: invalid AWS secretsmanager keystore: no region specified",
        ),
        (
            "  gcp:\n    secretmanager:\n      endpoint: e\n",
            "kesconf: invalid GCP secretmanager keystore: no project ID specified",
        ),
        (
            "  azure:\n    keyvault:\n      credentials:\n        tenant_id: t\n",
            "kesconf: invalid Azure keyvault keystore: no endpoint specified",
        ),
        (
            "  azure:\n    keyvault:\n      endpoint: https://v\n"
            "      credentials:\n        tenant_id: t\n        client_id: c\n"
            "        client_secret: s\n"
            "      managed_identity:\n        client_id: m\n",
            "kesconf: invalid Azure keyvault keystore: "
            "more than one authentication method specified",
        ),
        (
            "  azure:\n    keyvault:\n      endpoint: https://v\n"
            "      credentials:\n        client_id: c\n        client_secret: s\n",
            "kesconf: invalid Azure keyvault keystore: no tenant ID specified",
        ),
        (
            "  azure:\n    keyvault:\n      endpoint: https://v\n"
            "      credentials:\n        tenant_id: t\n        client_secret: s\n",
            "kesconf: invalid Azure keyvault keystore: no client ID specified",
        ),
        (
            "  azure:\n    keyvault:\n      endpoint: https://v\n"
            "      credentials:\n        tenant_id: t\n        client_id: c\n",
            "kesconf: invalid Azure keyvault keystore: no client secret specified",
        ),
        (
            "  azure:\n    keyvault:\n      endpoint: https://v\n      managed_identity: {}\n",
            "kesconf: invalid Azure keyvault keystore: no client ID specified",
        ),
        (
            ENTRUST + "      vault_id: v\n      box_id: b\n",
            "kesconf: invalid Entrust KeyControl keystore: no endpoint specified",
        ),
        (
            ENTRUST + "      endpoint: https://e\n      box_id: b\n",
            "kesconf: invalid Entrust KeyControl keystore: no vault ID specified",
        ),
        (
            ENTRUST + "      endpoint: https://e\n      vault_id: v\n",
            "kesconf: invalid Entrust KeyControl keystore: no box ID specified",
        ),
        (
            ENTRUST + "      endpoint: https://e\n      vault_id: v\n      box_id: b\n",
            "kesconf: invalid Entrust KeyControl keystore: no username specified",
        ),
        (
            ENTRUST + "      endpoint: https://e\n      vault_id: v\n      box_id: b\n"
            "      credentials:\n        password: p\n",
            "kesconf: invalid Entrust KeyControl keystore: no username specified",
        ),
        (
            ENTRUST + "      endpoint: https://e\n      vault_id: v\n      box_id: b\n"
            "      credentials:\n        username: u\n",
            "kesconf: invalid Entrust KeyControl keystore: no password specified",
        ),
    ],
)
def test_backend_errors(section: str, message: str) -> None:
    assert error_of(section) == message


@pytest.mark.parametrize(
    "section",
    [
        "  aws: {}\n",
        "  aws:\n    secretsmanager:\n",
        "  gcp:\n    secretmanager: ~\n",
        "  azure:\n    keyvault: null\n",
        "  fortanix: {}\n",
        "  gemalto:\n    other: {}\n",
        "  entrust: {}\n",
        "  vault:\n",
        "  fs: ~\n",
    ],
)
def test_nested_section_must_be_present(section: str) -> None:
    assert error_of(section) == "kesconf: no keystore specified"


@pytest.mark.parametrize(
    "second",
    [
        "  fs:\n    path: /b\n",
        "  aws:\n    secretsmanager:\n      endpoint: e\n      region: r\n",
        "  gcp:\n    secretmanager: {}\n",
        "  entrust:\n    keycontrol: {}\n",
    ],
)
def test_more_than_one_keystore(second: str) -> None:
    first = VAULT + APPROLE
    if second.startswith("  fs"):  # fs is checked first, vault is then the second one
        first, second = second, first
    assert error_of(first + second) == (
        "kesconf: invalid keystore config: more than once keystore specified"
    )


def test_kes_section_alongside_a_real_keystore_is_ignored() -> None:
    ks = keystore("  kes:\n    endpoint:\n      - https://kes:7373\n  fs:\n    path: /k\n")
    assert ks == FSKeyStoreConfig(path="/k")


COMPLETE_SAMPLES = sorted(
    (Path(__file__).parent / "fuzz" / "corpus" / "config").glob("complete-*.yaml")
)


def unknown_keys_of(text: str) -> list[str]:
    """The keys ``parse_config`` reports as unknown (valid config or not)."""
    unknown: list[str] = []
    # the samples hold placeholders; the keys are reported before any error
    with contextlib.suppress(ConfigError):
        parse_config(text, environ={}, on_unknown_key=lambda key, line: unknown.append(key))
    return unknown


@pytest.mark.parametrize("sample", COMPLETE_SAMPLES, ids=lambda path: path.stem)
def test_every_documented_key_is_known(sample: Path) -> None:
    """Each sample lists every key of docs/compat/config.md for one backend."""
    assert len(COMPLETE_SAMPLES) == 8
    assert unknown_keys_of(sample.read_text()) == []


def test_keys_decoded_but_not_kept_are_known() -> None:
    text = HEAD + (
        "version: v1\napi:\n  legacy: off\n  /v1/status:\n    skip_auth: true\n"
        "keystore:\n  kes:\n    endpoint: [https://kes:7373]\n    enclave: e\n"
        "    tls: {cert: /c, key: /k, ca: /ca}\n  fs:\n    path: /k\n"
    )
    assert unknown_keys_of(text) == []


def test_a_misspelt_backend_key_is_reported() -> None:
    text = HEAD + (
        "keystore:\n  generic: {endpoint: e}\n  azure:\n    keyvault:\n      endpoint: e\n"
        "      credentials: {tenant: t}\n      managed_identiy: {client_id: c}\n"
    )
    assert unknown_keys_of(text) == [
        "keystore.generic",
        "keystore.azure.keyvault.credentials.tenant",
        "keystore.azure.keyvault.managed_identiy",
    ]
