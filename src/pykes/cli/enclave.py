"""``kes enclave create|info|ls|rm``: the enclaves of a stateful server, for its admin
(the 2023 Go CLI's command, docs/compat/cli.md §13; ``ls`` is pykes')."""

from __future__ import annotations

from collections.abc import Sequence

from pykes.cli.common import (
    ArgumentParser,
    check_arguments,
    dispatch,
    flag_color,
    flag_insecure,
    flag_json,
    go_quote,
)
from pykes.cli.connect import new_client, reported
from pykes.cli.key import for_each_name, list_names
from pykes.cli.output import clock, print_json, print_rows
from pykes.client import Client

USAGE = """Usage:
    kes enclave <command>

Commands:
    create                   Create a new enclave.
    info                     Get information about an enclave.
    ls                       List enclaves.
    rm                       Delete an enclave.

Options:
    -h, --help               Print command line options.
"""

_INSECURE = "    -k, --insecure           Skip TLS certificate validation.\n"
_OUTPUT = """        --json               Print output in JSON format.
        --color <when>       Specify when to use colored output: auto, never, always.
"""
_FORCE = """    -f, --force              Also delete an enclave that holds keys, policies
                             or identities (they are deleted with it).
"""
_HELP = "\n    -h, --help               Print command line options.\n"
_NOTES = """
Enclaves are the isolated key spaces of a stateful server: keys, policies and identities
belong to one enclave. Only the server's admin identity manages them; the other commands
choose their enclave with -e <name> or $KES_ENCLAVE.
"""
_EXAMPLES = {
    "create": "    $ kes enclave create tenant-1\n",
    "info": "    $ kes enclave info tenant-1\n",
    "ls": "    $ kes enclave ls 'tenant-*'\n",
    "rm": "    $ kes enclave rm tenant-1\n    $ kes enclave rm --force tenant-2\n",
}


def _parser(
    name: str, synopsis: str, *, output: bool = False, force: bool = False
) -> ArgumentParser:
    text = f"Usage:\n    kes enclave {name} {synopsis}\n\nOptions:\n{_INSECURE}"
    text += (_OUTPUT if output else "") + (_FORCE if force else "") + _HELP
    text += f"\nExamples:\n{_EXAMPLES[name]}" + _NOTES
    p = ArgumentParser(prog=f"kes enclave {name}", usage_text=text)
    flag_insecure(p)
    if output:
        flag_json(p)
        flag_color(p)
    if force:
        p.add_argument("-f", "--force", action="store_true")
    # The admin API is server-wide: its requests name no enclave, whatever $KES_ENCLAVE says.
    p.set_defaults(enclave=None)
    p.add_argument("args", nargs="*")
    return p


def create(argv: Sequence[str]) -> int:
    args = _parser("create", "[options] <name>...").parse(argv)
    return for_each_name(
        args, "enclave", "create", "failed to create enclave", Client.create_enclave
    )


def rm(argv: Sequence[str]) -> int:
    args = _parser("rm", "[options] <name>...", force=True).parse(argv)

    def delete(client: Client, name: str) -> None:
        client.delete_enclave(name, force=args.force)

    return for_each_name(args, "enclave", "rm", "failed to delete enclave", delete)


def info(argv: Sequence[str]) -> int:
    args = _parser("info", "[options] <name>", output=True).parse(argv)
    check_arguments(args.args, "kes enclave info", ("enclave name",), most=1)
    name = args.args[0]
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported(f"failed to describe enclave {go_quote(name)}: "),
    ):
        enclave = client.describe_enclave(name)
    if args.json:
        print_json(enclave.to_json())
        return 0
    print_rows(
        [
            ("Enclave", enclave.name),
            ("Created At", clock(enclave.created_at)),
            ("Created By", enclave.created_by),
        ]
    )
    return 0


def ls(argv: Sequence[str]) -> int:
    args = _parser("ls", "[options] [<pattern>]", output=True).parse(argv)
    return list_names(args, "enclave", "enclaves", "Enclave", "*", Client.list_enclaves)


COMMANDS = {"create": create, "info": info, "ls": ls, "rm": rm}


def run(argv: Sequence[str]) -> int:
    return dispatch("enclave", argv, COMMANDS, USAGE)
