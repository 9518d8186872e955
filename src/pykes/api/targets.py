"""Routing outcomes cached per request target, for HTTP/1.1 and HTTP/2 alike.

A client sends the same few request targets again and again (``/v1/key/generate/my-key``
…), so ``route_request``'s outcome — the cleaned path, the route, the resource, or the
early 301/404/405 answer — is kept per (method, target) for one route table. A SIGHUP
reload brings a new table and starts a new cache. Bounded: at most ``SIZE`` targets of
at most ``MAX_TARGET`` characters, all dropped when full.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import unquote

from pykes.api.messages import Request, Response
from pykes.api.pipeline import route_request

if TYPE_CHECKING:
    from pykes.api.routes import Route, RouteTable

Target = tuple[str, str, str, str, "Route | None", str, "Response | None"]
"""method, path, raw path, query, route, resource, early response"""

M = TypeVar("M", bound=Hashable)
U = TypeVar("U", str, bytes)


def route_target(routes: RouteTable, method: str, raw_path: str, query: str) -> Target:
    """``route_request`` for one request target (``raw_path`` as sent, still escaped)."""
    path = unquote(raw_path, errors="replace") if "%" in raw_path else raw_path
    probe = Request(method, path, raw_path, "", False, "", 0.0)
    early = route_request(routes, probe, query)
    return (probe.method, path, raw_path, probe.query, probe.route, probe.resource, early)


class TargetCache(Generic[M, U]):
    """``route_target`` per (method, target) of one protocol's own types: ``split``
    turns them into (method, raw path, query)."""

    SIZE = 1024
    MAX_TARGET = 1024

    def __init__(self, split: Callable[[M, U], tuple[str, str, str]]) -> None:
        self.split = split
        self.routes: RouteTable | None = None
        self.entries: dict[tuple[M, U], Target] = {}

    def get(self, routes: RouteTable, method: M, target: U) -> Target:
        if routes is self.routes:
            hit = self.entries.get((method, target))
            if hit is not None:
                return hit
        else:  # a SIGHUP reload brought a new route table
            self.routes = routes
            self.entries = {}
        routed = route_target(routes, *self.split(method, target))
        if len(target) <= self.MAX_TARGET:
            if len(self.entries) >= self.SIZE:
                self.entries = {}
            self.entries[(method, target)] = routed
        return routed
