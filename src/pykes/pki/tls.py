"""Client TLS contexts for the services pykes calls (Vault/OpenBao, vendor key managers):
trust anchors from a CA file or a directory of them, and an optional client certificate."""

from __future__ import annotations

import os
import ssl


def tls_context(
    ca: str = "", cert: str = "", key: str = "", *, prefix: str = "vault"
) -> ssl.SSLContext:
    """A client TLS context: ``ca`` (a PEM file or a directory of PEM files) replaces
    the system roots when set; ``cert``/``key`` enable mTLS. Errors are ``ValueError``s
    starting with ``prefix``."""
    if not ca:
        ctx = ssl.create_default_context()
    elif os.path.isdir(ca):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        loaded = 0
        for entry in sorted(os.listdir(ca)):
            file = os.path.join(ca, entry)
            if not os.path.isfile(file):
                continue
            try:
                ctx.load_verify_locations(cafile=file)
            except ssl.SSLError as err:
                raise ValueError(f"{prefix}: invalid CA certificate '{file}': {err}") from None
            loaded += 1
        if loaded == 0:
            raise ValueError(f"{prefix}: no CA certificates found in '{ca}'")
    else:
        try:
            ctx = ssl.create_default_context(cafile=ca)
        except FileNotFoundError:
            raise ValueError(
                f"{prefix}: failed to open '{ca}': no such file or directory"
            ) from None
        except ssl.SSLError as err:
            raise ValueError(f"{prefix}: invalid CA certificate '{ca}': {err}") from None
    if cert or key:
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"{prefix}: failed to load TLS client certificate: {err}") from None
    return ctx
