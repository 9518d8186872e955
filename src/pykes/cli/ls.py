"""``kes ls [-a KEY] [-k] [--json] [-i | -p] [-s HOST[:PORT]] [-e NAME] [PREFIX]``
(docs/compat/cli.md §7; ``-e`` is a pykes extension)."""

from __future__ import annotations

from collections.abc import Sequence

from pykes.cli.common import ArgumentParser, CLIError, flag_enclave, flag_insecure, flag_json
from pykes.cli.connect import new_client, reported
from pykes.cli.key import print_names
from pykes.cli.output import colorize

USAGE = """Usage:
    kes ls [-a KEY] [-k] [--json] [-i] [-p] [-s HOST[:PORT]] [-e NAME] [PREFIX]

Options:
    -a, --api-key KEY           API key to authenticate to the KES server.
                                Defaults to $MINIO_KES_API_KEY.
    -s, --server HOST[:PORT]    Use the server HOST[:PORT] instead of
                                $MINIO_KES_SERVER.
    -e, --enclave NAME          List within the enclave NAME instead of
                                $KES_ENCLAVE.
        --json                  Print output in JSON format.
    -i, --identity              List identities.
    -p, --policy                List policy names.
    -k, --insecure              Skip server certificate verification.
"""


def run(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes ls", usage_text=USAGE)
    p.add_argument("-a", "--api-key", default="")
    p.add_argument("-s", "--server", default="")
    p.add_argument("-i", "--identity", action="store_true")
    p.add_argument("-p", "--policy", action="store_true")
    flag_insecure(p)
    flag_enclave(p)
    flag_json(p)
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    if len(args.args) > 1:
        raise CLIError("too many arguments")
    if args.identity and args.policy:
        raise CLIError("'-p / --policy' and '-i / --identity' must not be used at the same time")
    prefix = args.args[0] if args.args else ""
    with (
        new_client(
            args.insecure, server=args.server, api_key=args.api_key, enclave=args.enclave
        ) as client,
        reported(),
    ):
        if args.identity:
            names, header = list(client.list_identities(prefix)), "Identity"
        elif args.policy:
            names, header = list(client.list_policies(prefix)), "Policy"
        else:
            names, header = list(client.list_keys(prefix)), "Key"
    print_names(sorted(names), header, args.json, colorize("auto"))
    return 0
