"""The server config file: schema, validation errors, env substitution, defaults
(docs/compat/config.md §1–§4, auth.md §5/§10, crypto.md §8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykes.config import (
    APIRouteConfig,
    CacheConfig,
    FSKeyStoreConfig,
    PolicyConfig,
    ServerConfig,
    TLSConfig,
    load_config,
    parse_config,
)
from pykes.errors import ConfigError

ADMIN = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
ID1 = "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
ID2 = "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"
ID3 = "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"

ADMIN_YAML = f"admin:\n  identity: {ADMIN}\n"
TLS_YAML = "tls:\n  key: /etc/kes/server.key\n  cert: /etc/kes/server.crt\n"
FS_YAML = "keystore:\n  fs:\n    path: /var/lib/kes\n"


def doc(extra: str = "", *, admin: str = ADMIN_YAML, tls: str = TLS_YAML, ks: str = FS_YAML) -> str:
    """A valid minimal config plus ``extra`` top-level sections."""
    return admin + tls + ks + extra


def parse(text: str, env: dict[str, str] | None = None) -> ServerConfig:
    return parse_config(text, environ=env or {})


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --------------------------------------------------------------------------- errors

ERROR_CASES = [
    # version (§1)
    ("version: v2\n" + doc(), "edge: invalid server config version 'v2'"),
    ("version: V1\n" + doc(), "edge: invalid server config version 'V1'"),
    ("version: ${VERSION}\n" + doc(), "edge: invalid server config version '${VERSION}'"),
    ("version: [v1]\n" + doc(), "kesconf: invalid config version at line '1'"),
    ("version:\n  v: 1\n" + doc(), "kesconf: invalid config version at line '2'"),
    # admin / tls (§2)
    (TLS_YAML + FS_YAML, "kesconf: invalid admin identity: no admin identity"),
    (
        "admin:\n  identity: ''\n" + TLS_YAML + FS_YAML,
        "kesconf: invalid admin identity: no admin identity",
    ),
    (doc(tls="tls:\n  cert: /c\n"), "kesconf: invalid tls config: no private key"),
    (doc(tls="tls:\n  key: /k\n"), "kesconf: invalid tls config: no certificate"),
    (doc(tls=TLS_YAML + "  auth: maybe\n"), "kesconf: invalid tls config: invalid auth 'maybe'"),
    (doc(tls=TLS_YAML + "  auth: Verify\n"), "kesconf: invalid tls config: invalid auth 'Verify'"),
    # TLS proxies and policies vs. admin (§2, docs/compat/auth.md §5/§10)
    (
        doc(tls=TLS_YAML + f"  proxy:\n    identities: [{ID1}, {ADMIN}]\n"),
        f"kesconf: invalid tls proxy: identity '{ADMIN}' is already admin",
    ),
    (
        doc(f"policy:\n  my-app:\n    identities: [{ID1}, {ADMIN}]\n"),
        f"kesconf: invalid policy 'my-app': identity '{ADMIN}' is already admin",
    ),
    (
        doc(
            f"policy:\n  my-app:\n    identities: [{ID2}]\n",
            tls=TLS_YAML + f"  proxy:\n    identities: [{ID2}]\n",
        ),
        f"kesconf: invalid policy 'my-app': identity '{ID2}' is already a TLS proxy",
    ),
    (
        doc(f"policy:\n  a:\n    identities: [{ID1}]\n  b:\n    identities: [{ID2}, {ID1}]\n"),
        f"kes: cannot assign policy 'b' to '{ID1}': identity already has a policy",
    ),
    (
        doc(f"policy:\n  a:\n    identities: [{ID1}, {ID1}]\n"),
        f"kes: cannot assign policy 'a' to '{ID1}': identity already has a policy",
    ),
    (
        doc("policy:\n  my.policy:\n    allow: [/v1/status]\n"),
        "kes: policy name 'my.policy' is empty, too long or contains invalid characters",
    ),
    (
        doc("policy:\n  -app:\n    allow: []\n"),
        "kes: policy name '-app' is empty, too long or contains invalid characters",
    ),
    (
        doc("policy:\n  _:\n    allow: []\n"),
        "kes: policy name '_' is empty, too long or contains invalid characters",
    ),
    (
        doc(f"policy:\n  {'a' * 81}:\n    allow: []\n"),
        f"kes: policy name '{'a' * 81}' is empty, too long or contains invalid characters",
    ),
    (
        doc("policy:\n  app:\n    identities: ['not/hex']\n"),
        "kes: identity 'not/hex' is empty, too long or contains invalid characters",
    ),
    (
        doc("policy:\n  app:\n    identities: ['']\n"),
        "kes: identity '' is empty, too long or contains invalid characters",
    ),
    # cache (§2) — the value is printed as a Go duration
    (
        doc("cache:\n  expiry:\n    any: -5m\n"),
        "kesconf: invalid cache expiry '-5m0s'",
    ),
    (
        doc("cache:\n  expiry:\n    unused: -1s\n"),
        "kesconf: invalid cache unused expiry '-1s'",
    ),
    (
        doc("cache:\n  expiry:\n    offline: -1h\n"),
        "kesconf: invalid offline cache expiry '-1h0m0s'",
    ),
    # log levels (§2)
    (doc("log:\n  error: verbose\n"), "kesconf: invalid log level 'VERBOSE'"),
    (doc("log:\n  audit: INFO-2\n"), "kesconf: invalid log level 'INFO-2'"),
    (
        doc("log:\n  error: info+x\n"),
        "kesconf: invalid log level suffix 'X': strconv.Atoi: parsing \"X\": invalid syntax",
    ),
    # API timeouts (§2) — Go formats the duration with %d, i.e. in nanoseconds
    (
        doc("api:\n  /v1/status:\n    timeout: -1s\n"),
        "kesconf: invalid timeout '-1000000000' for API '/v1/status'",
    ),
    # predefined keys (§2, docs/compat/crypto.md §8)
    (
        doc("keys:\n  - name: my-key\n  - name: other\n  - name: my-key\n"),
        "kesconf: invalid key config: key 'my-key' is defined multiple times",
    ),
    (
        doc("keys:\n  - name: my.key\n"),
        "kesconf: invalid key config: key name 'my.key' "
        "is empty, too long or contains invalid characters",
    ),
    (
        doc("keys:\n  - name:\n"),
        "kesconf: invalid key config: key name '' "
        "is empty, too long or contains invalid characters",
    ),
    # keystore presence (§3, §3.9)
    (doc(ks=""), "kesconf: no keystore specified"),
    (doc(ks="keystore:\n  fs:\n"), "kesconf: no keystore specified"),
    (doc(ks="keystore:\n  aws: {}\n"), "kesconf: no keystore specified"),
    (
        doc(ks="keystore:\n  kes:\n    endpoint: [https://kes:7373]\n    enclave: tenant\n"),
        "kesconf: no keystore specified",
    ),
    (
        doc(ks="keystore:\n  generic:\n    endpoint: http://localhost:8080\n"),
        "kesconf: no keystore specified",
    ),
    (
        doc(ks=FS_YAML + "  vault:\n    endpoint: https://vault:8200\n"),
        "kesconf: invalid keystore config: more than once keystore specified",
    ),
    (
        doc(ks="keystore:\n  fs: {}\n  vault:\n    endpoint: https://vault:8200\n"),
        "kesconf: invalid fs keystore: no path specified",
    ),
    # address (§2)
    (doc("address: localhost:7373\n"), "'localhost' is not a valid IP address"),
    (doc("address: kes.example.com:7373\n"), "'kes.example.com' is not a valid IP address"),
    (doc("address: '[fe80::1%eth0]:7373'\n"), "'fe80::1%eth0' is not a valid IP address"),
    (doc("address: '7373'\n"), "address 7373: missing port in address"),
    (doc("address: '::1:7373'\n"), "address ::1:7373: too many colons in address"),
    (doc("address: 127.0.0.1:https\n"), "invalid address '127.0.0.1:https': invalid port 'https'"),
    (doc("address: 127.0.0.1:70000\n"), "invalid address '127.0.0.1:70000': invalid port '70000'"),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_validation_errors(text: str, message: str) -> None:
    assert error_of(text) == message


def test_go_validation_order() -> None:
    """The first failing check in the Go order wins (admin before tls before keystore)."""
    assert error_of("tls: {}\n") == "kesconf: invalid admin identity: no admin identity"
    assert error_of(ADMIN_YAML + "tls: {}\n") == "kesconf: invalid tls config: no private key"
    text = doc("log:\n  error: nope\n", ks="keystore: {}\n")
    assert error_of(text) == "kesconf: invalid log level 'NOPE'"


# --------------------------------------------------------------------------- YAML level


def test_yaml_syntax_error_is_one_line() -> None:
    message = error_of("admin:\n  identity: [unclosed\ntls:\n")
    assert message.startswith("yaml: line ")


def test_yaml_tab_indentation_error() -> None:
    assert error_of("admin:\n\tidentity: x\n").startswith("yaml: line 2: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            doc(tls="tls:\n  key: [a, b]\n  cert: /c\n"),
            "kesconf: invalid 'tls.key' in line '4': cannot unmarshal !!seq into string",
        ),
        (
            doc("policy:\n  app:\n    identities: abc\n"),
            "kesconf: invalid 'policy.app.identities' in line '11': "
            "cannot unmarshal !!str `abc` into list of strings",
        ),
        (
            doc("api:\n  /v1/status:\n    skip_auth: maybe\n"),
            "kesconf: invalid 'api./v1/status.skip_auth' in line '11': "
            "cannot unmarshal !!str `maybe` into bool",
        ),
        (
            doc("api:\n  /v1/status:\n    skip_auth: 1\n"),
            "kesconf: invalid 'api./v1/status.skip_auth' in line '11': "
            "cannot unmarshal !!int `1` into bool",
        ),
        (
            doc("cache:\n  expiry:\n    any: 5\n"),
            "kesconf: invalid 'cache.expiry.any' in line '11': cannot unmarshal !!int `5` "
            'into time.Duration (time: missing unit in duration "5")',
        ),
        (
            doc("cache:\n  expiry:\n    unused: 1d\n"),
            "kesconf: invalid 'cache.expiry.unused' in line '11': cannot unmarshal !!str `1d` "
            'into time.Duration (time: unknown unit "d" in duration "1d")',
        ),
        (
            doc("keys: my-key\n"),
            "kesconf: invalid 'keys' in line '9': cannot unmarshal !!str `my-key` into list",
        ),
        (
            doc(ks="keystore:\n  fs: /var/lib/kes\n"),
            "kesconf: invalid 'keystore.fs' in line '7': "
            "cannot unmarshal !!str `/var/li...` into mapping",
        ),
        (
            "- admin\n- tls\n",
            "kesconf: invalid config in line '1': cannot unmarshal !!seq into mapping",
        ),
        (
            doc("address: 127.0.0.1:7373\naddress: 127.0.0.1:7000\n"),
            "kesconf: invalid config in line '10': "
            'mapping key "address" already defined at line 9',
        ),
    ],
)
def test_type_errors_name_field_and_line(text: str, message: str) -> None:
    assert error_of(text) == message


def test_unknown_keys_ignored_and_keys_case_sensitive() -> None:
    text = doc("adress: 1.2.3.4:1\nfoo:\n  bar: [1, 2]\nkeystore_typo: {}\n")
    assert parse(text).address == "0.0.0.0:7373"
    # "Admin" is not "admin": the admin identity is missing.
    upper = f"Admin:\n  identity: {ADMIN}\n" + TLS_YAML + FS_YAML
    assert error_of(upper) == "kesconf: invalid admin identity: no admin identity"


def test_only_first_yaml_document_is_read() -> None:
    cfg = parse(doc() + "---\nadmin:\n  identity: other\n")
    assert cfg.admin_identity == ADMIN


def test_empty_document_is_an_empty_config() -> None:
    assert error_of("") == "kesconf: invalid admin identity: no admin identity"
    assert error_of("# only a comment\n") == "kesconf: invalid admin identity: no admin identity"


def test_version_v1_and_empty_accepted() -> None:
    assert parse("version: v1\n" + doc()).admin_identity == ADMIN
    assert parse("version: 'v1'\n" + doc()).admin_identity == ADMIN
    assert parse("version:\n" + doc()).admin_identity == ADMIN


def test_yaml_anchors_and_merge_keys() -> None:
    text = doc(
        "policy:\n"
        "  base: &base\n"
        "    allow: [/v1/status]\n"
        "  app:\n"
        "    <<: *base\n"
        f"    identities: [{ID1}]\n"
    )
    policies = parse(text).policies
    assert policies["app"] == PolicyConfig(allow=["/v1/status"], deny=[], identities=[ID1])


# --------------------------------------------------------------------------- defaults


def test_defaults_of_a_minimal_config() -> None:
    cfg = parse(doc())
    assert cfg == ServerConfig(
        address="0.0.0.0:7373",
        admin_identity=ADMIN,
        tls=TLSConfig(
            key="/etc/kes/server.key",
            cert="/etc/kes/server.crt",
            password="",
            auth="",
            ca="",
            proxy_identities=[],
            proxy_cert_header="X-Tls-Client-Cert",
        ),
        api={},
        policies={},
        cache=CacheConfig(any=300.0, unused=30.0, offline=0.0),
        log_error=0,
        log_audit=0,
        keys=[],
        keystore=FSKeyStoreConfig(path="/var/lib/kes"),
    )


def test_admin_identity_any_string() -> None:
    """Any non-empty admin string is accepted (docs/compat/auth.md §2: e.g. "disabled")."""
    text = "admin:\n  identity: disabled\n" + TLS_YAML + FS_YAML
    assert parse(text).admin_identity == "disabled"


@pytest.mark.parametrize(
    ("value", "auth"),
    [("''", ""), ("on", "on"), ("off", "off"), ("ON", "on"), ("Off", "off"), ("oN", "on")],
)
def test_tls_auth_values(value: str, auth: str) -> None:
    assert parse(doc(tls=TLS_YAML + f"  auth: {value}\n")).tls.auth == auth


@pytest.mark.parametrize(
    ("expiry", "effective"),
    [
        ("", (300.0, 30.0, 0.0)),  # unset / unset
        ("    any: 1h\n", (3600.0, 30.0, 0.0)),  # 1h / unset
        ("    unused: 20s\n", (300.0, 20.0, 0.0)),  # unset / 20s
        ("    any: 5m\n    unused: 20s\n", (300.0, 20.0, 0.0)),  # the sample
        ("    any: 0s\n    unused: 0\n    offline: 0s\n", (300.0, 30.0, 0.0)),
        ("    any: 10m\n    unused: 1m\n    offline: 2h\n", (600.0, 60.0, 7200.0)),
    ],
)
def test_cache_defaults_table(expiry: str, effective: tuple[float, float, float]) -> None:
    cache = parse(doc("cache:\n  expiry:\n" + expiry if expiry else "")).cache
    assert (cache.any, cache.unused, cache.offline) == effective


@pytest.mark.parametrize(
    ("value", "skip"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("yes", True),
        ("Yes", True),
        ("on", True),
        ("ON", True),
        ("y", True),
        ("Y", True),
        ("false", False),
        ("no", False),
        ("off", False),
        ("n", False),
        ("N", False),
        ("", False),
        ("~", False),
    ],
)
def test_skip_auth_yaml_bools(value: str, skip: bool) -> None:
    cfg = parse(doc(f"api:\n  /v1/metrics:\n    skip_auth: {value}\n"))
    assert cfg.api["/v1/metrics"] == APIRouteConfig(skip_auth=skip, timeout=0.0)


def test_api_paths_kept_exactly_as_written() -> None:
    text = doc(
        "api:\n"
        "  /v1/status:\n    skip_auth: true\n    timeout: 17s\n"
        "  /v1/key/create/:\n    timeout: 1m30s\n"
        "  /v1/unknown:\n    timeout: 1s\n"
        "  /v1/metrics:\n    timeout: 0s\n"
    )
    assert parse(text).api == {
        "/v1/status": APIRouteConfig(skip_auth=True, timeout=17.0),
        "/v1/key/create/": APIRouteConfig(skip_auth=False, timeout=90.0),
        "/v1/unknown": APIRouteConfig(skip_auth=False, timeout=1.0),
        "/v1/metrics": APIRouteConfig(skip_auth=False, timeout=0.0),
    }


def test_policy_without_identities_and_patterns_unvalidated() -> None:
    text = doc("policy:\n  empty: {}\n  odd:\n    allow: ['/v1/*/create/x', '']\n    deny: ['[']\n")
    assert parse(text).policies == {
        "empty": PolicyConfig(allow=[], deny=[], identities=[]),
        "odd": PolicyConfig(allow=["/v1/*/create/x", ""], deny=["["], identities=[]),
    }


def test_predefined_keys() -> None:
    text = doc("keys:\n  - name: my-key\n  - name: minio-default\n")
    assert parse(text).keys == ["my-key", "minio-default"]


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0:7373", ":7373", "127.0.0.1:0", "[::1]:7373", "[::]:7000", "10.1.2.3:65535"],
)
def test_valid_addresses(address: str) -> None:
    assert parse(doc(f"address: '{address}'\n")).address == address


def test_proxy_settings_parsed() -> None:
    tls = (
        TLS_YAML
        + f"  proxy:\n    identities: [{ID1}, {ID2}]\n    header:\n      cert: X-Proxy-Cert\n"
    )
    cfg = parse(doc(tls=tls))
    assert cfg.tls.proxy_identities == [ID1, ID2]
    assert cfg.tls.proxy_cert_header == "X-Proxy-Cert"


# --------------------------------------------------------------------------- env substitution


def test_env_substitution_of_strings() -> None:
    text = (
        "address: ${KES_ADDR}\n"
        "admin:\n  identity: ${ KES_ADMIN }\n"
        "tls:\n  key: ${KES_KEY}\n  cert: '${KES_CERT}'\n  password: ${EMPTY}\n"
        'keystore:\n  fs:\n    path: "  ${KES_DIR}  "\n'
    )
    env = {
        "KES_ADDR": "127.0.0.1:7000",
        "KES_ADMIN": ADMIN,
        "KES_KEY": "/k",
        "KES_CERT": "/c",
        "EMPTY": "",
        "KES_DIR": "/data/keys",
    }
    cfg = parse(text, env)
    assert cfg.address == "127.0.0.1:7000"
    assert cfg.admin_identity == ADMIN
    assert (cfg.tls.key, cfg.tls.cert, cfg.tls.password) == ("/k", "/c", "")
    assert cfg.keystore == FSKeyStoreConfig(path="/data/keys")


def test_env_variable_not_found_reports_line() -> None:
    text = ADMIN_YAML + "tls:\n  key: /k\n  cert: ${TLS_CERT}\n" + FS_YAML
    assert error_of(text) == "kesconf: referenced env. variable 'TLS_CERT' in line '5' not found"


def test_env_variable_name_trimmed_in_error() -> None:
    text = doc("log:\n  error: ${ LOG_LEVEL }\n")
    assert error_of(text) == "kesconf: referenced env. variable 'LOG_LEVEL' in line '10' not found"


def test_env_error_wins_over_type_errors() -> None:
    text = doc("api:\n  /v1/status:\n    skip_auth: maybe\nlog:\n  audit: ${MISSING}\n")
    assert error_of(text) == "kesconf: referenced env. variable 'MISSING' in line '13' not found"


def test_partial_interpolation_is_literal() -> None:
    text = doc(ks="keystore:\n  fs:\n    path: /data/${TENANT}/keys\n")
    assert parse(text, {"TENANT": "x"}).keystore == FSKeyStoreConfig(path="/data/${TENANT}/keys")


def test_empty_env_value_is_the_zero_value() -> None:
    text = doc(
        "api:\n  /v1/status:\n    skip_auth: ${E}\n    timeout: ${E}\n"
        "cache:\n  expiry:\n    any: ${E}\nlog:\n  error: ${E}\n"
    )
    cfg = parse(text, {"E": ""})
    assert cfg.api["/v1/status"] == APIRouteConfig(skip_auth=False, timeout=0.0)
    assert cfg.cache.any == 300.0
    assert cfg.log_error == 0


def test_env_duration_and_bool_decoded_as_written_there() -> None:
    text = doc(
        "api:\n  /v1/metrics:\n    skip_auth: ${SKIP}\n    timeout: ${TIMEOUT}\n"
        "cache:\n  expiry:\n    any: ${ANY}\n    unused: ${UNUSED}\n    offline: ${OFFLINE}\n"
        "log:\n  error: ${ERR}\n  audit: ${AUDIT}\n"
    )
    env = {
        "SKIP": "yes",
        "TIMEOUT": "30s",
        "ANY": "1h30m",
        "UNUSED": "45s",
        "OFFLINE": "1.5h",
        "ERR": "warn",
        "AUDIT": "off",
    }
    cfg = parse(text, env)
    assert cfg.api["/v1/metrics"] == APIRouteConfig(skip_auth=True, timeout=30.0)
    assert cfg.cache == CacheConfig(any=5400.0, unused=45.0, offline=5400.0)
    assert (cfg.log_error, cfg.log_audit) == (4, 9)


def test_env_bool_true_unquoted() -> None:
    text = doc("api:\n  /v1/ready:\n    skip_auth: ${SKIP}\n")
    assert parse(text, {"SKIP": "true"}).api["/v1/ready"].skip_auth is True


def test_env_value_invalid_for_type() -> None:
    text = doc("api:\n  /v1/ready:\n    timeout: ${T}\n")
    assert error_of(text, {"T": "soon"}) == (
        "kesconf: invalid 'api./v1/ready.timeout' in line '11': cannot unmarshal !!str `soon` "
        'into time.Duration (time: invalid duration "soon")'
    )


def test_env_not_substituted_in_keys_and_patterns() -> None:
    text = doc(
        "policy:\n"
        "  ${POLICY}:\n"
        "    allow:\n      - ${PATTERN}\n"
        "    identities:\n      - ${IDENTITY}\n"
    )
    env = {"POLICY": "p", "PATTERN": "/v1/*", "IDENTITY": ID3}
    # The map key stays literal, so the policy name rule rejects it.
    assert error_of(text, env) == (
        "kes: policy name '${POLICY}' is empty, too long or contains invalid characters"
    )
    text = doc(
        "policy:\n  app:\n"
        "    allow:\n      - ${PATTERN}\n"
        "    deny:\n      - '${PATTERN}'\n"
        "    identities:\n      - ${IDENTITY}\n"
    )
    assert parse(text, env).policies["app"] == PolicyConfig(
        allow=["${PATTERN}"], deny=["${PATTERN}"], identities=[ID3]
    )


def test_env_in_lists_each_element() -> None:
    tls = TLS_YAML + "  proxy:\n    identities:\n      - ${PROXY}\n      - literal-proxy\n"
    text = doc("keys:\n  - name: ${KEY}\n", tls=tls)
    cfg = parse(text, {"PROXY": ID1, "KEY": "from-env"})
    assert cfg.tls.proxy_identities == [ID1, "literal-proxy"]
    assert cfg.keys == ["from-env"]


def test_env_uses_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYKES_TEST_ADMIN", "env-admin")
    monkeypatch.delenv("PYKES_TEST_UNSET", raising=False)
    text = "admin:\n  identity: ${PYKES_TEST_ADMIN}\n" + TLS_YAML + FS_YAML
    assert parse_config(text).admin_identity == "env-admin"
    with pytest.raises(ConfigError) as info:
        parse_config(doc("log:\n  error: ${PYKES_TEST_UNSET}\n"))
    assert str(info.value) == (
        "kesconf: referenced env. variable 'PYKES_TEST_UNSET' in line '10' not found"
    )


# --------------------------------------------------------------------------- files

SAMPLE = f"""\
version: v1
address: 127.0.0.1:7373

