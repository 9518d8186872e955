"""``kes policy info|ls|show`` (docs/compat/cli.md §5)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from pykes.cli.common import (
    ENCLAVE_HELP,
    ArgumentParser,
    check_arguments,
    dispatch,
    flag_color,
    flag_enclave,
    flag_insecure,
    flag_json,
)
from pykes.cli.connect import new_client, reported
from pykes.cli.key import list_names
from pykes.cli.output import (
    clock,
    colorize,
    console,
    is_terminal,
    local_time,
    print_json,
    print_rows,
    styled,
    write,
)
from pykes.client import Client

USAGE = """Usage:
    kes policy <command>

Commands:
    info                     Get information about a policy.
    ls                       List policies.
    show                     Print a policy.

Options:
    -h, --help               Print command line options.
"""


def _parser(name: str, synopsis: str, *, color: bool = True) -> ArgumentParser:
    text = (
        f"Usage:\n    kes policy {name} {synopsis}\n\nOptions:\n"
        "    -k, --insecure           Skip TLS certificate validation.\n"
        "        --json               Print output in JSON format.\n"
    )
    if color:
        text += "        --color <when>       When to use colored output: auto, never, always.\n"
    text += ENCLAVE_HELP + "\n"
    text += "    -h, --help               Print command line options.\n"
    p = ArgumentParser(prog=f"kes policy {name}", usage_text=text)
    flag_insecure(p)
    flag_enclave(p)
    flag_json(p)
    if color:
        flag_color(p)
    p.add_argument("args", nargs="*")
    return p


def _one_name(args: list[str], command: str) -> str:
    check_arguments(args, f"kes policy {command}", ("policy name",), most=1)
    return args[0]


def info(argv: Sequence[str]) -> int:
    args = _parser("info", "[options] <name>").parse(argv)
    name = _one_name(args.args, "info")
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported("failed to describe policy: "),
    ):
        policy = client.describe_policy(name)
    if args.json:
        print_json(policy.to_json(), indent=is_terminal())
        return 0
    print_rows(
        [
            ("Name", policy.name),
            ("Date", clock(local_time(policy.created_at))),
            ("Created by", policy.created_by),
        ]
    )
    return 0


def ls(argv: Sequence[str]) -> int:
    args = _parser("ls", "[options] [<pattern>]").parse(argv)
    # Fix: the Go CLI's header says "Key" (docs/compat/cli.md §5).
    return list_names(args, "policy", "policies", "Policy", "*", Client.list_policies)


def show(argv: Sequence[str]) -> int:
    args = _parser("show", "[options] <name>", color=False).parse(argv)
    name = _one_name(args.args, "show")
    with (
        new_client(args.insecure, enclave=args.enclave) as client,
        reported("failed to show policy: "),
    ):
        policy = client.get_policy(name)
    if args.json or not is_terminal():
        print_json(policy.to_json(), indent=not args.json and is_terminal())
        return 0
    color = colorize("auto")
    out = console(color)
    for title, patterns, dot in (("Allow:", policy.allow, "green"), ("Deny:", policy.deny, "red")):
        if not patterns:
            continue
        out.print(styled(title, "bold", color))
        for pattern in patterns:
            line = Text("  ")
            line.append("·", style=dot if color else "")
            line.append(f" {pattern}")
            out.print(line)
        out.print()
    write(f"Created at: {clock(local_time(policy.created_at))}\n")
    write(f"Created by: {policy.created_by or '<unknown>'}\n")
    return 0


COMMANDS = {"info": info, "ls": ls, "show": show}


def run(argv: Sequence[str]) -> int:
    return dispatch("policy", argv, COMMANDS, USAGE)
