"""CLI conventions shared by every command (docs/compat/cli.md): ``Error: <message>`` on
stderr with exit 1, pflag-style flags, env lookups. Help asked for (``-h``) goes to
stdout with exit 0, so that ``kes key --help | less`` shows it; usage printed for a
missing command goes to stderr with exit 2 (Go prints both to stderr, exit 2)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pykes.goformat.text import go_quote

__all__ = [
    "ArgumentParser",
    "CLIError",
    "check_arguments",
    "env",
    "fail",
    "go_quote",
    "show_usage",
    "split_list",
]


class CLIError(Exception):
    """A user-facing error: printed as one ``Error: ...`` line, exit status 1."""


def fail(message: str) -> NoReturn:
    raise CLIError(message)


def show_usage(usage: str, asked: bool) -> int:
    """Print ``usage``: asked for with ``-h``/``--help`` → stdout, exit status 0; in
    place of a missing command → stderr, exit status 2. Returns the status."""
    (sys.stdout if asked else sys.stderr).write(usage)
    return 0 if asked else 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Go pflag conventions (usage errors: ``Error: …``, exit 1), except
    that ``-h`` prints the help to stdout with exit status 0 (see the module docstring).

    ``usage_text`` (optional) replaces argparse's generated help with a fixed text in
    the style of the Go CLI. :meth:`parse` accepts flags and positionals in any order
    (as pflag does).
    """

    def __init__(self, *args: object, usage_text: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.usage_text = usage_text

    def print_help(self, file=None) -> None:  # type: ignore[override]
        if self.usage_text is not None:
            (file or sys.stdout).write(self.usage_text)
            return
        super().print_help(file or sys.stdout)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        sys.exit(status)

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise CLIError(f"{message}. See '{self.prog} --help'")

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """Parse with flags and positionals intermixed (``kes key rm a -k b``)."""
        return self.parse_intermixed_args(list(argv))


def check_arguments(
    args: Sequence[str], prog: str, needed: Sequence[str] = (), most: int = 0
) -> None:
    """The Go CLI's checks of a command's arguments: the first of ``needed`` (what the
    n-th argument is) that is missing → ``no <it> specified``; more than ``most`` →
    ``too many arguments``; both followed by ``See '<prog> --help'``."""
    see = f"See '{prog} --help'"
    if len(args) < len(needed):
        raise CLIError(f"no {needed[len(args)]} specified. {see}")
    if len(args) > most:
        raise CLIError(f"too many arguments. {see}")


def env(*names: str) -> str | None:
    """The value of the first *set* variable (a set-but-empty one wins too)."""
    for name in names:
        value = os.environ.get(name)
        if value is not None:
            return value
    return None


def split_list(values: Sequence[str] | None) -> list[str]:
    """Values of a repeatable pflag slice flag: each value may hold comma-separated
    items (``--dns a,b --dns c``)."""
    items: list[str] = []
    for value in values or ():
        items.extend(v.strip() for v in value.split(",") if v.strip())
    return items


Command = Callable[[Sequence[str]], int]


def dispatch(group: str, argv: Sequence[str], commands: dict[str, Command], usage: str) -> int:
    """Run ``kes <group> <sub-command> …``; no argument or ``-h`` → usage."""
    if not argv or argv[0] in ("-h", "--help"):
        return show_usage(usage, asked=bool(argv))
    command = commands.get(argv[0])
    if command is None:
        if argv[0].startswith("-"):
            raise CLIError(f"unknown flag: {argv[0]}. See 'kes {group} --help'")
        article = "an" if group[0] in "aeiou" else "a"
        raise CLIError(
            f"{go_quote(argv[0])} is not {article} {group} command. See 'kes {group} --help'"
        )
    return command(argv[1:])


def flag_insecure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", "--insecure", action="store_true", help="Skip TLS certificate validation")


ENCLAVE_HELP = (
    "    -e, --enclave <name>     Operate within the enclave <name> (default: $KES_ENCLAVE).\n"
)


def flag_enclave(p: argparse.ArgumentParser) -> None:
    """``-e/--enclave``: the enclave of a stateful server to work in (connect.py; a
    stateless server ignores it)."""
    p.add_argument("-e", "--enclave", default="", help=argparse.SUPPRESS)


def flag_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="Print output in JSON format")


def flag_color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", choices=("auto", "never", "always"), default="auto")
