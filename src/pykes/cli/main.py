"""``kes`` entry point: dispatches to the sub-commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from pykes import __version__
from pykes.cli.common import CLIError

USAGE = """Usage:
    kes [options] <command>

Commands:
    server                   Start a KES server.

Options:
    -v, --version            Print version information.
    -h, --help               Print command line options.
"""


def _server(argv: Sequence[str]) -> int:
    from pykes.cli.server import run

    return run(argv)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"server": _server}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 2
    if args[0] in ("-v", "--version"):
        print(f"Version    {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    try:
        if command is None:
            raise CLIError(f"\"{args[0]}\" is not a kes command. See 'kes --help'")
        return command(args[1:])
    except CLIError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
