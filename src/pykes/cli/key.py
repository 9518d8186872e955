"""``kes key create|import|info|ls|rm|rotate|encrypt|decrypt|dek`` (docs/compat/cli.md §4;
``rotate`` and key versions are pykes extensions, docs/client.md)."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence

from pykes.cli.common import (
    ENCLAVE_HELP,
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
from pykes.cli.output import (
    clock,
    colorize,
    console,
    is_terminal,
    print_json,
    print_rows,
    styled,
    write,
)
from pykes.client import Client, KeyInfo

USAGE = """Usage:
    kes key <command>

Commands:
    create                   Create a new crypto key.
    import                   Import a crypto key.
    info                     Get information about a crypto key.
    ls                       List crypto keys.
    rm                       Delete a crypto key.
    rotate                   Add a new version to a crypto key.

    encrypt                  Encrypt a message.
    decrypt                  Decrypt an encrypted message.
    dek                      Generate a new data encryption key.

Options:
    -h, --help               Print command line options.
"""

_CONNECTION = "    -k, --insecure           Skip TLS certificate validation.\n" + ENCLAVE_HELP
_OUTPUT = """        --json               Print output in JSON format.
        --color <when>       Specify when to use colored output: auto, never, always.
"""
_VERSION = """        --version <n>        Decrypt with version <n> of the key
                             (default: the version that encrypted it).
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


_ROTATE_NOTES = """
Prints the number of each key's new version. Data keys and ciphertexts made from now on
use it; everything made with an older version still decrypts. A pykes extension of
stateful servers, which keep a key's versions.
"""


def _parser(
    name: str, synopsis: str, *, output: bool = False, version: bool = False, notes: str = ""
) -> ArgumentParser:
    text = f"Usage:\n    kes key {name} {synopsis}\n\nOptions:\n{_CONNECTION}"
    text += (_OUTPUT if output else "") + (_VERSION if version else "") + _HELP + notes
    p = ArgumentParser(prog=f"kes key {name}", usage_text=text)
    flag_insecure(p)
    flag_enclave(p)
    if output:
        flag_json(p)
        flag_color(p)
    if version:
        p.add_argument("--version", default="")
    p.add_argument("args", nargs="*")
    return p


def _b64(value: str, what: str, command: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CLIError(f"invalid {what}: {err}. See 'kes key {command} --help'") from None


def _print_fields(fields: dict[str, str]) -> None:
    """``<label>: <value>`` lines (values aligned) on a terminal, else one JSON object
    without a newline, as the Go CLI prints a ciphertext, a plaintext or a data key."""
    if is_terminal():
        width = max(map(len, fields)) + 1
        write(
            "\n" + "".join(f"{label + ':':<{width}} {value}\n" for label, value in fields.items())
        )
    else:
        write(json.dumps(fields, separators=(",", ":")))


def _b64text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _with_version(fields: dict[str, str], version: str) -> dict[str, str]:
    """``fields`` and the key version that made them, if the server names one (a
    stateless server never does: the Go CLI's output stays as it was)."""
    return {**fields, "version": version} if version else fields


def for_each_name(
    args: argparse.Namespace,
    group: str,
    command: str,
    failure: str,
    op: Callable[[Client, str], object],
    show: Callable[[str, object], None] | None = None,
) -> int:
    """``kes <group> <command> <name>...`` (key create|rm|rotate, enclave create|rm): one
    request per name, in order, each result passed to ``show``; the first failure
    aborts with ``<failure> "<name>": <error>``."""
    if not args.args:
        raise CLIError(f"no {group} name specified. See 'kes {group} {command} --help'")
    with new_client(args.insecure, enclave=args.enclave) as client:
        for name in args.args:
            with reported(f"{failure} {go_quote(name)}: "):
                result = op(client, name)
            if show is not None:
                show(name, result)
    return 0


def _for_each_key(
    argv: Sequence[str],
    command: str,
    failure: str,
    op: Callable[[Client, str], object],
    notes: str = "",
    show: Callable[[str, object], None] | None = None,
) -> int:
    args = _parser(command, "[options] <name>...", notes=notes).parse(argv)
    return for_each_name(args, "key", command, failure, op, show)


def create(argv: Sequence[str]) -> int:
    return _for_each_key(argv, "create", "failed to create key", Client.create_key)


def import_(argv: Sequence[str]) -> int:
    args = _parser("import", "[options] <name> <key>").parse(argv)
    check_arguments(args.args, "kes key import", ("key name", "crypto key"), most=2)
    name, text = args.args
    key = _b64(text, "key", "import")
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported(f"failed to import {go_quote(name)}: "),
    ):
        client.import_key(name, key)  # always AES256, as the Go CLI
    return 0


