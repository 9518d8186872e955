"""The ``?legacy`` list forms' glob patterns (issue 20 #3): checked like names before
any use (at most 80 characters of a name's characters and ``* ? [ ] ^``, well formed)
and matched without backtracking, so no pattern holds up a worker. Real server over
real mTLS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import PKI, RunningServer, config_yaml, start_server
from h1peer import parse_replies, read_until_closed, request, tls_socket

HOSTILE = "%5Ba-" * 12000  # "[a-" 12,000 times: a 60 KB target (quadratic for fnmatch)
LISTS = ("/v1/key/list/", "/v1/policy/list/", "/v1/identity/list/")
INVALID = "listing pattern '{}' is empty, too long or is invalid"


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-legacy-listing")
    server = start_server(root, pki, config_yaml(pki, pki.client("admin").identity, root / "k"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(kes: RunningServer, pki: PKI) -> Iterator[httpx.Client]:
    """The admin's client, after it created the keys that the globs list."""
    with kes.client(pki.client("admin")) as client:
        for name in ("gl-a1", "gl-a2", "gl-b1", "gl-c7", "a" * 36):
            assert client.post(f"/v1/key/create/{name}").status_code == 200
        yield client


def _names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line)["name"] for line in r.text.splitlines()]


@pytest.mark.parametrize("route", LISTS)
def test_a_60_kb_pattern_is_refused_at_once(kes: RunningServer, pki: PKI, route: str) -> None:
    with tls_socket(kes, pki.client("admin")) as tls:
        tls.sendall(request("GET", "/v1/status"))  # the connection is warm
        assert parse_replies(tls.recv(65536), ["GET"])[0][0].status == 200
        started = time.perf_counter()
        tls.sendall(request("GET", f"{route}{HOSTILE}?legacy", ("Connection", "close")))
        data = read_until_closed(tls)
        elapsed = time.perf_counter() - started
    (reply,), _ = parse_replies(data, ["GET"])
    assert (reply.status, json.loads(reply.body)) == (
        400,
        {"message": INVALID.format("[a-" * 12000)},
    )
    assert elapsed < 0.1, elapsed


def test_status_is_unaffected_by_eight_hostile_listings(kes: RunningServer, pki: PKI) -> None:
    stop = threading.Event()
    latencies: list[float] = []

    def poll_status() -> None:
        with kes.client(pki.client("admin")) as c:
            while not stop.is_set():
                started = time.perf_counter()
                assert c.get("/v1/status", timeout=20).status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

    def hostile(i: int) -> int:
        with kes.client(pki.client("admin")) as c:
            return c.get(f"{LISTS[i % 3]}{HOSTILE}?legacy", timeout=120).status_code

    poller = threading.Thread(target=poll_status)
    poller.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(hostile, range(8)))
    finally:
        stop.set()
        poller.join()
    assert statuses == [400] * 8
    assert latencies and max(latencies) < 0.5, max(latencies)


def test_backtracking_globs_are_matched_quickly(admin: httpx.Client) -> None:
    """Go ``path.Match`` semantics without backtracking: 40 stars against a run of
    ``a``s (exponential for a naive regex) and a long class chain, in milliseconds."""
    many_stars = "*a" * 39 + "*b"  # 80 characters
    started = time.perf_counter()
    assert _names(admin.get(f"/v1/key/list/{many_stars}?legacy")) == []
    assert _names(admin.get(f"/v1/key/list/{'*a' * 36}?legacy")) == ["a" * 36]
    assert _names(admin.get("/v1/key/list/" + "[a-z]" * 15 + "*?legacy")) == ["a" * 36]
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("", ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "gl-a1", "gl-a2", "gl-b1", "gl-c7"]),
        ("*", ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "gl-a1", "gl-a2", "gl-b1", "gl-c7"]),
        ("gl-*", ["gl-a1", "gl-a2", "gl-b1", "gl-c7"]),
        ("gl-%3F1", ["gl-a1", "gl-b1"]),  # ? is written %3F in a path
        ("gl-[^a]*", ["gl-b1", "gl-c7"]),
        ("gl-[a-b]%3F", ["gl-a1", "gl-a2", "gl-b1"]),
        ("gl-[ac][0-9]", ["gl-a1", "gl-a2", "gl-c7"]),
        ("*1", ["gl-a1", "gl-b1"]),
        ("gl-a1", ["gl-a1"]),
        ("*-*-*", []),
        ("gl-[z-a]1", []),  # a reversed range matches nothing (Go)
    ],
)
def test_glob_semantics_are_kept(admin: httpx.Client, pattern: str, names: list[str]) -> None:
    assert _names(admin.get(f"/v1/key/list/{pattern}?legacy")) == names


@pytest.mark.parametrize(
    "pattern",
    [
        "gl-[a",  # unclosed class
        "gl-[]",  # empty class
        "gl-[-a]",  # a range without its start
        "gl-a]",
        "gl-^",
        "gl-!a",
        "gl-%5C*",  # a backslash escape
        "gl.a",
        "x" * 81,
    ],
)
@pytest.mark.parametrize("route", LISTS)
def test_malformed_globs_are_a_400(admin: httpx.Client, route: str, pattern: str) -> None:
    r = admin.get(f"{route}{pattern}?legacy")
    shown = pattern.replace("%5C", "\\")
    assert (r.status_code, r.json()) == (400, {"message": INVALID.format(shown)})
