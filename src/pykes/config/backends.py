"""Schema and validation of the ``keystore`` section (spec/config.md §3).

Backends are checked in the order of the Go server (fs, vault, fortanix, gemalto,
gcp, aws, azure, entrust), so with several sections the first one's own errors win
over "more than once keystore specified". Nested sections (``aws.secretsmanager``…)
count as configured only when the inner mapping is present. ``keystore.kes`` is
decoded (type errors are reported) but never counts as a keystore;
``keystore.generic`` is an unknown key and ignored.
"""

from __future__ import annotations

import os
from typing import Any

from pykes.config.decode import Duration, Ptr, Str, StrList, Struct
from pykes.config.keystores import (
    DEFAULT_GCP_ENDPOINT,
    DEFAULT_VAULT_APPROLE_ENGINE,
    DEFAULT_VAULT_ENGINE,
    DEFAULT_VAULT_KUBERNETES_ENGINE,
    DEFAULT_VAULT_STATUS_PING,
    DEFAULT_VAULT_TRANSIT_ENGINE,
    DEFAULT_VAULT_VERSION,
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
)
from pykes.errors import ConfigError
from pykes.goformat.duration import SECOND
from pykes.goformat.oserror import go_os_error

Raw = dict[str, Any]

_CA = Struct(ca=Str())

KEYSTORE_SCHEMA = Struct(
    fs=Ptr(Struct(path=Str())),
    kes=Ptr(
        Struct(
            endpoint=StrList(),
            enclave=Str(),
            tls=Struct(cert=Str(), key=Str(), ca=Str()),
        )
    ),
    vault=Ptr(
        Struct(
            endpoint=Str(),
            engine=Str(),
            version=Str(),
            namespace=Str(),
            prefix=Str(),
            transit=Ptr(Struct(engine=Str(), key=Str())),
            approle=Ptr(Struct(engine=Str(), namespace=Str(), id=Str(), secret=Str())),
            kubernetes=Ptr(Struct(engine=Str(), namespace=Str(), role=Str(), jwt=Str())),
            tls=Struct(key=Str(), cert=Str(), ca=Str()),
            status=Struct(ping=Duration()),
        )
    ),
    fortanix=Ptr(
        Struct(
            sdkms=Ptr(
                Struct(endpoint=Str(), group_id=Str(), credentials=Struct(key=Str()), tls=_CA)
            )
        )
    ),
    gemalto=Ptr(
        Struct(
            keysecure=Ptr(
                Struct(
                    endpoint=Str(),
                    credentials=Struct(token=Str(), domain=Str()),
                    tls=_CA,
                )
            )
        )
    ),
    gcp=Ptr(
        Struct(
            secretmanager=Ptr(
                Struct(
                    project_id=Str(),
                    endpoint=Str(),
                    scopes=StrList(),
                    credentials=Struct(
                        client_email=Str(),
                        client_id=Str(),
                        private_key_id=Str(),
                        private_key=Str(),
                    ),
                )
            )
        )
    ),
    aws=Ptr(
        Struct(
            secretsmanager=Ptr(
                Struct(
                    endpoint=Str(),
                    region=Str(),
                    kmskey=Str(),
                    credentials=Struct(accesskey=Str(), secretkey=Str(), token=Str()),
                )
            )
        )
    ),
    azure=Ptr(
        Struct(
            keyvault=Ptr(
                Struct(
                    endpoint=Str(),
                    credentials=Ptr(Struct(tenant_id=Str(), client_id=Str(), client_secret=Str())),
                    managed_identity=Ptr(Struct(client_id=Str())),
                )
            )
        )
    ),
    entrust=Ptr(
        Struct(
            keycontrol=Ptr(
                Struct(
                    endpoint=Str(),
                    vault_id=Str(),
                    box_id=Str(),
                    credentials=Ptr(Struct(username=Str(), password=Str())),
                    tls=_CA,
                )
            )
        )
    ),
)


def _inner(raw: Raw, outer: str, inner: str) -> Raw | None:
    section = raw[outer]
    return None if section is None else section[inner]