def info(argv: Sequence[str]) -> int:
    args = _parser("info", "[options] <name>", output=True).parse(argv)
    check_arguments(args.args, "kes key info", ("key name",), most=1)
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported("failed to describe keys: "),
    ):
        key = client.describe_key(args.args[0])
    if args.json:
        # Fix: the Go CLI omits "algorithm" for AES256 keys; KeyInfo.to_json keeps it.
        print_json(key.to_json())
        return 0
    print_rows(
        [
            ("Name", key.name),
            ("Algorithm", str(key.algorithm)),
            ("Date", clock(key.created_at)),
            ("Owner", key.created_by),
            *_version_rows(key),
        ]
    )
    return 0


def _version_rows(key: KeyInfo) -> list[tuple[str, str]]:
    """The versions of a key, if the server keeps them (stateful pykes)."""
    if not key.version:
        return []
    return [
        ("Version", key.version),
        ("Versions", " ".join(key.versions)),
        ("Decrypts", f"versions {key.min_version} and later" if key.min_version else "all"),
    ]


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
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported(f"failed to list {what}: "),
    ):
        names = sorted(fetch(client, pattern))
    print_names(names, header, args.json, colorize(args.color))
    return 0


def ls(argv: Sequence[str]) -> int:
    args = _parser("ls", "[options] [<pattern>]", output=True).parse(argv)
    return list_names(args, "key", "keys", "Key", "*", Client.list_keys)


def rm(argv: Sequence[str]) -> int:
    return _for_each_key(argv, "rm", "failed to remove key", Client.delete_key, _RM_NOTES)


def _show_rotation(name: str, version: object) -> None:
    if is_terminal():
        write(f"Rotated {name} to version {version}\n")
    else:
        write(json.dumps({"name": name, "version": version}, separators=(",", ":")) + "\n")


def rotate(argv: Sequence[str]) -> int:
    return _for_each_key(
        argv, "rotate", "failed to rotate key", Client.rotate_key, _ROTATE_NOTES, _show_rotation
    )


def encrypt(argv: Sequence[str]) -> int:
    args = _parser("encrypt", "[options] <name> <message>").parse(argv)
    check_arguments(args.args, "kes key encrypt", ("key name", "message"), most=2)
    name, message = args.args
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported("failed to encrypt message: "),
    ):
        ciphertext = client.encrypt(name, message.encode())  # no context, as the Go CLI
    _print_fields(_with_version({"ciphertext": _b64text(ciphertext)}, ciphertext.version))
    return 0


def decrypt(argv: Sequence[str]) -> int:
    args = _parser("decrypt", "[options] <name> <ciphertext> [<context>]", version=True).parse(argv)
    check_arguments(args.args, "kes key decrypt", ("key name", "ciphertext"), most=3)
    name = args.args[0]
    ciphertext = _b64(args.args[1], "ciphertext", "decrypt")
    context = _b64(args.args[2], "context", "decrypt") if len(args.args) == 3 else None
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported("failed to decrypt ciphertext: "),
    ):
        plaintext = client.decrypt(name, ciphertext, context, args.version)
    _print_fields({"plaintext": _b64text(plaintext)})
    return 0


def dek(argv: Sequence[str]) -> int:
    args = _parser("dek", "[options] <name> [<context>]").parse(argv)
    check_arguments(args.args, "kes key dek", ("key name",), most=2)
    name = args.args[0]
    context = _b64(args.args[1], "context", "dek") if len(args.args) == 2 else None
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported("failed to derive key: "),
    ):
        key = client.generate_key(name, context)
    fields = {"plaintext": _b64text(key.plaintext), "ciphertext": _b64text(key.ciphertext)}
    _print_fields(_with_version(fields, key.version))
    return 0


COMMANDS = {
    "create": create,
    "import": import_,
    "info": info,
    "ls": ls,
    "rm": rm,
    "rotate": rotate,
    "encrypt": encrypt,
    "decrypt": decrypt,
    "dek": dek,
}


def run(argv: Sequence[str]) -> int:
    return dispatch("key", argv, COMMANDS, USAGE)
