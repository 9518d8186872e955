"""``kes key create|import|info|ls|rm|encrypt|decrypt|dek`` (docs/compat/cli.md §4)."""

from __future__ import annotations

import argparse
import base64
import binascii
from collections.abc import Callable, Iterable, Sequence

from pykes.cli.common import (
    ArgumentParser,
    CLIError,
    check_arguments,
    dispatch,
    flag_color,
    flag_enclave,
    flag_insecure,
    flag_json,
    go_quote,
)
from pykes.cli.connect import new_client, reported
from pykes.cli.output import clock, colorize, console, is_terminal, print_json, styled, write
from pykes.client import Client

USAGE = """Usage:
    kes key <command>

Commands:
    create                   Create a new crypto key.
    import                   Import a crypto key.
    info                     Get information about a crypto key.
    ls                       List crypto keys.
    rm                       Delete a crypto key.

    encrypt                  Encrypt a message.
    decrypt                  Decrypt an encrypted message.
    dek                      Generate a new data encryption key.

Options:
    -h, --help               Print command line options.
"""

_CONNECTION = """    -k, --insecure           Skip TLS certificate validation.
    -e, --enclave <name>     Accepted and ignored (enclaves no longer exist).
"""
_OUTPUT = """        --json               Print output in JSON format.
        --color <when>       Specify when to use colored output: auto, never, always.
"""
_HELP = """
    -h, --help               Print command line options.
"""
_RM_NOTES = """
Every worker of the server that answers the delete stops using the key at once.
Other servers on the same keystore (several nodes on one Vault, OpenBao or cloud KMS)
keep using a copy they cached until their cache drops it: at most cache.expiry.any
(default 5m), or cache.expiry.offline while they cannot reach the keystore. Data keys
they make in that time are sealed under the deleted key (docs/vault.md).
"""


def _parser(name: str, synopsis: str, *, output: bool = False, notes: str = "") -> ArgumentParser:
    text = f"Usage:\n    kes key {name} {synopsis}\n\nOptions:\n{_CONNECTION}"
    text += (_OUTPUT if output else "") + _HELP + notes
    p = ArgumentParser(prog=f"kes key {name}", usage_text=text)
    flag_insecure(p)
    flag_enclave(p)
    if output:
        flag_json(p)
        flag_color(p)
    p.add_argument("args", nargs="*")
    return p


