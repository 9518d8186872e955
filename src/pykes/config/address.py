"""The listen address: ``[host]:port`` checked like the Go server does
(docs/compat/config.md §2 ``address``), with Go's error texts."""

from __future__ import annotations

import ipaddress

from pykes.errors import ConfigError


def split_address(address: str) -> tuple[str, int]:
    """Split ``[host]:port`` like Go's ``net.SplitHostPort`` and check host and port.

    The host must be empty or an IP literal (``'<host>' is not a valid IP address``);
    the port must be a decimal number 0–65535.
    """
    host, port = _split_host_port(address)
    if host:
        try:
            if "%" in host:  # Go's net.ParseIP accepts no IPv6 zone
                raise ValueError(host)
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"'{host}' is not a valid IP address") from None
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ConfigError(f"invalid address '{address}': invalid port '{port}'")
    return host, int(port)


def _split_host_port(hostport: str) -> tuple[str, str]:
    def fail(why: str) -> ConfigError:
        return ConfigError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise fail("too many colons in address")
            raise fail("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[j:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise fail("unexpected ']' in address")
    return host, hostport[i + 1 :]
