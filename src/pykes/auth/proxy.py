"""TLS proxies (docs/compat/auth.md §10): the ≤ Sep-2023 behaviour, re-added.

A request whose TLS peer is a configured proxy identity is handled as the client whose
certificate the proxy forwards in ``tls.proxy.header.cert`` (URL-query-escaped PEM);
its audit address is the first ``X-Forwarded-For`` entry. Headers of any other peer
are never looked at, so a client cannot claim another identity by sending them.

A proxy is a conduit, never a client: it has no identity of its own (docs/compat/config.md forbids
giving it a policy or making it the admin). A proxy request without a usable forwarded
certificate is refused on policy routes (400 / 403) and served anonymously on
identify-only routes (``skip_auth``, self-describe), which never reject.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import ssl
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)

from pykes.errors import APIError
from pykes.pki.identity import X509_PARSE_ERRORS, decode_pem_blocks, identity_of_certificate

if TYPE_CHECKING:
    from pykes.config.model import TLSConfig

DEFAULT_CERT_HEADER = "X-Tls-Client-Cert"
_XFF = b"x-forwarded-for"
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CACHE_MAX = 4096
_VERIFIED_TTL = 60.0  # seconds a successful chain verification is reused

# (status, message) of Go's errors; raised as fresh APIErrors (no shared tracebacks)
ERR_NO_CERT = (400, "no client certificate is present")
ERR_TOO_MANY = (400, "too many client certificates are present")
ERR_INVALID = (400, "invalid client certificate")
ERR_UNVERIFIED = (403, "")  # as Go: 403 with an empty message


def _require_ca(_policy: object, _cert: x509.Certificate, bc: x509.BasicConstraints | None) -> None:
    if bc is None or not bc.ca:
        raise ValueError("issuer is not a CA")


def _client_eku(leaf: x509.Certificate) -> bool:
    """Go's ``ExtKeyUsageClientAuth`` check: no EKU, ``anyExtendedKeyUsage`` or clientAuth."""
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or (
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages
    )


def _load_certificates(paths: Iterable[str]) -> list[x509.Certificate]:
    certs = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        for block in decode_pem_blocks(data):
            if block.type == "CERTIFICATE":
                # some system roots have non-positive serials: cryptography warns
                with warnings.catch_warnings(), contextlib.suppress(ValueError):
                    warnings.simplefilter("ignore")
                    certs.append(x509.load_der_x509_certificate(block.der))
    return certs


def _ca_paths(ca: str) -> list[str]:
    p = Path(ca)
    return sorted(str(f) for f in p.iterdir() if f.is_file()) if p.is_dir() else [ca]


