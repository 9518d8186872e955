"""``kes`` entry point: dispatches to the sub-commands (docs/compat/cli.md §1).

Each command lives in its own module and is imported only when it runs, so a client
command does not pay for the server's imports and vice versa; a shell asking for
completions (``COMP_LINE``, cli/completion.py) is answered before anything else loads.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Sequence

USAGE = """Usage:
    kes [options] <command>

Commands:
    server                   Start a KES server.

    ls                       List keys, policies and identities.
    key                      Manage cryptographic keys.
    policy                   Manage KES policies.
    identity                 Manage KES identities.
    enclave                  Manage KES enclaves.
    store                    Back up a stateful server's store.

    log                      Print error and audit log events.
    status                   Print server status.
    metric                   Print server metrics.

    migrate                  Migrate KMS data.
    update                   Update KES binary (not supported by pykes).
    completion               Print a bash or zsh completion script.

Options:
    -v, --version            Print version information.
    --auto-completion        Install shell completion (bash, zsh).
    -h, --help               Print command line options.
"""

#: command → "module:function" (module below pykes.cli)
COMMANDS: dict[str, str] = {
    "server": "server:run",
    "ls": "ls:run",
    "key": "key:run",
    "policy": "policy:run",
    "identity": "identity:run",
    "enclave": "enclave:run",
    "store": "store:run",
    "log": "log:run",
    "status": "status:run",
    "metric": "metric:run",
    "migrate": "migrate:run",
    "update": "main:update",
    "tool": "tool:run",
    "completion": "completion:run",
}


def update(argv: Sequence[str]) -> int:
    from pykes.cli.common import CLIError

    raise CLIError("'kes update' is not supported by pykes. Upgrade the pykes package instead")


def auto_completion() -> int:
    """``kes --auto-completion``: install completion as Go's does (cli/completion.py)."""
    import shutil

    from pykes.cli.common import CLIError
    from pykes.cli.completion import install

    binary = os.path.abspath(sys.argv[0]) if os.path.basename(sys.argv[0]) == "kes" else None
    binary = binary or shutil.which("kes")
    if binary is None:
        raise CLIError("cannot find the kes command to install completion for")
    done = install(binary)
    if not done:
        raise CLIError(
            "found no ~/.bashrc or ~/.zshrc to install completion in. "
            "Use 'kes completion bash|zsh' instead"
        )
    print("\n".join(done))
    return 0


def version_text() -> str:
    """The four aligned lines of ``kes --version``."""
    import platform
    import time

    from pykes import __version__
    from pykes.api.context import COMMIT
    from pykes.api.handlers.system import GOARCH, GOOS

    rows = [
        ("Version", f"{__version__} commit={COMMIT}"),
        ("Runtime", f"Python {platform.python_version()} {GOOS}/{GOARCH} compiler=CPython"),
        ("License", "AGPLv3 https://www.gnu.org/licenses/agpl-3.0.html"),
        ("Copyright", f"pykes authors, MinIO, Inc. 2015-{time.gmtime().tm_year}"),
    ]
    return "".join(f"{label:<11}{value}\n" for label, value in rows)


def _run(name: str, argv: Sequence[str]) -> int:
    module_name, _, function = COMMANDS[name].partition(":")
    module = importlib.import_module(f"pykes.cli.{module_name}")
    status: int = getattr(module, function)(argv)
    return status


def interruptible() -> None:
    """Let Ctrl-C (SIGINT) cancel the command even if it was started with SIGINT
    ignored — every background job of a script is (``make test > log &``) — as Go's
    ``signal.NotifyContext`` does; otherwise ``kes log`` and ``kes metric`` never stop."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and "COMP_LINE" in os.environ:
        from pykes.cli.completion import answer_shell

        if answer_shell(os.environ):
            return 0

    from pykes.cli.common import CLIError, go_quote, show_usage
    from pykes.cli.output import print_error

    args = list(sys.argv[1:] if argv is None else argv)
    interruptible()
    try:
        if not args or args[0] in ("-h", "--help"):
            return show_usage(USAGE, asked=bool(args))
        if args[0] in ("-v", "--version"):
            sys.stdout.write(version_text())
            return 0
        if args[0] == "--auto-completion":
            return auto_completion()
        if args[0] not in COMMANDS:
            if args[0].startswith("-"):
                raise CLIError(f"unknown flag: {args[0]}. See 'kes --help'")
            raise CLIError(f"{go_quote(args[0])} is not a kes command. See 'kes --help'")
        return _run(args[0], args[1:])
    except CLIError as err:
        print_error(str(err))
        return 1
    except KeyboardInterrupt:
        return 1
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
