"""Terminal detection, colours (rich) and Go-style JSON output for the client commands.

* "terminal" (docs/compat/cli.md §2) = stdout **or** stderr is a TTY; it selects the
  human-readable forms of ``kes key encrypt``, ``kes status``, ``kes metric`` ….
* ``--color auto|never|always``: ``auto`` colours only if stdout is a TTY.
"""

from __future__ import annotations

import datetime
import json
import sys
from typing import TYPE_CHECKING, Any

from pykes.goformat.json import go_json

if TYPE_CHECKING:  # rich is imported when used: `kes server` never loads it (issue 7)
    from rich.console import Console
    from rich.text import Text

COLOR_CHOICES = ("auto", "never", "always")

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def is_terminal() -> bool:
    """stdout or stderr is a TTY."""
    return sys.stdout.isatty() or sys.stderr.isatty()


def colorize(option: str = "auto") -> bool:
    """Whether to use colours for ``--color <option>``."""
    if option == "always":
        return True
    if option == "never":
        return False
    return sys.stdout.isatty()


def console(color: bool, *, stderr: bool = False) -> Console:
    """A rich console that writes plain text unless ``color``."""
    from rich.console import Console

    return Console(
        file=sys.stderr if stderr else sys.stdout,
        force_terminal=color,
        no_color=not color,
        color_system="truecolor" if color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


def styled(text: str, style: str, color: bool) -> Text:
    """``text`` as a styled span (text appended later keeps its own style)."""
    from rich.text import Text

    out = Text()
    out.append(text, style=style if color else None)
    return out


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def print_rows(rows: list[tuple[str, str]]) -> None:
    """``<label> <value>`` lines, labels padded to 11 characters (``kes key info`` and
    the other ``info`` commands of the Go CLI)."""
    write("".join(f"{label:<11} {value}\n" for label, value in rows))


def print_json(value: Any, *, indent: bool = False) -> None:
    """JSON as Go's ``json.Encoder`` writes it (trailing newline; indented with two
    spaces when ``indent``)."""
    if indent:
        text = json.dumps(value, indent=2, ensure_ascii=False).translate(_GO_ESCAPES) + "\n"
        write(text)
    else:
        write(go_json(value).decode("utf-8"))


def print_error(message: str) -> None:
    """``Error: <message>`` on stderr; the prefix is red on a colour terminal."""
    from rich.text import Text

    color = sys.stderr.isatty()
    out = console(color, stderr=True)
    line = Text()
    line.append("Error: ", style="bold red" if color else "")
    line.append(message)
    out.print(line)


def format_memory(size: int) -> str:
    """Decimal size with one fraction digit: ``512B``, ``12.3MB`` (docs/compat/cli.md §9)."""
    if size < 1000:
        return f"{size}B"
    value, unit = float(size), "B"
    for unit in ("KB", "MB", "GB", "TB", "PB"):  # noqa: B007 - the unit is used below
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f}{unit}"


def local_time(value: datetime.datetime) -> datetime.datetime:
    """``value`` in the local zone (Go's zero time stays as is)."""
    if value.year <= 1:
        return value
    return value.astimezone()


def clock(value: datetime.datetime) -> str:
    """``YYYY-MM-DD hh:mm:ss`` of ``value`` in its own zone."""
    v = value
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
