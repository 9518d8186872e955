"""CLI conventions shared by every command (spec/cli.md): ``Error: <message>`` on
stderr with exit 1, usage on stderr with exit 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class CLIError(Exception):
    """A user-facing error: printed as one ``Error: ...`` line, exit status 1."""


def fail(message: str) -> NoReturn:
    raise CLIError(message)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Go pflag conventions: help and usage errors go to stderr, exit 2."""

    def print_help(self, file=None) -> None:  # type: ignore[override]
        super().print_help(file or sys.stderr)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        sys.exit(2 if status == 0 else status)

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise CLIError(f"{message}. See '{self.prog} --help'")
