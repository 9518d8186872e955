"""The older ``kes server`` flags (docs/compat/cli.md §13, config.md §7), still honoured.

v0.x servers were started with ``--root <identity>``, ``--key``/``--cert`` (TLS),
``--auth on|off`` (v0.17) or ``--mtls-auth verify|ignore`` (v0.1–v0.4) and ``--mlock``.
Each one prints a deprecation line naming its v1 equivalent and then takes effect:

* ``--root``, ``--key``, ``--cert``, ``--auth``/``--mtls-auth`` **override** the config
  file's ``admin.identity``, ``tls.key``, ``tls.cert``, ``tls.auth`` (as the v0.x flags
  did: "This flag takes precedence over the config file"), so the file may leave them
  out. The overrides are re-applied on every SIGHUP reload and TLS refresh.
* ``--root=_`` or ``--root=disabled`` disables the admin identity.
* ``--mlock``: memory is locked by default wherever permitted; the flag only makes the
  deprecation line say so.
"""

from __future__ import annotations

import argparse
import re
import sys

from pykes.cli.common import CLIError

_IDENTITY = re.compile(r"[0-9a-f]{64}")
_AUTH_VALUES = {"on": "on", "off": "off"}
_MTLS_AUTH_VALUES = {"verify": "on", "ignore": "off"}

DEPRECATION = {
    "root": "Specify the admin identity in the config file (admin.identity)",
    "key": "Specify the TLS private key in the config file (tls.key)",
    "cert": "Specify the TLS certificate in the config file (tls.cert)",
    "auth": "Specify the client certificate verification in the config file (tls.auth)",
    "mtls_auth": "Specify the client certificate verification in the config file (tls.auth)",
    "mlock": "Memory is locked by default wherever permitted (CAP_IPC_LOCK)",
}


def add_flags(p: argparse.ArgumentParser) -> None:
    """Register the older flags (hidden from the usage text)."""
    for name in ("--root", "--key", "--cert", "--auth", "--mtls-auth"):
        p.add_argument(name, default=None, help=argparse.SUPPRESS)
    p.add_argument("--mlock", action="store_true", help=argparse.SUPPRESS)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _invalid(value: str, dest: str, why: str) -> CLIError:
    return CLIError(
        f'invalid argument "{value}" for "{_flag(dest)}" flag: {why}. See \'kes server --help\''
    )


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """Validate the older flags and return the config overrides they stand for
    (``{"admin.identity": …, "tls.key": …, "tls.cert": …, "tls.auth": …}``)."""
    out: dict[str, str] = {}
    if args.root is not None:
        if args.root in ("_", "disabled"):
            out["admin.identity"] = "disabled"
        elif _IDENTITY.fullmatch(args.root):
            out["admin.identity"] = args.root
        else:
            raise _invalid(
                args.root,
                "root",
                "must be an identity (64 lower-case hex characters), '_' or 'disabled'",
            )
    for dest in ("key", "cert"):
        value = getattr(args, dest)
        if value is not None:
            if not value:
                raise _invalid(value, dest, "no file specified")
            out[f"tls.{dest}"] = value
    if args.auth is not None and args.mtls_auth is not None:
        raise CLIError(
            "'--auth' and '--mtls-auth' cannot be used at the same time. See 'kes server --help'"
        )
    for dest, values in (("auth", _AUTH_VALUES), ("mtls_auth", _MTLS_AUTH_VALUES)):
        value = getattr(args, dest)
        if value is not None:
            if value.lower() not in values:
                one, other = values
                raise _invalid(value, dest, f"must be '{one}' or '{other}'")
            out["tls.auth"] = values[value.lower()]
    return out


def given(args: argparse.Namespace) -> list[str]:
    """The older flags on this command line, as their ``dest`` names."""
    return [
        dest
        for dest in DEPRECATION
        if (args.mlock if dest == "mlock" else getattr(args, dest) is not None)
    ]


def warn_deprecated(args: argparse.Namespace) -> None:
    """One ``WARNING:`` line per older flag on stderr, naming the v1 equivalent."""
    for dest in given(args):
        print(
            f"WARNING: '{_flag(dest)}' flag is deprecated. {DEPRECATION[dest]}",
            file=sys.stderr,
        )


__all__ = ["add_flags", "given", "overrides", "warn_deprecated"]