admin:
  identity: {ADMIN}

tls:
  key: ./server.key
  cert: ./server.cert
  password: secret
  auth: "on"
  ca: ./ca-dir
  proxy:
    identities: []
    header:
      cert: X-Tls-Client-Cert

api:
  /v1/ready:
    skip_auth: false
    timeout: 15s
  /v1/metrics:
    skip_auth: true

cache:
  expiry:
    any: 5m0s
    unused: 20s
    offline: 0s

log:
  error: on
  audit: off

policy:
  minio:
    allow:
      - /v1/key/create/minio-*
      - /v1/key/generate/minio-*
      - /v1/key/decrypt/minio-*
    deny:
      - /v1/key/decrypt/minio-secret
    identities:
      - {ID1}
  my-app:
    allow: ["/v1/key/*"]
    identities: [{ID2}, {ID3}]

keys:
  - name: minio-default

keystore:
  fs:
    path: ./keys
"""


def test_full_sample_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(SAMPLE)
    cfg = load_config(str(path))
    assert cfg == ServerConfig(
        address="127.0.0.1:7373",
        admin_identity=ADMIN,
        tls=TLSConfig(
            key="./server.key",
            cert="./server.cert",
            password="secret",
            auth="on",
            ca="./ca-dir",
            proxy_identities=[],
            proxy_cert_header="X-Tls-Client-Cert",
        ),
        api={
            "/v1/ready": APIRouteConfig(skip_auth=False, timeout=15.0),
            "/v1/metrics": APIRouteConfig(skip_auth=True, timeout=0.0),
        },
        policies={
            "minio": PolicyConfig(
                allow=[
                    "/v1/key/create/minio-*",
                    "/v1/key/generate/minio-*",
                    "/v1/key/decrypt/minio-*",
                ],
                deny=["/v1/key/decrypt/minio-secret"],
                identities=[ID1],
            ),
            "my-app": PolicyConfig(allow=["/v1/key/*"], deny=[], identities=[ID2, ID3]),
        },
        cache=CacheConfig(any=300.0, unused=20.0, offline=0.0),
        log_error=0,
        log_audit=9,
        keys=["minio-default"],
        keystore=FSKeyStoreConfig(path="./keys"),
    )
    assert list(cfg.policies) == ["minio", "my-app"]
    assert cfg.keystore.description == "Filesystem: ./keys"


def test_load_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config(str(missing))
    assert str(info.value) == f"open {missing}: no such file or directory"


def test_load_config_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert str(info.value) == f"read {tmp_path}: is a directory"


def test_load_config_utf8_bom_and_invalid_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbf" + doc().encode())
    assert load_config(str(path)).admin_identity == ADMIN
    path.write_bytes(b"admin:\n  identity: \xff\xfe\xfd\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value).startswith("yaml: ") and "\n" not in str(info.value)


def test_dataclasses_constructible_with_defaults() -> None:
    cfg = ServerConfig(admin_identity=ADMIN, keystore=FSKeyStoreConfig(path="/k"))
    assert cfg.address == "0.0.0.0:7373"
    assert cfg.cache == CacheConfig(any=300.0, unused=30.0, offline=0.0)
    assert cfg.tls == TLSConfig(key="", cert="")
    assert cfg.tls.proxy_cert_header == "X-Tls-Client-Cert"
    assert ServerConfig().keystore.description == "In Memory"
    assert (cfg.log_error, cfg.log_audit) == (0, 0)


def test_quoted_bools_and_block_scalars() -> None:
    """yaml.v3 rejects a quoted "true" for a bool; accepting it is a safe superset."""
    text = doc("api:\n  /v1/status:\n    skip_auth: 'true'\n  /v1/api:\n    skip_auth: \"yes\"\n")
    api = parse(text).api
    assert (api["/v1/status"].skip_auth, api["/v1/api"].skip_auth) == (True, True)
    text = doc(ks="keystore:\n  fs:\n    path: |\n      ${DIR}\n")
    assert parse(text, {"DIR": "/from/env"}).keystore == FSKeyStoreConfig(path="/from/env")


def test_quoted_durations_and_null_values() -> None:
    text = doc("cache:\n  expiry:\n    any: '10m'\n    unused: ~\n    offline: null\n")
    assert parse(text).cache == CacheConfig(any=600.0, unused=30.0, offline=0.0)
    assert parse(doc("address:\n")).address == "0.0.0.0:7373"
    assert parse(doc("address: ~\n")).address == "0.0.0.0:7373"
    assert parse(doc("address: ${ADDR}\n"), {"ADDR": ""}).address == "0.0.0.0:7373"


def test_version_null_spelling_is_not_empty() -> None:
    """``version`` is compared literally: ``~`` is not the empty value."""
    assert error_of("version: ~\n" + doc()) == "edge: invalid server config version '~'"
