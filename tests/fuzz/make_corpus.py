"""(Re)build the seed corpora under tests/fuzz/corpus/ from real inputs.

    .venv/bin/python tests/fuzz/make_corpus.py

Seeds come from outside the code under test: the ciphertexts recorded from the real Go
KES server (tests/vectors/vectors.json), the sample configs of docs/compat/config.md,
the API keys of docs/compat/auth.md plus keys made from random seeds, and certificates /
private keys made by ``cryptography``. Files named ``regress-*`` are inputs that once
crashed a parser; this script never touches them. Seeds are written once; re-running
only adds missing files (certificates and keys are random, so existing ones are kept
for stable examples).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: conftest

from conftest import make_certificate, spec_vectors  # noqa: E402

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
COMPAT_DOCS = HERE.parents[1] / "docs" / "compat"


def _write(target: str, name: str, data: bytes) -> None:
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)


KEYS: dict[str, dict[str, str]] = {}  # vector key name -> {"key_hex", "cipher"}


def _ciphertext_entry(
    key: str, context: str | None, ciphertext: str, plaintext: str | None
) -> bytes:
    """A decrypt input: the (public test-vector) key, context, ciphertext and the expected
    plaintext (None: decryption must fail)."""
    entry = {
        "key_hex": KEYS[key]["key_hex"],
        "cipher": KEYS[key]["cipher"],
        "context": context,
        "ciphertext": ciphertext,
        "plaintext": plaintext,
    }
    return (json.dumps(entry, indent=1) + "\n").encode()


def ciphertexts(vectors: dict) -> None:
    for k in vectors["keys"]:
        KEYS[k["name"]] = {"key_hex": k["key_hex"], "cipher": k["cipher"]}
    for i, v in enumerate(vectors["vectors"]):
        if v.get("ciphertext_b64") is None:
            continue
        body = _ciphertext_entry(
            v["key"], v["context_b64"], v["ciphertext_b64"], v["plaintext_b64"]
        )
        _write("ciphertext_raw", f"vector-{i:02d}.json", body)
    for i, v in enumerate(vectors["decrypt_negative"]):
        req = v["exchange"]["request_body"] if "exchange" in v else v["request"]["body"]
        if not req.get("ciphertext"):
            continue
        body = _ciphertext_entry(v["key"], req.get("context"), req["ciphertext"], None)
        _write("ciphertext_raw", f"negative-{i:02d}.json", body)
    for i, v in enumerate(vectors["decrypt_legacy"]):
        req = v["exchange"]["request_body"]
        target = "ciphertext_msgpack" if "msgpack" in v["encoding"] else "ciphertext_json"
        body = _ciphertext_entry(
            v["key"], req.get("context"), req["ciphertext"], v["expected_plaintext_b64"]
        )
        _write(target, f"legacy-{i:02d}.json", body)


# A KES v0.4–v0.7 TOML config as docs/compat/config.md §7 describes it.
TOML_CONFIG = b"""root = "disabled"
address = "0.0.0.0:7373"
[tls]
key = "/tmp/key.pem"
cert = "/tmp/cert.pem"
[policy.my-app]
paths = ["/v1/key/create/my-app*", "/v1/key/generate/my-app*"]
identities = ["dd46485bedc9ad2909d2e8f9017216eec4413bc5c64b236d992f7ec19c843c5f"]
[cache.expiry]
all = "5m"
unused = "20s"
[log.error]
file = ["stderr"]
[keystore.fs]
path = "/tmp/keys"
"""


def configs() -> None:
    text = (COMPAT_DOCS / "config.md").read_text()
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
        _write("config", f"config-md-{i:02d}.yaml", block.encode())
    _write("config", "v0.7-sample.toml", TOML_CONFIG)
    # Complete configs: the reference layout with its placeholders filled in, once per
    # keystore snippet of the document, so that mutations reach the semantic checks.
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    head = blocks[0].split("keystore:")[0]
    proxy = "a3f8b9c2d1e0f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9"
    head = head.replace("<identity>", proxy, 1)  # the TLS proxy; the next is a policy's
    for placeholder, value in (
        ("<hex or any string>", "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"),
        ("<path>", "/tmp/kes/file.pem"),
        ("<identity>", "dd46485bedc9ad2909d2e8f9017216eec4413bc5c64b236d992f7ec19c843c5f"),
        ("<policy-name>", "my-app"),
        ("<pattern>", "/v1/key/generate/my-app*"),
        ("<key-name>", "my-key"),
    ):
        head = head.replace(placeholder, value)
    for block in blocks[1:]:
        match = re.match(r"keystore:\n  (\w+):", block)
        if match:
            complete = head + block.replace("<API key>", "fuzz-api-key")
            _write("config", f"complete-{match.group(1)}.yaml", complete.encode())


def api_keys() -> None:
    text = (COMPAT_DOCS / "auth.md").read_text()
    for i, key in enumerate(sorted(set(re.findall(r"kes:v1:[A-Za-z0-9+/=]{44}", text)))):
        _write("apikey", f"auth-md-{i:02d}.txt", key.encode())
    for i in range(3):
        seed = os.urandom(32)
        text_key = "kes:v1:" + base64.b64encode(b"\x00" + seed).decode()
        _write("apikey", f"random-{i:02d}.txt", text_key.encode())
    _write("apikey", "bare-base64.txt", base64.b64encode(b"\x00" + bytes(range(32))))
    _write(
        "apikey", "wrong-type.txt", ("kes:v1:" + base64.b64encode(b"\x01" * 33).decode()).encode()
    )


_CORPUS_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # fixed validity: stable files


def _certificate(
    key, cn: str, *, ca: bool = False, issuer=None, issuer_key=None
) -> x509.Certificate:
    return make_certificate(
        key,
        cn,
        dns=("fuzz.example",),
        ca=ca,
        not_before=_CORPUS_TIME,
        not_after=_CORPUS_TIME + dt.timedelta(days=365),
        issuer_key=issuer_key,
        issuer_name=issuer,
    )


def certificates() -> None:
    keys = {
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "rsa1024": rsa.generate_private_key(public_exponent=65537, key_size=1024),
    }
    for name, key in keys.items():
        cert = _certificate(key, f"fuzz-{name}")
        _write("certificate", f"{name}.der", cert.public_bytes(serialization.Encoding.DER))
        _write("certificate", f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_key, "fuzz-ca", ca=True)
    leaf = _certificate(keys["ed25519"], "fuzz-leaf", issuer=ca.subject, issuer_key=ca_key)
    _write("certificate", "ca.der", ca.public_bytes(serialization.Encoding.DER))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
        serialization.Encoding.PEM
    )
    _write("certificate", "chain.pem", chain)

    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    none = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    legacy = serialization.PrivateFormat.TraditionalOpenSSL
    password = serialization.BestAvailableEncryption(b"fuzz-password")
    _write("private_key", "ed25519-pkcs8.pem", keys["ed25519"].private_bytes(pem, pkcs8, none))
    _write("private_key", "p256-sec1.pem", keys["p256"].private_bytes(pem, legacy, none))
    _write("private_key", "rsa-pkcs1.pem", keys["rsa1024"].private_bytes(pem, legacy, none))
    _write("private_key", "p256-encrypted.pem", keys["p256"].private_bytes(pem, legacy, password))
    _write("private_key", "rsa-encrypted.pem", keys["rsa1024"].private_bytes(pem, legacy, password))
    _write("private_key", "p384-pkcs8.der", keys["p384"].private_bytes(der, pkcs8, none))


def request_bodies(vectors: dict) -> None:
    bodies: list[object] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("request_body", "body") and isinstance(value, dict):
                    if value not in bodies:
                        bodies.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(vectors)
    for i, body in enumerate(bodies):
        _write("gojson", f"vector-{i:02d}.json", json.dumps(body).encode())
    _write("gojson", "sdk-generate-empty.json", b"{}")
    _write("gojson", "null.json", b"null")
    _write(
        "gojson", "legacy-import.json", b'{"bytes":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}'
    )


def main() -> None:
    vectors = spec_vectors()
    ciphertexts(vectors)
    configs()
    api_keys()
    certificates()
    request_bodies(vectors)
    for target in sorted(p.name for p in CORPUS.iterdir()):
        print(target, len(list((CORPUS / target).iterdir())))


if __name__ == "__main__":
    main()
