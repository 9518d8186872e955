"""``kes tool identity new|of`` — the v0.x commands, kept as aliases (docs/compat/cli.md §13,
docs/compat/auth.md §8).

* ``kes tool identity new [--key ./private.key] [--cert ./public.crt] [--server]
  [--ip IP]… [--dns NAME]… [-t|--time 720h] [-f] [SUBJECT]`` → ``kes identity new``
  with these defaults (``--server`` is accepted: the certificates always carry the
  clientAuth and serverAuth EKUs). Ed25519 keys, also in FIPS builds.
* ``kes tool identity of [--hash SHA256|SHA384|SHA512] [<cert> | -]`` → the hex hash
  of the certificate's SubjectPublicKeyInfo (``-`` or nothing: read stdin).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence

from pykes.cli import identity
from pykes.cli.common import ArgumentParser, CLIError, check_arguments, dispatch, show_usage
from pykes.cli.output import is_terminal, write
from pykes.pki.identity import decode_pem_blocks, spki_of_certificate

USAGE = """Usage:
    kes tool identity new [options] [<subject>]
    kes tool identity of [--hash SHA256|SHA384|SHA512] [<certificate> | -]

Deprecated: use 'kes identity new' and 'kes identity of'.
"""

_HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}


def _new(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes tool identity new", usage_text=USAGE)
    p.add_argument("--key", default="./private.key")
    p.add_argument("--cert", default="./public.crt")
    p.add_argument("--server", action="store_true")
    p.add_argument("--ip", action="append", default=[])
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("-t", "--time", default="720h")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    forwarded = ["--key", args.key, "--cert", args.cert, "--expiry", args.time]
    forwarded += [f"--ip={ip}" for ip in args.ip] + [f"--dns={name}" for name in args.dns]
    if args.force:
        forwarded.append("--force")
    return identity.new([*forwarded, "--", *args.args])


def _of(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes tool identity of", usage_text=USAGE)
    p.add_argument("--hash", default="SHA256")
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    check_arguments(args.args, "kes tool identity of", most=1)
    digest = _HASHES.get(args.hash.upper())
    if digest is None:
        raise CLIError(f"invalid hash function '{args.hash}'. Use SHA256, SHA384 or SHA512")
    path = args.args[0] if args.args else "-"
    data = sys.stdin.buffer.read() if path == "-" else identity._read(path)
    for block in decode_pem_blocks(data):
        if block.type == "CERTIFICATE":
            try:
                spki = spki_of_certificate(block.der)
            except ValueError as err:
                raise CLIError(f"failed to parse certificate: {err}") from None
            value = digest(spki).hexdigest()
            write(f"{value}\n" if is_terminal() else value)
            return 0
    raise CLIError("failed to parse certificate: no PEM-encoded certificate")


def run(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "identity":
        if argv and argv[0] not in ("-h", "--help"):
            raise CLIError(f"{argv[0]!r} is not a tool command. See 'kes tool --help'")
        return show_usage(USAGE, asked=bool(argv))
    return dispatch("tool identity", argv[1:], {"new": _new, "of": _of}, USAGE)
