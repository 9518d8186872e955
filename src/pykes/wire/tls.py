"""Server-side TLS: the client-certificate modes of docs/compat/auth.md §6 on stdlib ``ssl``.

KES's default mode (``tls.auth: off``, and every API key) must *request* a client
certificate and accept it without any verification (Go's RequireAnyClientCert);
authorization is then by the SHA-256 of the certificate's SubjectPublicKeyInfo.
The stdlib ``ssl`` module always verifies a requested certificate and offers no verify
callback, so (docs/compat/auth.md §6, pykes note) we give the context's ``SSL_CTX`` an
accept-all certificate-verification callback through libssl's
``SSL_CTX_set_cert_verify_callback`` (via ctypes). Everything about this hook lives in
this module. A start-up self-check reads the verify mode back through libssl and
refuses to start if the ``SSL_CTX`` pointer or the library does not match.

``tls.auth: on`` uses plain stdlib verification against ``tls.ca`` plus system roots.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hmac
import os
import secrets
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from pykes.goformat.oserror import go_os_error

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

# TLS 1.3 suites in Go's server order (crypto/tls defaultCipherSuitesTLS13, with AES
# hardware): AES-128-GCM-SHA256 first. OpenSSL's default puts AES-256-GCM-SHA384 first,
# and with server preference it wins over every client's order — its SHA-384 key
# schedule costs ~80 k instructions (1.1–1.4 %) more per new connection on both TLS
# layers (bench/tls_callgrind.py), more in time: SHA-256 has CPU instructions (SHA-NI).
TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

# TLS 1.3 session tickets sent after each full handshake. Go's crypto/tls (the KES
# server) sends one; OpenSSL's default is two. Each ticket embeds the client
# certificate, and on the system OpenSSL 3.0 each costs ~1.4 M instructions (~100 µs)
# of server CPU — about a sixth of a whole new connection (profiled: the session is
# re-parsed through d2i_SSL_SESSION, whose public-key decoding is slow in 3.0; see
# bench/tls_callgrind.py) — wasted on clients without a session cache (Go's default,
# kesload). One ticket keeps resumption possible, like Go; 0 would save as much again.
TLS13_SESSION_TICKETS = 1

# ... and only to a client that can use it. A TLS 1.3 client able to resume offers the
# psk_key_exchange_modes extension (RFC 8446 §4.2.9: servers SHOULD NOT send tickets
# incompatible with the advertised modes); Go's crypto/tls client offers it only with a
# ClientSessionCache, and Go's server sends no ticket otherwise ("Don't send tickets the
# client wouldn't use"). OpenSSL sends them regardless, so a ClientHello callback sets
# the ticket count of a connection without psk_dhe_ke to 0: that saves the ticket's
# ~1.4 M instructions on every new connection of a client without a session cache
# (the Go SDK's and kesload's default), while MinIO, which resumes, still gets one.
_TLSEXT_TYPE_PSK_KEX_MODES = 45
_PSK_DHE_KE = 1
_SSL_CLIENT_HELLO_SUCCESS = 1

_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02

# int (*cb)(X509_STORE_CTX *ctx, void *arg): returning 1 accepts the presented chain.
_VERIFY_CB_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


@ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
def _accept_any_certificate(_store_ctx: int | None, _arg: int | None) -> int:
    # Proof of possession (CertificateVerify) is still checked by TLS itself;
    # only chain building / validity / EKU checks are skipped, as in Go.
    return 1


# int (*cb)(SSL *s, int *alert, void *arg), called by libssl with the ClientHello parsed.
_CLIENT_HELLO_CB_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)


@_CLIENT_HELLO_CB_TYPE
def _tickets_only_for_resuming_clients(
    ssl_ptr: int | None, _alert: int | None, _arg: int | None
) -> int:
    # Never fails the handshake: on any surprise the connection keeps the default count.
    try:
        lib = _lib
        if lib is None or not ssl_ptr:
            return _SSL_CLIENT_HELLO_SUCCESS
        data = ctypes.c_void_p()
        size = ctypes.c_size_t()
        if (
            lib.client_hello_get0_ext(
                ssl_ptr, _TLSEXT_TYPE_PSK_KEX_MODES, ctypes.byref(data), ctypes.byref(size)
            )
            == 1
            and size.value
            and data.value
        ):
            modes = ctypes.string_at(data.value, size.value)
            # struct { PskKeyExchangeMode ke_modes<1..255>; }: a length byte, then modes.
            if modes[0] == len(modes) - 1 and _PSK_DHE_KE in modes[1:]:
                return _SSL_CLIENT_HELLO_SUCCESS
        lib.set_num_tickets(ssl_ptr, 0)
    except Exception:  # noqa: BLE001 - a callback from C must not raise
        pass
    return _SSL_CLIENT_HELLO_SUCCESS


class TLSSetupError(Exception):
    """TLS material could not be loaded or the libssl hook failed its self-check."""


def _libssl_path() -> str:
    """The libssl that ``_ssl`` is linked against (already mapped into this process)."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(" ")[-1]
                if "/libssl" in path and ".so" in path:
                    return path
    except OSError:
        pass
    found = ctypes.util.find_library("ssl")
    if found is None:
        raise TLSSetupError("cannot locate libssl for the client-certificate hook")
    return found


