"""Opt-in TLS on pyOpenSSL (``PYKES_TLS=openssl``): the OpenSSL that ``cryptography``
bundles, driven over memory BIOs on a plain TCP transport.

The system OpenSSL behind stdlib ``ssl`` is 3.0, whose full handshakes cost far more
CPU than those of the newer release in ``cryptography``'s wheels: the trivial bench
server does ~1.6x the new connections per CPU-second on it (``bench/tls_ab.py``,
``bench/tls_handshake_cpu.py``). This module gives a :class:`~pykes.server.connection.Connection`
what the stdlib path gives it — the peer certificate (DER) and the ALPN result through
``get_extra_info("ssl_object")``, ``write``/``close``/``abort``, pause/resume in both
directions — plus the handshake timeout and Go-style handshake error logging.

Scope of the prototype: the modes that accept any client certificate (``tls.auth``
off, the KES default); ``tls.auth: on`` keeps the stdlib path. The key-exchange
groups are OpenSSL's defaults (X25519MLKEM768 first, as Go's crypto/tls; X25519 only
would save ~11 % of a new connection's instructions). OpenSSL's default two stateless
session tickets are kept: neither pyOpenSSL nor cryptography's bindings expose
SSL_CTX_set_num_tickets. They cost ~0.55 M instructions (10 %) per new connection; one,
as Go and the stdlib path, would save about half of that.

Measured (bench/tls_callgrind.py, server instructions per request, 1 worker): a new
TLS connection per request 7.14 M (stdlib, one ticket) → 5.40 M (of which 4.95 M in
SSL_do_handshake; the trivial pyOpenSSL server of bench/baseline_pyopenssl.py: 5.35 M);
keep-alive HTTP/1.1 and HTTP/2 at 64 streams unchanged (±3 %). Needs pyOpenSSL (not a
dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL

from pykes.server.acceptor import LINGER_SECONDS, PLAIN_HTTP_ANSWER, PLAIN_HTTP_REASON
from pykes.server.tls import TLS12_CIPHERS, TLS13_CIPHERSUITES, TLSSettings

if TYPE_CHECKING:
    from pykes.observe.logs import Logs

ENV_VAR = "PYKES_TLS"

# The per-record paths (SSL_read, SSL_write, BIO_read) call libssl through
# cryptography's bindings — the ones pyOpenSSL itself uses — on the SSL object and
# memory BIOs of the pyOpenSSL connection: pyOpenSSL's wrappers raise an exception for
# every "no more data" and check its callback helpers on every call. With them, and
# one data_received per TLS record, an HTTP/2 request cost ~50 % more instructions
# than on the stdlib path (callgrind); without, the same.
_lib: Any = Binding.lib
_ffi: Any = Binding.ffi
_BUF_SIZE = 65536
_buf = _ffi.new("char[]", _BUF_SIZE)  # one loop per process: a shared scratch buffer
_TLS1_3 = SSL.TLS1_3_VERSION
_WANT_READ = _lib.SSL_ERROR_WANT_READ
_ZERO_RETURN = _lib.SSL_ERROR_ZERO_RETURN


def openssl_requested() -> bool:
    """``PYKES_TLS=openssl`` in the environment."""
    return os.environ.get(ENV_VAR, "").strip().lower() == "openssl"


_ALPN_OK = _lib.SSL_TLSEXT_ERR_OK
_ALPN_NOACK = _lib.SSL_TLSEXT_ERR_NOACK
_ALPN_PREFERENCE = (b"h2", b"http/1.1")


def select_alpn(offered: bytes) -> tuple[int, int] | None:
    """(offset, length) in the ClientHello's ALPN list (length-prefixed names) of the
    protocol we pick — server preference, as SSL_select_next_proto with
    ["h2", "http/1.1"] — or None without overlap (then no ALPN, as before)."""
    for proto in _ALPN_PREFERENCE:
        i = 0
        end = len(offered)
        while i < end:
            n = offered[i]
            if n == len(proto) and offered[i + 1 : i + 1 + n] == proto:
                return i + 1, n
            i += 1 + n
    return None


# The context's callbacks are raw cffi callbacks, not pyOpenSSL's wrappers: those find
# the pyOpenSSL Connection of the SSL * in a WeakValueDictionary, wrap the certificate
# in an X509 object per call and parse the ALPN list into a Python list — per
# connection, for callbacks that accept everything and pick from two names.
@_ffi.callback(
    "int (*)(SSL *, const unsigned char **, unsigned char *, const unsigned char *,"
    " unsigned int, void *)",
    error=_lib.SSL_TLSEXT_ERR_ALERT_FATAL,
)
def _alpn_callback(_ssl: Any, out: Any, outlen: Any, in_: Any, inlen: int, _arg: Any) -> int:
    picked = select_alpn(_ffi.buffer(in_, inlen)[:])
    if picked is None:
        return _ALPN_NOACK
    out[0] = in_ + picked[0]  # OpenSSL copies the selected name out of the list
    outlen[0] = picked[1]
    return _ALPN_OK


@_ffi.callback("int (*)(int, X509_STORE_CTX *)", error=0)
def _accept_any(_ok: int, _store: Any) -> int:
    # As Go's RequireAnyClientCert: the chain is not verified (proof of possession
    # is still checked by TLS itself); authorization is by the certificate's SPKI.
    return 1


def openssl_server_context(settings: TLSSettings) -> SSL.Context | None:
    """The pyOpenSSL context for ``settings``, or None where this path does not apply
    (``tls.auth: on``). Call after :func:`pykes.server.tls.server_context` succeeded:
    it has already validated the files and reported their errors Go-style."""
    if settings.auth == "on":
        return None
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(TLS12_CIPHERS.encode())
    ctx.set_tls13_ciphersuites(TLS13_CIPHERSUITES.encode())  # Go's order (see tls.py)
    # No renegotiation (Go's server has none either): after the handshake, reading
    # never has to answer (see OpenSSLProtocol.data_received).
    ctx.set_options(
        SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_RENEGOTIATION
    )
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    if settings.password:
        password = settings.password.encode()
        ctx.set_passwd_cb(lambda *_: password)
    ctx.use_certificate_chain_file(settings.cert_file)
    ctx.use_privatekey_file(settings.key_file)
    ctx.check_privatekey()
    mode = SSL.VERIFY_PEER
    if not settings.optional_client_cert:
        mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    _lib.SSL_CTX_set_verify(ctx._context, mode, _accept_any)  # noqa: SLF001
    # Resumed sessions keep their client certificate; OpenSSL refuses to resume a
    # session with a client certificate without a session id context.
    ctx.set_session_id(b"pykes")
    _lib.SSL_CTX_set_alpn_select_cb(ctx._context, _alpn_callback, _ffi.NULL)  # noqa: SLF001
    return ctx


def handshake_error_reason(err: BaseException) -> str:
    """The OpenSSL reason of a pyOpenSSL error, lower case (as the stdlib path logs)."""
    if isinstance(err, SSL.SysCallError):
        return "EOF"
    if isinstance(err, SSL.Error) and err.args and isinstance(err.args[0], list) and err.args[0]:
        reason = err.args[0][-1]
        if isinstance(reason, tuple) and reason:
            return str(reason[-1]).lower().replace("_", " ")
    return str(err) or "EOF"


def _peer_certificate_der(ssl: Any) -> bytes | None:
    """The client certificate (DER) of a finished handshake, or None — what pyOpenSSL's
    get_peer_certificate + dump_certificate give, without their wrapper objects."""
    x509 = _lib.SSL_get_peer_certificate(ssl)  # a new reference
    if x509 == _ffi.NULL:
        return None
    bio = _lib.BIO_new(_lib.BIO_s_mem())
    try:
        if bio == _ffi.NULL or _lib.i2d_X509_bio(bio, x509) != 1:
            raise MemoryError("cannot encode the peer certificate")
        data = _ffi.new("char **")
        size = _lib.BIO_get_mem_data(bio, data)
        return _ffi.buffer(data[0], size)[:]
    finally:
        if bio != _ffi.NULL:
            _lib.BIO_free(bio)
        _lib.X509_free(x509)


def _selected_alpn(ssl: Any) -> str | None:
    data = _ffi.new("unsigned char **")
    size = _ffi.new("unsigned int *")
    _lib.SSL_get0_alpn_selected(ssl, data, size)
    if not size[0]:
        return None
    return _ffi.buffer(data[0], size[0])[:].decode("ascii")


class _SSLObjectView:
    """What ``Connection`` reads through ``get_extra_info("ssl_object")``."""

    __slots__ = ("_alpn", "_der")

    def __init__(self, der: bytes | None, alpn: str | None) -> None:
        self._der = der
        self._alpn = alpn

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        if not binary_form:
            raise NotImplementedError("only the DER form is available")
        return self._der

    def selected_alpn_protocol(self) -> str | None:
        return self._alpn


class OpenSSLTransport(asyncio.Transport):
    """The application's view of one TLS connection (plaintext in and out)."""

    def __init__(self, tls: OpenSSLProtocol) -> None:
        super().__init__()
        self._tls = tls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._tls.ssl_view
        return self._tls.raw.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tls.write_app(data)

    def writelines(self, list_of_data: Any) -> None:
        self._tls.write_app(b"".join(list_of_data))

    def write_and_close(self, data: bytes | bytearray | memoryview) -> None:
        """``write`` then ``close``, with the data and the close_notify in one write
        system call (HTTP/1.1's last response on a ``Connection: close`` exchange)."""
        self._tls.write_app(data, flush=False)
        self._tls.close()

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        self._tls.close()

    def abort(self) -> None:
        self._tls.abort()

    def is_closing(self) -> bool:
        return self._tls.closing or self._tls.raw.is_closing()

    def pause_reading(self) -> None:
        self._tls.pause_app_reading()

    def resume_reading(self) -> None:
        self._tls.resume_app_reading()

    def is_reading(self) -> bool:
        return self._tls.app_reading

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._tls.raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._tls.raw.get_write_buffer_size()


