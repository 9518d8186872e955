"""``kes status [-k] [-s|--short] [--api] [--json] [--color …]`` (docs/compat/cli.md §9)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text

from pykes.cli.common import (
    ArgumentParser,
    CLIError,
    check_arguments,
    flag_color,
    flag_insecure,
    flag_json,
)
from pykes.cli.connect import new_client, reported
from pykes.cli.output import colorize, console, format_memory, is_terminal, print_json, styled
from pykes.client.types import API, State
from pykes.goformat.duration import format_duration

USAGE = """Usage:
    kes status [options]

Options:
    -k, --insecure           Skip TLS certificate validation.
    -s, --short              Print status information in a short summary format.
        --api                List all server APIs.
        --json               Print status information in JSON format.
        --color <when>       Specify when to use colored output: auto, never, always.

    -h, --help               Print command line options.
"""

#: The Go SDK rejects such a status; ``kes status`` fails with its text (docs/compat/api.md §5.3).
UNREACHABLE = "kes: keystore is unreachable but not unavailable"


def check_state(state: State) -> None:
    """Fail like the Go CLI on a status the Go SDK cannot decode: ``keystore_unreachable``
    without ``keystore_unavailable`` (what the Go server sends while its keystore is
    down). pykes servers send both, and the status is shown."""
    if state.keystore_unreachable and not state.keystore_unavailable:
        raise CLIError(UNREACHABLE)


def uptime_text(seconds: float) -> str:
    hours = seconds / 3600
    if seconds > 24 * 3600:
        return f"{hours / 24:.0f} days {hours % 24:.0f} hours"
    if seconds > 3600:
        return f"{hours:.0f} hours"
    if seconds > 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"


def _round_ms(ns: int) -> int:
    return (ns + 500_000) // 1_000_000 * 1_000_000


def _human(endpoint: str, state: State, latency_ns: int, short: bool, color: bool) -> list[Text]:
    lines = [
        styled("●", "bold #00F700", color)
        .append(" ")
        .append_text(styled(endpoint.removeprefix("https://"), "bold #00AFAF", color))
    ]
    if short:
        return lines

    def row(label: str, value: str) -> Text:
        return styled(f"  {label:<8}", "dim", color).append(f" {value}")

    lines += [
        row("Version", state.version),
        row("Uptime", uptime_text(state.uptime)),
        row("Latency", format_duration(_round_ms(latency_ns))),
        row("OS", state.os),
        row("CPUs", f"{state.usable_cpus} {state.arch}"),
        *_keystore_rows(state, color),
        styled(f"  {'Memory':<8}", "dim", color),
        styled(f"{'·':>3} {'Heap':<6}", "dim", color).append(f" {format_memory(state.heap_alloc)}"),
        styled(f"{'·':>3} {'Stack':<6}", "dim", color).append(
            f" {format_memory(state.stack_alloc)}"
        ),
    ]
    return lines


def _keystore_rows(state: State, color: bool) -> list[Text]:
    """pykes addition: a ``Keystore`` line, only while the keystore is down."""
    if not (state.keystore_unreachable or state.keystore_unavailable):
        return []
    text = "unreachable" if state.keystore_unreachable else "unavailable"
    return [
        styled(f"  {'Keystore':<8}", "dim", color).append_text(styled(f" {text}", "red", color))
    ]


def _api_table(apis: list[API], color: bool) -> list[Text]:
    header = Text("  ")
    header.append_text(styled(f"{'Method':<7}", "dim underline", color)).append(" ")
    header.append_text(styled(f"{'API':<28}", "dim underline", color)).append(" ")
    header.append_text(styled("Timeout", "dim underline", color))
    lines = [Text(""), header]
    for api in apis:
        timeout = format_duration(api.timeout * 1_000_000_000) if api.timeout > 0 else "Inf"
        line = Text(f"  {api.method:<7} ")
        line.append_text(styled(f"{api.path:<28}", "#2e8bc0", color)).append(f" {timeout}")
        lines.append(line)
    return lines


def run(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes status", usage_text=USAGE)
    flag_insecure(p)
    p.add_argument("-s", "--short", action="store_true")
    p.add_argument("--api", action="store_true")
    flag_json(p)
    flag_color(p)
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    check_arguments(args.args, "kes status")
    with new_client(args.insecure) as client, reported():
        start = time.perf_counter_ns()
        state = client.status()
        latency = time.perf_counter_ns() - start
        check_state(state)
        apis = client.apis() if args.api else []
        endpoint = client.endpoints[0]
    terminal = is_terminal()
    if args.json or not terminal:
        value = [a.to_json() for a in apis] if args.api else state.to_json()
        print_json(value, indent=terminal and not args.short)
        return 0
    color = colorize(args.color)
    out = console(color)
    lines = _human(endpoint, state, latency, args.short, color)
    if args.api:
        lines += _api_table(apis, color)
    for line in lines:
        out.print(line)
    return 0