def _b64(value: str, what: str, command: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CLIError(f"invalid {what}: {err}. See 'kes key {command} --help'") from None


def _print_base64(label: str, data: bytes) -> None:
    """``<label>: <base64>`` on a terminal, else ``{"<label>":"<base64>"}``, as the Go CLI."""
    text = base64.b64encode(data).decode()
    write(f"\n{label}: {text}\n" if is_terminal() else f'{{"{label}":"{text}"}}')


def _for_each_name(
    argv: Sequence[str],
    command: str,
    failure: str,
    op: Callable[[Client, str], None],
    notes: str = "",
) -> int:
    """``kes key create|rm <name>...``: one request per name, in order; the first
    failure aborts with ``<failure> "<name>": <error>``."""
    args = _parser(command, "[options] <name>...", notes=notes).parse(argv)
    if not args.args:
        raise CLIError(f"no key name specified. See 'kes key {command} --help'")
    with new_client(args.insecure) as client:
        for name in args.args:
            with reported(f"{failure} {go_quote(name)}: "):
                op(client, name)
    return 0


def create(argv: Sequence[str]) -> int:
    return _for_each_name(argv, "create", "failed to create key", Client.create_key)


def import_(argv: Sequence[str]) -> int:
    args = _parser("import", "[options] <name> <key>").parse(argv)
    check_arguments(args.args, "kes key import", ("key name", "crypto key"), most=2)
    name, text = args.args
    key = _b64(text, "key", "import")
    with new_client(args.insecure) as client, reported(f"failed to import {go_quote(name)}: "):
        client.import_key(name, key)  # always AES256, as the Go CLI
    return 0


def info(argv: Sequence[str]) -> int:
    args = _parser("info", "[options] <name>", output=True).parse(argv)
    check_arguments(args.args, "kes key info", ("key name",), most=1)
    with new_client(args.insecure) as client, reported("failed to describe keys: "):
        key = client.describe_key(args.args[0])
    if args.json:
        # Fix: the Go CLI omits "algorithm" for AES256 keys; KeyInfo.to_json keeps it.
        print_json(key.to_json())
        return 0
    write(
        f"{'Name':<11} {key.name}\n"
        f"{'Algorithm':<11} {key.algorithm}\n"
        f"{'Date':<11} {clock(key.created_at)}\n"
        f"{'Owner':<11} {key.created_by}\n"
    )
    return 0


def print_names(names: list[str], header: str, as_json: bool, color: bool) -> None:
    """A sorted name list: JSON array with ``--json``, else a header + one per line.

    Fix: the Go CLI prints the table *after* the JSON array too (docs/compat/cli.md §4).
    """
    if as_json:
        print_json(names)
        return
    if not names:
        return
    out = console(color)
    out.print(styled(header, "underline", color))
    write("".join(f"{name}\n" for name in names))


def list_names(
    args: argparse.Namespace,
    command: str,
    what: str,
    header: str,
    default_pattern: str,
    fetch: Callable[[Client, str], Iterable[str]],
) -> int:
    """The body of ``kes key|policy|identity ls``: at most one pattern argument, the
    names sorted, printed by :func:`print_names`."""
    check_arguments(args.args, f"kes {command} ls", most=1)
    pattern = args.args[0] if args.args else default_pattern
    with new_client(args.insecure) as client, reported(f"failed to list {what}: "):
        names = sorted(fetch(client, pattern))
    print_names(names, header, args.json, colorize(args.color))
    return 0


def ls(argv: Sequence[str]) -> int:
    args = _parser("ls", "[options] [<pattern>]", output=True).parse(argv)
    return list_names(args, "key", "keys", "Key", "*", Client.list_keys)


def rm(argv: Sequence[str]) -> int:
    return _for_each_name(argv, "rm", "failed to remove key", Client.delete_key, _RM_NOTES)


def encrypt(argv: Sequence[str]) -> int:
    args = _parser("encrypt", "[options] <name> <message>").parse(argv)
    check_arguments(args.args, "kes key encrypt", ("key name", "message"), most=2)
    name, message = args.args
    with new_client(args.insecure) as client, reported("failed to encrypt message: "):
        ciphertext = client.encrypt(name, message.encode())  # no context, as the Go CLI
    _print_base64("ciphertext", ciphertext)
    return 0


def decrypt(argv: Sequence[str]) -> int:
    args = _parser("decrypt", "[options] <name> <ciphertext> [<context>]").parse(argv)
    check_arguments(args.args, "kes key decrypt", ("key name", "ciphertext"), most=3)
    name = args.args[0]
    ciphertext = _b64(args.args[1], "ciphertext", "decrypt")
    context = _b64(args.args[2], "context", "decrypt") if len(args.args) == 3 else None
    with new_client(args.insecure) as client, reported("failed to decrypt ciphertext: "):
        plaintext = client.decrypt(name, ciphertext, context)
    _print_base64("plaintext", plaintext)
    return 0


def dek(argv: Sequence[str]) -> int:
    args = _parser("dek", "[options] <name> [<context>]").parse(argv)
    check_arguments(args.args, "kes key dek", ("key name",), most=2)
    name = args.args[0]
    context = _b64(args.args[1], "context", "dek") if len(args.args) == 2 else None
    with new_client(args.insecure) as client, reported("failed to derive key: "):
        key = client.generate_key(name, context)
    plaintext = base64.b64encode(key.plaintext).decode()
    ciphertext = base64.b64encode(key.ciphertext).decode()
    if is_terminal():
        write(f"\nplaintext:  {plaintext}\nciphertext: {ciphertext}\n")
    else:
        write(f'{{"plaintext":"{plaintext}","ciphertext":"{ciphertext}"}}')
    return 0


COMMANDS = {
    "create": create,
    "import": import_,
    "info": info,
    "ls": ls,
    "rm": rm,
    "encrypt": encrypt,
    "decrypt": decrypt,
    "dek": dek,
}


def run(argv: Sequence[str]) -> int:
    return dispatch("key", argv, COMMANDS, USAGE)