class OpenSSLProtocol(asyncio.Protocol):
    """The raw TCP side: TLS over memory BIOs, then the application protocol."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        app: asyncio.Protocol,
        context: SSL.Context,
        on_handshake_error: Callable[[Any, str], None],
        handshake_timeout: float,
    ) -> None:
        self.loop = loop
        self.app = app
        self.context = context
        self.on_handshake_error = on_handshake_error
        self.handshake_timeout = handshake_timeout
        self.raw: asyncio.Transport = None  # type: ignore[assignment]
        self.tls: SSL.Connection | None = None
        self._ssl: Any = None  # its SSL *, read BIO and write BIO
        self._in_bio: Any = None
        self._out_bio: Any = None
        self.ssl_view: _SSLObjectView | None = None
        self.peer: Any = None
        self.handshaken = False
        self.closing = False
        self.app_reading = True
        self._app_transport: OpenSSLTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failed = False

    # ------------------------------------------------------------ raw side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        tls = SSL.Connection(self.context, None)
        tls.set_accept_state()
        self.tls = tls
        self._ssl = tls._ssl  # noqa: SLF001
        self._in_bio = tls._into_ssl  # noqa: SLF001
        self._out_bio = tls._from_ssl  # noqa: SLF001
        self._timer = self.loop.call_later(self.handshake_timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        tls = self.tls
        if tls is None or self._failed:
            return
        _lib.BIO_write(self._in_bio, data, len(data))
        if not self.handshaken:
            # SSL_do_handshake directly: pyOpenSSL's do_handshake raises (and builds) a
            # WantReadError for every flight still to come.
            ssl = self._ssl
            _lib.ERR_clear_error()  # see _read_app
            result = _lib.SSL_do_handshake(ssl)
            if result != 1:
                if _lib.SSL_get_error(ssl, result) == _WANT_READ:
                    self._flush()
                    return
                try:  # pyOpenSSL's exception for the failure, for the log line
                    tls._raise_ssl_error(ssl, result)  # noqa: SLF001
                    reason = "EOF"
                except SSL.Error as err:
                    reason = handshake_error_reason(err)
                self._flush()  # the alert
                if reason == "http request":  # plain HTTP: Go's answer, as acceptor.py
                    self.raw.write(PLAIN_HTTP_ANSWER)
                    reason = PLAIN_HTTP_REASON
                self._fail(reason, answered=True)
                return
            if _lib.SSL_version(ssl) != _TLS1_3:
                self._flush()  # TLS 1.2: our Finished, which the client waits for
            self._handshake_complete()
            if self.raw.is_closing():
                return
        # No flush here: the TLS 1.3 session tickets made when the handshake completed
        # leave with the first response (or the close_notify), one write system call
        # fewer per connection; clients do not wait for them. Reading produces no
        # other output: renegotiation is off, and a KeyUpdate answer may wait too.
        if self.app_reading:
            self._read_app()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.closing = True
        if self.handshaken:
            self.app.connection_lost(exc)
        elif not self._failed:
            self._failed = True
            self.on_handshake_error(self.peer, "EOF")
        self.tls = self._ssl = self._in_bio = self._out_bio = None

    def pause_writing(self) -> None:
        if self.handshaken:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.handshaken:
            self.app.resume_writing()

    # ------------------------------------------------------------ handshake
    def _handshake_complete(self) -> None:
        self._cancel_timer()
        self.handshaken = True
        ssl = self._ssl
        self.ssl_view = _SSLObjectView(_peer_certificate_der(ssl), _selected_alpn(ssl))
        self._app_transport = OpenSSLTransport(self)
        self.app.connection_made(self._app_transport)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if not self.handshaken and not self._failed:
            self._fail("handshake timeout")
            self.raw.abort()

    def _fail(self, reason: str, answered: bool = False) -> None:
        self._failed = True
        self._cancel_timer()
        self.on_handshake_error(self.peer, reason)
        # After an answer (alert, plain-HTTP 400): half-close and drain until the client
        # closes (at most LINGER_SECONDS), so that it reads the answer before a RST for
        # its unread request (acceptor.py).
        if answered and self.raw.can_write_eof():
            self.raw.write_eof()
            self._timer = self.loop.call_later(LINGER_SECONDS, self.raw.close)
        else:
            self.raw.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------ plaintext in
    def _read_app(self) -> None:
        """Decrypt every complete record received and hand the plaintext to the
        application in one ``data_received`` (as uvloop's SSLProtocol does)."""
        if self.tls is None or not self.app_reading or self.closing:
            return
        ssl = self._ssl
        chunks = []
        # SSL_get_error reads the thread's error queue, shared with everything else
        # that uses this OpenSSL (cryptography): a stale entry would look like ours.
        _lib.ERR_clear_error()
        while True:
            n = _lib.SSL_read(ssl, _buf, _BUF_SIZE)
            if n > 0:
                chunks.append(_ffi.buffer(_buf, n)[:])
                continue
            err = _lib.SSL_get_error(ssl, n)
            break
        if err != _WANT_READ:
            _lib.ERR_clear_error()
        if chunks:
            self.app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if err == _WANT_READ:
            return
        if err == _ZERO_RETURN:  # the peer's close_notify
            self.close()
        else:
            self.abort()

    def pause_app_reading(self) -> None:
        if self.app_reading:
            self.app_reading = False
            if not self.raw.is_closing():
                self.raw.pause_reading()

    def resume_app_reading(self) -> None:
        if not self.app_reading:
            self.app_reading = True
            if not self.raw.is_closing():
                self.raw.resume_reading()
            self.loop.call_soon(self._resume_read)

    def _resume_read(self) -> None:
        # Plaintext already decrypted before the pause is still in the SSL object.
        if self.app_reading and self.handshaken and not self.closing:
            self._read_app()

    # ------------------------------------------------------------ ciphertext out
    def write_app(self, data: bytes | bytearray | memoryview, flush: bool = True) -> None:
        if self.closing or self.tls is None or not data:
            return
        # pyOpenSSL contexts enable partial writes: one record (16 KiB) per call.
        view = _ffi.from_buffer(data)
        size = len(view)
        done = 0
        _lib.ERR_clear_error()  # see _read_app
        while done < size:
            n = _lib.SSL_write(self._ssl, view + done, size - done)
            if n <= 0:
                _lib.ERR_clear_error()
                self.abort()
                return
            done += n
        # At once, with any session tickets still pending: the HTTP handlers already
        # write once per loop turn. (Deferring this flush to a call_soon merged a last
        # response with the close_notify — one write fewer per short connection — but
        # cost ~15 % more instructions per keep-alive HTTP/1.1 request, callgrind; a
        # known last response takes OpenSSLTransport.write_and_close instead.)
        if flush:
            self._flush()

    def _flush(self) -> None:
        if self.tls is None:
            return
        out = []
        while True:
            n = _lib.BIO_read(self._out_bio, _buf, _BUF_SIZE)
            if n <= 0:
                break
            out.append(_ffi.buffer(_buf, n)[:])
        if out and not self.raw.is_closing():
            self.raw.write(out[0] if len(out) == 1 else b"".join(out))

    # ------------------------------------------------------------ closing
    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        tls = self.tls
        if tls is not None and self.handshaken:
            with contextlib.suppress(SSL.Error):
                tls.shutdown()  # our close_notify, as Go's Conn.Close sends one
            self._flush()
        self.raw.close()

    def abort(self) -> None:
        self.closing = True
        self.raw.abort()


def openssl_protocol(
    app: asyncio.Protocol,
    context: SSL.Context,
    logs: Callable[[], Logs],
    handshake_timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> OpenSSLProtocol:
    """One connection's raw-side protocol (called by the acceptor's factory)."""

    def log_failure(peer: Any, reason: str) -> None:
        where = f"{peer[0]}:{peer[1]}" if peer else "<unknown>"
        logs().info(f"http: TLS handshake error from {where}: {reason}")

    return OpenSSLProtocol(loop, app, context, log_failure, handshake_timeout)