class _LibSSL:
    def __init__(self) -> None:
        lib = ctypes.CDLL(_libssl_path())
        self.set_cert_verify_callback = lib.SSL_CTX_set_cert_verify_callback
        self.set_cert_verify_callback.argtypes = [ctypes.c_void_p, _VERIFY_CB_TYPE, ctypes.c_void_p]
        self.set_cert_verify_callback.restype = None
        self.get_verify_mode = lib.SSL_CTX_get_verify_mode
        self.get_verify_mode.argtypes = [ctypes.c_void_p]
        self.get_verify_mode.restype = ctypes.c_int
        self.get_options = lib.SSL_CTX_get_options
        self.get_options.argtypes = [ctypes.c_void_p]
        self.get_options.restype = ctypes.c_uint64
        self.set_ciphersuites = lib.SSL_CTX_set_ciphersuites
        self.set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.set_ciphersuites.restype = ctypes.c_int
        self.ctrl = lib.SSL_CTX_ctrl
        self.ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        self.ctrl.restype = ctypes.c_long
        self.set_client_hello_cb = lib.SSL_CTX_set_client_hello_cb
        self.set_client_hello_cb.argtypes = [
            ctypes.c_void_p,
            _CLIENT_HELLO_CB_TYPE,
            ctypes.c_void_p,
        ]
        self.set_client_hello_cb.restype = None
        self.client_hello_get0_ext = lib.SSL_client_hello_get0_ext
        self.client_hello_get0_ext.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.client_hello_get0_ext.restype = ctypes.c_int
        self.set_num_tickets = lib.SSL_set_num_tickets
        self.set_num_tickets.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.set_num_tickets.restype = ctypes.c_int


_lib: _LibSSL | None = None


def _ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    # PySSLContext starts with PyObject_HEAD (refcount + type pointer), then SSL_CTX *ctx.
    offset = sys.getsizeof(object())  # == sizeof(PyObject)
    return ctypes.c_void_p.from_address(id(context) + offset).value or 0


def _libssl() -> _LibSSL:
    global _lib
    if _lib is None:
        _lib = _LibSSL()
    return _lib


def set_tls13_ciphersuites(context: ssl.SSLContext, suites: str = TLS13_CIPHERSUITES) -> None:
    """The TLS 1.3 suites and their order (``ssl`` has no API for them), checked by
    reading the context's cipher list back."""
    lib = _libssl()
    ptr = _ssl_ctx_pointer(context)
    # The same pointer self-check as accept_any_client_certificate, before writing.
    if not ptr or lib.get_options(ptr) != int(context.options):
        raise TLSSetupError("TLS 1.3 cipher suites: SSL_CTX pointer self-check failed")
    if lib.set_ciphersuites(ptr, suites.encode()) != 1:
        raise TLSSetupError("TLS 1.3 cipher suites could not be set")
    want = suites.split(":")
    got = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"]
    if got != want:
        raise TLSSetupError(f"TLS 1.3 cipher suites: self-check failed ({got})")


