"""``kes log [--audit | --error] [--json] [-k]`` (docs/compat/cli.md §8)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from pykes.cli.common import ArgumentParser, CLIError, check_arguments, flag_insecure, flag_json
from pykes.cli.connect import new_client, reported
from pykes.cli.output import colorize, console, print_json, styled, write
from pykes.client.types import AuditEvent
from pykes.goformat.duration import format_duration

USAGE = """Usage:
    kes log [options]

Options:
    --audit                  Print audit logs. (default)
    --error                  Print error logs.
    --json                   Print log events as JSON.

    -k, --insecure           Skip TLS certificate validation.
    -h, --help               Print command line options.
"""

HEADER = (
    "Time        Status    Identity                IP                 "
    "API                               Latency"
)


def round_latency(ns: int) -> int:
    """Round like ``kes log``: 100 ms steps ≥ 1 s, 1 ms ≥ 10 ms, 100 µs ≥ 1 ms, 1 µs ≥ 10 µs."""
    for threshold, step in (
        (1_000_000_000, 100_000_000),
        (10_000_000, 1_000_000),
        (1_000_000, 100_000),
        (10_000, 1_000),
    ):
        if ns >= threshold:
            return (ns + step // 2) // step * step
    return ns


def audit_line(event: AuditEvent, color: bool) -> Text:
    t = event.time
    status_style = "#00ff00" if event.status == 200 else "#ff0000"
    line = Text(f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}    ")
    line.append_text(styled(f"{event.status:<5}", status_style, color)).append("     ")
    line.append_text(styled(event.identity[:20], "#C6A18C", color)).append("    ")
    line.append(f"{event.ip or '<unknown>':<15}    ")
    line.append_text(styled(f"{event.path:<30}", "#2e8bc0", color)).append("    ")
    line.append(format_duration(round_latency(event.response_time)))
    return line


def run(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes log", usage_text=USAGE)
    p.add_argument("--audit", action="store_true", default=None)
    p.add_argument("--error", action="store_true")
    flag_json(p)
    flag_insecure(p)
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    check_arguments(args.args, "kes log")
    if args.audit and args.error:
        raise CLIError("cannot display audit and error logs at the same time")
    color = colorize("auto")
    out = console(color)
    with new_client(args.insecure) as client:
        if args.error:
            with reported("failed to connect to error log: "):
                errors = client.error_log()
            with errors, reported():
                for error in errors:
                    if args.json:
                        print_json(error.to_json())
                    else:
                        write(error.message + "\n")
            return 0
        with reported("failed to connect to audit log: "):
            audits = client.audit_log()
        with audits, reported():
            if not args.json:
                out.print(styled(HEADER, "bold underline", color))
            for event in audits:
                if args.json:
                    print_json(event.to_json())
                else:
                    out.print(audit_line(event, color))
    return 0
