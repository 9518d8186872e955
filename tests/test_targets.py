"""Routing outcomes cached per request target (api/targets.py, issue 7): HTTP/1.1
(method and target as bytes, split by httptools) and HTTP/2 (``:method`` and ``:path``
as str) must route every target exactly as ``route_request`` does, reuse the outcome
for a repeated target, and start over with a new route table (SIGHUP)."""

from __future__ import annotations

import pytest

from pykes.api.routes import RouteTable
from pykes.api.targets import TargetCache, route_target
from pykes.wire.http1 import handler as http1
from pykes.wire.http2 import handler as h2

TARGETS = [
    ("POST", "/v1/key/generate/my-key", 200),
    ("POST", "/v1/key/decrypt/my-key?x=1&y=%20", 200),
    ("POST", "/v1/key/create/a%2Fb", 200),  # escaped: the resource is unescaped
    ("GET", "/v1/status", 200),
    ("GET", "/v1/../v1/status", 301),  # unclean: a redirect to the clean path
    ("GET", "/v1//status?q=1", 301),  # the redirect keeps the query
    ("GET", "/v1/nothing-here", 404),
    ("DELETE", "/v1/status", 405),
    ("PUT", "/v1/key/create/k", 200),  # PUT routes accept POST, not the other way round
    ("POST", "/v1/key/create/k", 200),
]


def _status(target: tuple) -> int:
    early = target[6]
    return 200 if early is None else early.status


@pytest.mark.parametrize(("method", "url", "status"), TARGETS)
def test_both_protocols_route_like_route_request(method: str, url: str, status: int) -> None:
    routes = RouteTable()
    raw_path, _, query = url.partition("?")
    expected = route_target(routes, method, raw_path, query)
    via_http1 = http1._targets.get(routes, method.encode(), url.encode())
    via_http2 = h2._targets.get(routes, method, url)
    assert _status(expected) == status
    for target in (via_http1, via_http2):
        assert target[:6] == expected[:6]
        early, want = target[6], expected[6]
        assert (early is None) == (want is None)
        if early is not None:
            assert (early.status, early.body, early.headers) == (
                want.status,
                want.body,
                want.headers,
            )


def test_a_repeated_target_reuses_its_outcome_until_the_route_table_changes() -> None:
    cache: TargetCache[str, str] = TargetCache(h2._split_target)
    routes = RouteTable()
    first = cache.get(routes, "POST", "/v1/key/generate/k")
    assert cache.get(routes, "POST", "/v1/key/generate/k") is first
    assert cache.get(routes, "POST", "/v1/key/decrypt/k") is not first
    reloaded = RouteTable(legacy=False)  # a SIGHUP reload: a new table
    again = cache.get(reloaded, "POST", "/v1/key/generate/k")
    assert again is not first and again[4] is reloaded.lookup("/v1/key/generate/")
    assert list(cache.entries) == [("POST", "/v1/key/generate/k")]


def test_the_cache_is_bounded() -> None:
    cache: TargetCache[str, str] = TargetCache(h2._split_target)
    routes = RouteTable()
    long = "/v1/key/generate/" + "k" * TargetCache.MAX_TARGET
    assert cache.get(routes, "POST", long)[5] == "k" * TargetCache.MAX_TARGET
    assert not cache.entries  # too long to keep
    for i in range(TargetCache.SIZE):
        cache.get(routes, "POST", f"/v1/key/generate/k{i}")
    assert len(cache.entries) == TargetCache.SIZE
    cache.get(routes, "POST", "/v1/key/generate/one-more")
    assert len(cache.entries) == 1  # full: dropped, then the new one kept