def _fs(s: Raw) -> FSKeyStoreConfig:
    if not s["path"]:
        raise ConfigError("kesconf: invalid fs keystore: no path specified")
    return FSKeyStoreConfig(path=s["path"])


def _vault(s: Raw) -> VaultKeyStoreConfig:
    err = "kesconf: invalid vault keystore: "
    if not s["endpoint"]:
        raise ConfigError(err + "no endpoint specified")
    approle, k8s, transit, tls = s["approle"], s["kubernetes"], s["transit"], s["tls"]
    if approle is None and k8s is None:
        raise ConfigError(err + "no authentication method specified")
    if approle is not None and k8s is not None:
        raise ConfigError(err + "more than one authentication method specified")
    if approle is not None:
        if not approle["id"]:
            raise ConfigError(err + "invalid approle config: no approle ID specified")
        if not approle["secret"]:
            raise ConfigError(err + "invalid approle config: no approle secret specified")
    if k8s is not None:
        jwt = k8s["jwt"]
        if not jwt:
            raise ConfigError(err + "invalid kubernetes config: no JWT specified")
        if "/" in jwt or os.sep in jwt:  # a path: checked now, re-read on every login
            try:
                with open(jwt, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(
                    f"kesconf: failed to read vault kubernetes JWT from '{jwt}': "
                    f"{go_os_error(jwt, exc)}"
                ) from None
    if transit is not None and not transit["key"]:
        raise ConfigError(err + "invalid transit config: no key name specified")
    if tls["key"] and not tls["cert"]:
        raise ConfigError(err + "invalid tls config: no TLS certificate provided")
    if not tls["key"] and tls["cert"]:
        raise ConfigError(err + "invalid tls config: no TLS private key provided")
    ping = s["status"]["ping"]
    return VaultKeyStoreConfig(
        endpoint=s["endpoint"],
        engine=s["engine"] or DEFAULT_VAULT_ENGINE,
        version=s["version"] or DEFAULT_VAULT_VERSION,
        namespace=s["namespace"],
        prefix=s["prefix"],
        transit=None
        if transit is None
        else VaultTransitConfig(
            engine=transit["engine"] or DEFAULT_VAULT_TRANSIT_ENGINE, key=transit["key"]
        ),
        approle=None
        if approle is None
        else VaultAppRoleConfig(
            engine=approle["engine"] or DEFAULT_VAULT_APPROLE_ENGINE,
            namespace=approle["namespace"],
            id=approle["id"],
            secret=approle["secret"],
        ),
        kubernetes=None
        if k8s is None
        else VaultKubernetesConfig(
            engine=k8s["engine"] or DEFAULT_VAULT_KUBERNETES_ENGINE,
            namespace=k8s["namespace"],
            role=k8s["role"],
            jwt=k8s["jwt"],
        ),
        tls=VaultTLSConfig(key=tls["key"], cert=tls["cert"], ca=tls["ca"]),
        status_ping=ping / SECOND if ping > 0 else DEFAULT_VAULT_STATUS_PING,
    )


def _fortanix(s: Raw) -> FortanixKeyStoreConfig:
    err = "kesconf: invalid fortanix SDKMS keystore: "
    if not s["endpoint"]:
        raise ConfigError(err + "no endpoint specified")
    if not s["credentials"]["key"]:
        raise ConfigError(err + "no API key specified")
    return FortanixKeyStoreConfig(
        endpoint=s["endpoint"],
        group_id=s["group_id"],
        api_key=s["credentials"]["key"],
        ca=s["tls"]["ca"],
    )


def _gemalto(s: Raw) -> GemaltoKeyStoreConfig:
    err = "kesconf: invalid gemalto keysecure keystore: "
    if not s["endpoint"]:
        raise ConfigError(err + "no endpoint specified")
    if not s["credentials"]["token"]:
        raise ConfigError(err + "no token specified")
    return GemaltoKeyStoreConfig(
        endpoint=s["endpoint"],
        token=s["credentials"]["token"],
        domain=s["credentials"]["domain"],
        ca=s["tls"]["ca"],
    )


def _gcp(s: Raw) -> GCPKeyStoreConfig:
    if not s["project_id"]:
        raise ConfigError("kesconf: invalid GCP secretmanager keystore: no project ID specified")
    creds = s["credentials"]
    return GCPKeyStoreConfig(
        project_id=s["project_id"],
        endpoint=s["endpoint"] or DEFAULT_GCP_ENDPOINT,
        scopes=list(s["scopes"]),
        client_email=creds["client_email"],
        client_id=creds["client_id"],
        private_key_id=creds["private_key_id"],
        private_key=creds["private_key"],
    )


def _aws(s: Raw) -> AWSKeyStoreConfig:
    err = "kesconf: invalid AWS secretsmanager keystore: "
    if not s["endpoint"]:
        raise ConfigError(err + "no endpoint specified")
    if not s["region"]:
        raise ConfigError(err + "no region specified")
    creds = s["credentials"]
    return AWSKeyStoreConfig(
        endpoint=s["endpoint"],
        region=s["region"],
        kms_key=s["kmskey"],
        access_key=creds["accesskey"],
        secret_key=creds["secretkey"],
        session_token=creds["token"],
    )


def _azure(s: Raw) -> AzureKeyStoreConfig:
    err = "kesconf: invalid Azure keyvault keystore: "
    if not s["endpoint"]:
        raise ConfigError(err + "no endpoint specified")
    creds, managed = s["credentials"], s["managed_identity"]
    if creds is not None and managed is not None:
        raise ConfigError(err + "more than one authentication method specified")
    cfg = AzureKeyStoreConfig(endpoint=s["endpoint"])
    if creds is not None:
        if not creds["tenant_id"]:
            raise ConfigError(err + "no tenant ID specified")
        if not creds["client_id"]:
            raise ConfigError(err + "no client ID specified")
        if not creds["client_secret"]:
            raise ConfigError(err + "no client secret specified")
        cfg.tenant_id = creds["tenant_id"]
        cfg.client_id = creds["client_id"]
        cfg.client_secret = creds["client_secret"]
    if managed is not None:
        if not managed["client_id"]:
            raise ConfigError(err + "no client ID specified")
        cfg.managed_identity_client_id = managed["client_id"]
    return cfg


def _entrust(s: Raw) -> EntrustKeyStoreConfig:
    err = "kesconf: invalid Entrust KeyControl keystore: "
    if not s["endpoint"]:
        raise ConfigError(err + "no endpoint specified")
    if not s["vault_id"]:
        raise ConfigError(err + "no vault ID specified")
    if not s["box_id"]:
        raise ConfigError(err + "no box ID specified")
    # A missing credentials block crashes the Go server; report the missing username.
    creds = s["credentials"] or {"username": "", "password": ""}
    if not creds["username"]:
        raise ConfigError(err + "no username specified")
    if not creds["password"]:
        raise ConfigError(err + "no password specified")
    return EntrustKeyStoreConfig(
        endpoint=s["endpoint"],
        vault_id=s["vault_id"],
        box_id=s["box_id"],
        username=creds["username"],
        password=creds["password"],
        ca=s["tls"]["ca"],
    )


def build_keystore(raw: Raw) -> KeyStoreConfig:
    """Validate the decoded ``keystore`` section and return exactly one backend config."""
    sections = (
        (raw["fs"], _fs),
        (raw["vault"], _vault),
        (_inner(raw, "fortanix", "sdkms"), _fortanix),
        (_inner(raw, "gemalto", "keysecure"), _gemalto),
        (_inner(raw, "gcp", "secretmanager"), _gcp),
        (_inner(raw, "aws", "secretsmanager"), _aws),
        (_inner(raw, "azure", "keyvault"), _azure),
        (_inner(raw, "entrust", "keycontrol"), _entrust),
    )
    keystore: KeyStoreConfig | None = None
    for section, build in sections:
        if section is None:
            continue
        if keystore is not None:
            raise ConfigError("kesconf: invalid keystore config: more than once keystore specified")
        keystore = build(section)
    if keystore is None:
        raise ConfigError("kesconf: no keystore specified")
    return keystore