def client_verifier(ca: str) -> ClientVerifier | None:
    """The ``tls.auth: on`` check for forwarded certificates: a chain to the system roots
    or ``tls.ca``, valid now. Like Go's ``x509.Verify`` (and unlike the Web PKI profile)
    it does not insist on key-usage / key-identifier extensions. None: no root at all
    (then nothing verifies)."""
    defaults = ssl.get_default_verify_paths()
    paths = [p for p in (defaults.cafile, defaults.openssl_cafile) if p]
    if ca:
        paths += _ca_paths(ca)
    roots = _load_certificates(dict.fromkeys(paths))
    if not roots:
        return None
    ca_policy = ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, Criticality.AGNOSTIC, _require_ca
    )
    return (
        PolicyBuilder()
        .store(Store(roots))
        .extension_policies(ca_policy=ca_policy, ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )


@dataclass(eq=False)
class TLSProxy:
    """``tls.proxy``: the proxy identities, the certificate header (any case) and, with
    ``tls.auth: on``, the verifier for forwarded certificates."""

    identities: frozenset[str]
    cert_header: str = DEFAULT_CERT_HEADER
    verify: bool = False  # tls.auth: on
    verifier: ClientVerifier | None = None  # None with verify: no roots, nothing passes
    _header: bytes = field(init=False, repr=False)
    _parsed: dict[bytes, tuple[str, x509.Certificate] | tuple[int, str]] = field(
        default_factory=dict, init=False, repr=False
    )
    _verified: dict[bytes, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._header = self.cert_header.lower().encode("latin-1")

    def client_identity(self, headers: Sequence[tuple[bytes, bytes]] | None) -> str:
        """The identity of the certificate forwarded in ``headers``; ``APIError`` with
        Go's status and text when it is missing, repeated, malformed or unverified."""
        values = [v for n, v in headers or () if n.lower() == self._header]
        if not values:
            raise APIError(*ERR_NO_CERT)
        if len(values) > 1:
            raise APIError(*ERR_TOO_MANY)
        value = values[0]
        parsed = self._parsed.get(value)
        if parsed is None:
            parsed = _parse_forwarded(value)
            if len(self._parsed) >= _CACHE_MAX:
                self._parsed.clear()
            self._parsed[value] = parsed
        if parsed is ERR_INVALID:
            raise APIError(*ERR_INVALID)
        identity, cert = parsed
        if self.verify:
            self._verify(value, cert)
        return identity

    def _verify(self, value: bytes, cert: x509.Certificate) -> None:
        now = time.time()
        if self._verified.get(value, 0.0) > now:
            return
        if self.verifier is None or not _client_eku(cert):
            raise APIError(*ERR_UNVERIFIED)
        try:
            self.verifier.verify(cert, [])
        except Exception:  # VerificationError, or a certificate it cannot handle
            raise APIError(*ERR_UNVERIFIED) from None
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        # reused for a minute, never past the certificate's expiry
        expiry = cert.not_valid_after_utc.timestamp()
        self._verified[value] = min(now + _VERIFIED_TTL, expiry)


def _parse_forwarded(value: bytes) -> tuple[str, x509.Certificate] | tuple[int, str]:
    """Go's ``url.QueryUnescape`` (``+`` is a space, a bad ``%`` escape fails), then the
    first PEM block, which must be a parsable ``CERTIFICATE``."""
    if _BAD_ESCAPE.search(value):
        return ERR_INVALID
    blocks = decode_pem_blocks(unquote_to_bytes(value.replace(b"+", b" ")))
    if not blocks or blocks[0].type != "CERTIFICATE":
        return ERR_INVALID
    der = blocks[0].der
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.extensions  # noqa: B018 - parsed now: a repeated extension fails here, not later
        return identity_of_certificate(der), cert
    except X509_PARSE_ERRORS:  # not only ValueError (e.g. x509.InvalidVersion)
        return ERR_INVALID


def client_ip(headers: Sequence[tuple[bytes, bytes]] | None) -> str | None:
    """The first ``X-Forwarded-For`` entry without its port; None if absent, empty or
    ``unknown``."""
    for name, value in headers or ():
        if name.lower() != _XFF:
            continue
        first = value.split(b",", 1)[0].strip().decode("latin-1")
        if not first or first.lower() == "unknown":
            return None
        try:  # only an IP address goes into the audit log: never raw header text
            return str(ipaddress.ip_address(_strip_port(first)))
        except ValueError:
            return None
    return None


def _strip_port(addr: str) -> str:
    if addr.startswith("["):  # [v6]:port or [v6]
        end = addr.find("]")
        return addr[1:end] if end > 0 else addr
    if addr.count(":") == 1:  # v4:port or name:port (a bare IPv6 address has several)
        return addr.split(":", 1)[0]
    return addr


def tls_proxy(tls: TLSConfig) -> TLSProxy:
    """The ``TLSProxy`` of a validated ``tls`` config section (``tls.auth: on`` verifies
    forwarded certificates against the system roots plus ``tls.ca``)."""
    if not tls.proxy_identities:
        return TLSProxy(frozenset())
    verify = tls.auth == "on"
    verifier = client_verifier(tls.ca) if verify else None
    return TLSProxy(frozenset(tls.proxy_identities), tls.proxy_cert_header, verify, verifier)
