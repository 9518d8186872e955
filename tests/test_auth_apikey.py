"""API keys and their client certificates (docs/compat/auth.md §7, §7.1)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykes.kms.identity import from_kes
from pykes.pki import ED25519_SPKI_PREFIX, APIKey, client_certificate, identity_of_certificate

# Upstream test vectors (docs/compat/auth.md §7).
VECTORS = [
    (
        "kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw",
        "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb",
    ),
    (
        "kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ",
        "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7",
    ),
    (
        "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
        "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6",
    ),
]

# Upstream invalid keys (full strings of the abbreviated spec examples) + extra cases.
INVALID = [
    "v1:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E",  # prefix mangled
    "kes:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E",  # prefix mangled
    "kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW",  # type byte != 0
    "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NA=",  # 32 bytes: too short
    "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAsAA==",  # 34 bytes: too long
    "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs=",  # bad padding
    "kes:v1:not base64!",
    "kes:v1:",
    "",
    "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NA\u00e9",  # non-ASCII
]


@pytest.mark.parametrize(("text", "identity"), VECTORS)
def test_upstream_vectors(text: str, identity: str) -> None:
    key = APIKey.parse(text)
    assert key.identity == identity
    assert str(key) == text
    assert len(str(key)) == 51


@pytest.mark.parametrize(("text", "identity"), VECTORS)
def test_prefix_optional_and_whitespace_stripped(text: str, identity: str) -> None:
    assert APIKey.parse(text.removeprefix("kes:v1:")).identity == identity
    assert APIKey.parse(f"  {text}\n").identity == identity


@pytest.mark.parametrize("text", INVALID)
def test_invalid_keys_rejected_without_leaking(text: str) -> None:
    with pytest.raises(ValueError) as info:
        APIKey.parse(text)
    message = str(info.value)
    assert message.startswith("invalid API key: ")
    body = text.removeprefix("kes:v1:")
    if body:
        assert body not in message


def test_invalid_key_error_messages() -> None:
    with pytest.raises(ValueError, match=r"^invalid API key: unsupported type$"):
        APIKey.parse("kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW")
    with pytest.raises(ValueError, match=r"^invalid API key: invalid length$"):
        APIKey.parse("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NA=")


def test_key_material_is_seed_from_text() -> None:
    text, _ = VECTORS[0]
    seed = base64.b64decode(text.removeprefix("kes:v1:"))[1:]
    key = APIKey.parse(text)
    expected = Ed25519PrivateKey.from_private_bytes(seed)
    assert key.private_key.private_bytes_raw() == expected.private_bytes_raw()


def test_ed25519_spki_prefix() -> None:
    # docs/compat/auth.md §1: 30 2A 30 05 06 03 2B 65 70 03 21 00 || 32-byte key (44 bytes).
    spec_prefix = bytes.fromhex("302A300506032B6570032100")
    assert spec_prefix == ED25519_SPKI_PREFIX
    public = Ed25519PrivateKey.generate().public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert len(spki) == 44
    assert spki == ED25519_SPKI_PREFIX + public.public_bytes_raw()


def test_identity_is_sha256_of_spki() -> None:
    key = APIKey.generate()
    spki = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.identity == hashlib.sha256(spki).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", key.identity)


def test_generate_round_trip() -> None:
    a, b = APIKey.generate(), APIKey.generate()
    assert a.identity != b.identity
    assert a != b
    text = str(a)
    assert text.startswith("kes:v1:") and len(text) == 51
    assert base64.b64decode(text[7:])[0] == 0
    parsed = APIKey.parse(text)
    assert parsed == a
    assert parsed.identity == a.identity


def test_repr_does_not_reveal_key() -> None:
    text, identity = VECTORS[1]
    key = APIKey.parse(text)
    shown = repr(key)
    assert identity in shown
    assert text[7:] not in shown
    assert text[7:20] not in shown
    assert f"{key!r}" == shown


def test_wraps_existing_private_key() -> None:
    private = Ed25519PrivateKey.generate()
    assert APIKey(private).private_key is private
    with pytest.raises(TypeError):
        APIKey("kes:v1:whatever")  # type: ignore[arg-type]


# --- client certificate (SDK GenerateCertificate) ---------------------------------


def _client_cert(key: APIKey) -> tuple[x509.Certificate, bytes]:
    cert_pem, key_pem = client_certificate(key)
    return x509.load_pem_x509_certificate(cert_pem), key_pem


def test_client_certificate_fields() -> None:
    text, identity = VECTORS[0]
    key = APIKey.parse(text)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert, _ = _client_cert(key)
    after = dt.datetime.now(dt.UTC)

    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 2**128
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    assert cn == [identity]
    assert cert.issuer == cert.subject
    assert before <= cert.not_valid_before_utc <= after
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=90)

    public = cert.public_key()
    assert isinstance(public, Ed25519PublicKey)
    assert public.public_bytes_raw() == key.private_key.public_key().public_bytes_raw()
    assert cert.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.ED25519
    public.verify(cert.signature, cert.tbs_certificate_bytes)  # self-signed

    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not (ku.value.key_encipherment or ku.value.key_cert_sign or ku.value.crl_sign)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is False

    der = cert.public_bytes(serialization.Encoding.DER)
    assert identity_of_certificate(der) == key.identity == identity


def test_client_certificate_private_key_is_pkcs8() -> None:
    key = APIKey.generate()
    _, key_pem = _client_cert(key)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert loaded.private_bytes_raw() == key.private_key.private_bytes_raw()


def test_client_certificate_regenerated_keeps_identity() -> None:
    key = APIKey.generate()
    first, _ = _client_cert(key)
    second, _ = _client_cert(key)
    assert first.serial_number != second.serial_number
    ders = [c.public_bytes(serialization.Encoding.DER) for c in (first, second)]
    assert ders[0] != ders[1]
    assert identity_of_certificate(ders[0]) == identity_of_certificate(ders[1]) == key.identity


# aead.dev/mtls's (kms-go's) Ed25519 key of its testdata/certs/ed25519.crt, and the
# "h1:" identity of that certificate (the SHA-256 of its SPKI, computed from the file).
KMS_VECTOR = (
    "k1:xZnpcYtPdVMNLBBRaUO5HPEoK_jVrcc3MWR8BshkjJw",
    "h1:l4AoVm6xKAVGsfo8J_ttCOC6Odgq3GJLHg5NtAdOAr0",
)


def test_kms_api_key_is_the_same_key_in_another_spelling() -> None:
    text, h1 = KMS_VECTOR
    key = APIKey.parse(text)
    assert from_kes(key.identity) == h1
    assert key.kms_text() == text
    again = APIKey.parse(str(key))  # its kes:v1: spelling: the same seed and identity
    assert again == key and again.kms_text() == text


# aead.dev/mtls's ECDSA keys (k2: + unpadded base64url of the private scalar, P-256,
# P-384 or P-521 by its length) and their identities, as Go printed them
# (mtls.GenerateKeyECDSA, Identity().String(); the last one is the key of mtls's own
# example_test.go).
K2_VECTORS = [
    ("k2:T_vbluE5-hzHEe38pVOB5I_4J4XbTmyqaIZjeklO694",
     "h1:1G_0Q8O2pRiC6i0WW_cL7pljfjabk1CZGtgRfPebOVk"),
    ("k2:Gl101PlX_7tYyLkVUpKwQ4nRmuUzaibqEQQMN-5LKSsSDhbYCf1598nwOLOiDFTC",
     "h1:UoQMB2YmupzIoBvKoA4M_R1rCAWtIHa4c74iRAcQXRA"),
    ("k2:ATsXo9NdFLQnsN70a31uui14XbwvE1luvNeiKreRURNidCxuDCSjPrcx5U-b_6jqhvnFeKektB6gE9TQv7t91PP4",
     "h1:in350oZIthc7NYgNG8TdfYXFOzE_46-Fzx8NDYYUkCo"),
    ("k2:q-sFRxPrJNevr8cztwnMONKtC5eVC3an42AWijBGOtc",
     "h1:5OEhsTTKZiK-IFE-Fi6W-VWwp_YLbxik0wxQBNc0_6s"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "h1"), K2_VECTORS)
def test_kms_ecdsa_api_keys_and_their_certificates(text: str, h1: str) -> None:
    key = APIKey.parse(text)
    assert from_kes(key.identity) == h1
    assert key.kms_text() == str(key) == text  # no kes:v1: spelling exists for ECDSA
    assert APIKey.parse(text) == key and repr(key) == f"APIKey(identity={key.identity!r})"
    cert, key_pem = _client_cert(key)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert identity_of_certificate(der) == key.identity  # what the server computes


@pytest.mark.parametrize(
    "text",
    [
        "k2:",
        "k2:T_vbluE5-hzHEe38pVOB5I_4J4XbTmyqaIZjeklO69",  # 43 characters: 31.5 bytes
        "k2:T_vbluE5-hzHEe38pVOB5I_4J4XbTmyqaIZjeklO694=",  # padded
        "k2:" + "A" * 43,  # the scalar 0
        "k2:" + "_" * 43,  # above the P-256 group order
        "k2:T_vbluE5-hzHEe38pVOB5I_4J4XbTmyqaIZjeklO694AAAA",  # 35 bytes: no curve
        "k3:T_vbluE5-hzHEe38pVOB5I_4J4XbTmyqaIZjeklO694",
    ],
)
def test_invalid_ecdsa_api_keys_rejected_without_leaking(text: str) -> None:
    with pytest.raises(ValueError) as info:
        APIKey.parse(text)
    assert str(info.value).startswith("invalid API key: ")
    assert text[3:] == "" or text[3:] not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "k1:",
        "k1:xZnpcYtPdVMNLBBRaUO5HPEoK_jVrcc3MWR8BshkjJ",  # 42 characters: 31.5 bytes
        "k1:xZnpcYtPdVMNLBBRaUO5HPEoK_jVrcc3MWR8BshkjJw=",  # padded
        "k1:xZnpcYtPdVMNLBBRaUO5HPEoK/jVrcc3MWR8BshkjJw",  # standard, not url alphabet
        "k1:xZnpcYtPdVMNLBBRaUO5HPEoK_jVrcc3MWR8BshkjJwAAAA",  # 35 bytes
    ],
)
def test_invalid_kms_api_keys_rejected_without_leaking(text: str) -> None:
    with pytest.raises(ValueError) as info:
        APIKey.parse(text)
    assert str(info.value).startswith("invalid API key: ")
    assert text[3:] == "" or text[3:] not in str(info.value)
