"""The house rules of src/pykes: no import circles, no arrow pointing up, and an SDK that
stands alone (docs/architecture.md).

Every import counts, wherever it stands: at the top of a module, inside a function, or
under ``TYPE_CHECKING`` (a type a module names is a module it knows).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Each area of pykes and its floor: a module may import from its own area and from
#: areas on lower floors, never from its floor or above. The client (the SDK) is apart:
#: it may use only what it shares with the server at the bottom (ALONE_MAY_USE).
FLOORS = {
    "base": 0,  # errors, names, the root package
    "goformat": 1,  # what Go prints: durations, timestamps, JSON, OS errors
    "crypto": 2,
    "pki": 2,  # identities, API keys, certificates
    "config": 2,
    "kms": 2,  # the KMS API's commands, messages and frames (server and clients)
    "vault": 3,  # the Vault/OpenBao client under the Vault keystore and the store's engine
    "keystore": 4,
    "store": 4,  # stateful mode: sealed enclaves, key rings, policies, identities
    "auth": 4,
    "observe": 4,
    "api": 5,  # route tables, pipeline, context, handlers: never a socket
    "wire": 6,  # TLS, HTTP/1.1, HTTP/2: never keys or policies
    "process": 7,
    "client": 7,
    "cli": 8,
}
ALONE_MAY_USE = {"base", "goformat", "pki", "kms"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "pykes").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module → the pykes modules it imports (a package's name stands for its __init__)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t if t in modules else base for t in targets]
            else:
                continue
            for target in targets:
                if not target.startswith("pykes"):
                    continue
                while target not in modules:  # pykes.x.y.attribute → pykes.x.y
                    target = target.rpartition(".")[0]
                if target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else "base"


def upward_arrows(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    arrows = []
    for source, targets in graph.items():
        here = area(source)
        for target in targets:
            there = area(target)
            if there == here:
                continue
            alone = here == "client"
            if there not in ALONE_MAY_USE if alone else FLOORS[there] >= FLOORS[here]:
                arrows.append((source, target))
    return sorted(arrows)


def test_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_no_arrow_points_up() -> None:
    assert upward_arrows(import_graph()) == []


def test_every_module_has_an_area_on_a_floor() -> None:
    graph = import_graph()
    areas = {area(m) for m in _modules()} | {area(t) for ts in graph.values() for t in ts}
    assert areas <= set(FLOORS)


def test_the_checks_catch_what_they_look_for() -> None:
    """The rules themselves, on a made-up graph: each bad arrow is found."""
    graph = {
        "pykes.wire.http1": {"pykes.api.pipeline", "pykes.process.runner"},
        "pykes.api.pipeline": {"pykes.wire.http1", "pykes.keystore.cache"},
        "pykes.client.sync": {"pykes.config.loader", "pykes.pki.apikey"},
        "pykes.keystore.cache": {"pykes.auth.policy"},
    }
    assert cycles(graph) == [["pykes.api.pipeline", "pykes.wire.http1"]]
    assert upward_arrows(graph) == [
        ("pykes.api.pipeline", "pykes.wire.http1"),
        ("pykes.client.sync", "pykes.config.loader"),
        ("pykes.keystore.cache", "pykes.auth.policy"),
        ("pykes.wire.http1", "pykes.process.runner"),
    ]


def test_the_sdk_imports_nothing_of_the_server() -> None:
    """``import pykes.client`` in a fresh interpreter loads no server, config or
    authorization module (and none of the server's third-party stacks)."""
    code = "import sys, pykes.client; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    pykes = [m for m in out if m.startswith("pykes.")]
    assert "pykes.client" in pykes
    server_side = ("api", "wire", "process", "config", "auth", "keystore", "observe", "cli")
    assert [m for m in pykes if m.split(".")[1] in server_side] == []
    assert [m for m in out if m.split(".")[0] in ("yaml", "uvloop", "httptools", "hpack")] == []
    # the KMS API's client (and protobuf) only when imported: pykes.client.kms
    assert [m for m in out if m.startswith(("google", "pykes.kms", "pykes.client.kms"))] == []
