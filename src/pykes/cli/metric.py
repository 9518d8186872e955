"""``kes metric [--rate 5s] [-k]`` (docs/compat/cli.md §10): a live view on a terminal, one
JSON object per ``--rate`` otherwise."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group
from rich.text import Text

from pykes.cli.common import ArgumentParser, CLIError, check_arguments, flag_insecure
from pykes.cli.connect import new_client, reported
from pykes.cli.output import colorize, console, format_memory, is_terminal, print_json, styled
from pykes.client import KESError
from pykes.client.metrics import Metric
from pykes.goformat.duration import DurationError, format_duration, parse_duration_ns

USAGE = """Usage:
    kes metric [options]

Options:
    --rate                   Scrap rate when monitoring metrics. (default: 5s)

    -k, --insecure           Skip TLS certificate validation
    -h, --help               Print command line options.
"""


def _percent(part: int, total: int) -> str:
    return f"{100 * part / total:.2f}%" if total else "0.00%"


def view(metric: Metric, rate: float, color: bool) -> Group:
    """The two blocks of the live display: requests and system."""
    green, yellow, red = "bold #00fe00", "bold #fede00", "bold #fe0000"
    header = "bold dim"
    latency = format_duration(round(metric.average_latency() / 1e6) * 1_000_000)
    requests = Text()
    requests.append_text(styled(f"{metric.request_ok:>19}", green, color))
    requests.append_text(styled(f"{metric.request_err:>16}", yellow, color))
    requests.append_text(styled(f"{metric.request_fail:>16}", red, color))
    requests.append(f"{rate:>11.2f}{latency:>15}")
    shares = Text()
    total = metric.request_n
    shares.append_text(styled(f"{_percent(metric.request_ok, total):>19}", green, color))
    shares.append_text(styled(f"{_percent(metric.request_err, total):>16}", yellow, color))
    shares.append_text(styled(f"{_percent(metric.request_fail, total):>16}", red, color))
    system = Text(
        f"{format_duration(metric.uptime):>19}{format_memory(metric.heap_alloc):>16}"
        f"{format_memory(metric.stack_alloc):>16}{metric.usable_cpus:>11}{metric.threads:>15}"
    )
    return Group(
        styled(
            "\nRequest    OK [2xx]       Err [4xx]       Err [5xx]      Req/s        Latency",
            header,
            color,
        ),
        requests,
        shares,
        Text(""),
        styled(
            "System       UpTime            Heap           Stack       CPUs        Threads",
            header,
            color,
        ),
        system,
    )


def _rate(value: str) -> float:
    try:
        seconds = parse_duration_ns(value) / 1e9
    except DurationError as err:
        raise CLIError(
            f"invalid argument {value!r} for \"--rate\" flag: {err}. See 'kes metric --help'"
        ) from None
    if seconds <= 0:
        raise CLIError("invalid rate: must be positive. See 'kes metric --help'")
    return seconds


def run(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes metric", usage_text=USAGE)
    p.add_argument("--rate", default="5s")
    flag_insecure(p)
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    check_arguments(args.args, "kes metric")
    rate = _rate(args.rate)
    with new_client(args.insecure) as client:
        if not is_terminal():
            while True:
                with reported("failed to fetch metrics: "):
                    print_json(client.metrics().to_json())
                time.sleep(rate)
        _live(client, rate)
    return 0


def _live(client: object, rate: float) -> None:
    from rich.live import Live

    color = colorize("auto")
    requests: int | None = None
    with Live(console=console(color), auto_refresh=False, transient=False) as live:
        while True:
            try:
                metric = client.metrics()  # type: ignore[attr-defined]
            except KESError:
                time.sleep(rate)  # as the Go CLI: keep trying
                continue
            current = metric.request_n
            per_second = 0.0 if requests is None else (current - requests) / rate
            requests = current
            live.update(view(metric, per_second, color), refresh=True)
            time.sleep(rate)