# Session-ticket keys: the same in every worker, so a client resumes on whichever worker
# its next connection lands (SO_REUSEPORT spreads them; MinIO resumes, docs/compat/minio.md).
# OpenSSL makes random keys per SSL_CTX, i.e. per worker and per TLS refresh: a ticket
# from one worker then fails on the others and costs a full handshake. The secret is
# made when this module is imported — in the master, before the workers are forked —
# and lives in memory only; the keys derived from it change every day (a context is
# rebuilt at least every 15 minutes), after which older tickets mean a full handshake.
_TICKET_SECRET = secrets.token_bytes(32)
TICKET_KEY_PERIOD = 24 * 3600
_SSL_CTRL_GET_TLSEXT_TICKET_KEYS = 58
_SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59
_TICKET_KEYS_SIZE = 80  # key name 16 + HMAC secret 32 + AES key 32 (OpenSSL ≥ 1.1)


def ticket_keys(now: float | None = None) -> bytes:
    """This period's 80 bytes of ticket keys, derived from the process-tree secret."""
    period = int((time.time() if now is None else now) // TICKET_KEY_PERIOD)
    blocks = (
        hmac.digest(_TICKET_SECRET, b"pykes session ticket keys %d %d" % (period, i), "sha256")
        for i in range(3)
    )
    return b"".join(blocks)[:_TICKET_KEYS_SIZE]


def share_ticket_keys(context: ssl.SSLContext, keys: bytes | None = None) -> None:
    """Give ``context`` the ticket keys every worker uses (``ssl`` has no API for them),
    checked by reading them back."""
    keys = ticket_keys() if keys is None else keys
    lib = _libssl()
    ptr = _ssl_ctx_pointer(context)
    if not ptr or lib.get_options(ptr) != int(context.options):
        raise TLSSetupError("session ticket keys: SSL_CTX pointer self-check failed")
    buf = ctypes.create_string_buffer(keys, _TICKET_KEYS_SIZE)
    if lib.ctrl(ptr, _SSL_CTRL_SET_TLSEXT_TICKET_KEYS, _TICKET_KEYS_SIZE, buf) != 1:
        raise TLSSetupError("session ticket keys could not be set")
    back = ctypes.create_string_buffer(_TICKET_KEYS_SIZE)
    got = lib.ctrl(ptr, _SSL_CTRL_GET_TLSEXT_TICKET_KEYS, _TICKET_KEYS_SIZE, back)
    same = got == 1 and hmac.compare_digest(back.raw, keys)
    ctypes.memset(back, 0, _TICKET_KEYS_SIZE)
    ctypes.memset(buf, 0, _TICKET_KEYS_SIZE)
    if not same:
        raise TLSSetupError("session ticket keys: self-check failed")


def send_tickets_only_to_resuming_clients(context: ssl.SSLContext) -> None:
    """Install the ClientHello callback that sends no TLS 1.3 ticket to a client that
    did not offer psk_dhe_ke (see ``_PSK_DHE_KE``), after the pointer self-check."""
    lib = _libssl()
    ptr = _ssl_ctx_pointer(context)
    if not ptr or lib.get_options(ptr) != int(context.options):
        raise TLSSetupError("session tickets: SSL_CTX pointer self-check failed")
    lib.set_client_hello_cb(ptr, _tickets_only_for_resuming_clients, None)


def accept_any_client_certificate(context: ssl.SSLContext) -> None:
    """Install the accept-all verification callback on ``context`` after a self-check."""
    lib = _libssl()
    ptr = _ssl_ctx_pointer(context)
    if not ptr:
        raise TLSSetupError("client-certificate hook: SSL_CTX pointer not found")
    # Self-check: the verify mode and options read through libssl must equal what the
    # ssl module reports for this context; otherwise the pointer or library is wrong.
    want_mode = {
        ssl.CERT_NONE: 0,
        ssl.CERT_OPTIONAL: _SSL_VERIFY_PEER,
        ssl.CERT_REQUIRED: _SSL_VERIFY_PEER | _SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
    }[context.verify_mode]
    if lib.get_verify_mode(ptr) != want_mode or lib.get_options(ptr) != int(context.options):
        raise TLSSetupError(
            "client-certificate hook: self-check failed (SSL_CTX layout or libssl mismatch)"
        )
    lib.set_cert_verify_callback(ptr, _accept_any_certificate, None)


@dataclass(frozen=True, slots=True)
class TLSSettings:
    cert_file: str
    key_file: str
    password: str = ""
    auth: str = ""  # "", "off" or "on"
    ca: str = ""
    optional_client_cert: bool = False  # some route has skip_auth


def _check_certificate_file(cert_file: str) -> None:
    """The certificate file's own checks; every error names the file (Go's texts
    name none, except ``open <file>: …``)."""
    try:
        data = Path(cert_file).read_bytes()
    except OSError as err:
        raise TLSSetupError(
            f"failed to read TLS certificate: {go_os_error(cert_file, err)}"
        ) from None
    blocks = _pem_block_types(data)
    if not blocks:
        raise TLSSetupError(f"failed to read TLS certificate: {cert_file}: no certificate found")
    if any(kind != "CERTIFICATE" for kind in blocks):
        raise TLSSetupError(
            f"failed to read TLS certificate: {cert_file}: https: unsupported PEM data block"
        )
    try:
        leaf = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise TLSSetupError(
            f"failed to read TLS certificate: {cert_file}: invalid certificate"
        ) from None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        has_name = bool(
            san.get_values_for_type(x509.DNSName) or san.get_values_for_type(x509.IPAddress)
        )
    except x509.ExtensionNotFound:
        has_name = False
    if not has_name:
        raise TLSSetupError(
            f"invalid TLS certificate: {cert_file}: "
            "certificate does not contain any DNS or IP address as SAN"
        )


def _check_key_file(key_file: str) -> None:
    """Readable at all? (``load_cert_chain`` says only "No such file or directory".)"""
    try:
        with open(key_file, "rb"):
            pass
    except OSError as err:
        raise TLSSetupError(
            f"failed to read TLS private key: {go_os_error(key_file, err)}"
        ) from None


def _pem_block_types(data: bytes) -> list[str]:
    kinds = []
    for line in data.splitlines():
        if line.startswith(b"-----BEGIN ") and line.rstrip().endswith(b"-----"):
            kinds.append(line.strip()[11:-5].decode("ascii", "replace"))
    return kinds


def _ca_files(ca: str) -> list[str]:
    p = Path(ca)
    if p.is_dir():
        return sorted(str(f) for f in p.iterdir() if f.is_file())
    return [ca]


def server_context(settings: TLSSettings) -> ssl.SSLContext:
    """Build the server ``SSLContext`` for the configured client-certificate mode."""
    _check_certificate_file(settings.cert_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: forward-secret AEAD suites only (TLS 1.3 suites are all AEAD). Every KES
    # client (Go's crypto/tls, MinIO, the SDKs) offers ECDHE with AES-GCM or ChaCha20.
    ctx.set_ciphers(TLS12_CIPHERS)
    set_tls13_ciphersuites(ctx)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.num_tickets = TLS13_SESSION_TICKETS
    share_ticket_keys(ctx)
    send_tickets_only_to_resuming_clients(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _check_key_file(settings.key_file)
    key_error = f"failed to read TLS private key: {settings.key_file}"
    try:
        ctx.load_cert_chain(
            settings.cert_file,
            settings.key_file,
            password=settings.password.encode() or _no_password,
        )
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            why = f"it does not match the certificate {settings.cert_file}"
        else:
            why = (err.reason or str(err)).lower().replace("_", " ")
        raise TLSSetupError(f"{key_error}: {why}") from None
    except OSError as err:
        raise TLSSetupError(f"{key_error}: {err.strerror or err}") from None
    except _PasswordRequired:
        raise TLSSetupError(
            f"{key_error}: https: private key is encrypted: password required"
        ) from None

    verify = settings.auth == "on"
    ctx.verify_mode = ssl.CERT_OPTIONAL if settings.optional_client_cert else ssl.CERT_REQUIRED
    if verify:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if settings.ca:
            path = settings.ca
            try:
                for path in _ca_files(settings.ca):
                    ctx.load_verify_locations(cafile=path)
            except ssl.SSLError as err:
                why = (err.reason or str(err)).lower().replace("_", " ")
                raise TLSSetupError(f"failed to read TLS CA certificates: {path}: {why}") from None
            except OSError as err:
                raise TLSSetupError(
                    f"failed to read TLS CA certificates: {go_os_error(path, err)}"
                ) from None
    else:
        # Empty CertificateRequest CA list (docs/compat/auth.md §6 recommendation): we never
        # call SSL_CTX_set_client_CA_list, so none is advertised.
        accept_any_client_certificate(ctx)
    return ctx


class _PasswordRequired(Exception):
    pass


def _no_password() -> bytes:
    raise _PasswordRequired


def libssl_available() -> bool:
    return os.path.exists(_libssl_path())
