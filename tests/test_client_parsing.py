"""Response parsing of the SDK as the Go SDK does it (pure functions; the inputs are
the exact texts of docs/compat/api.md §3.6 and observability.md §3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from pykes.client import (
    APIError,
    DecryptError,
    IdentityNotFound,
    KeyAlgorithm,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    PolicyNotFound,
    ResponseError,
    ops,
)
from pykes.client.errors import error_from_response
from pykes.client.metrics import parse_metrics
from pykes.client.types import (
    IdentityInfo,
    KeyInfo,
    Policy,
    PolicyInfo,
    State,
    format_time,
    get_bool,
    get_bytes,
    get_float,
    get_int,
    get_str,
    parse_time,
)

JSON = "application/json"


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (403, "not authorized: insufficient permissions", NotAllowed),
        (404, "key does not exist", KeyNotFound),
        (400, "key already exists", KeyExists),
        (404, "policy does not exist", PolicyNotFound),
        (404, "identity does not exist", IdentityNotFound),
        (400, "decryption failed: ciphertext is not authentic", DecryptError),
        (400, "key does already exist", KeyExists),  # legacy text
        (403, "prohibited by policy", NotAllowed),  # legacy text
    ],
)
def test_canonical_errors(status: int, message: str, cls: type[APIError]) -> None:
    body = ('{"message":' + f'"{message}"' + "\n}").encode()
    err = error_from_response(status, JSON, body)
    assert type(err) is cls
    assert err == cls()


def test_error_matching_needs_status_and_message() -> None:
    assert type(error_from_response(400, JSON, b'{"message":"key does not exist"}')) is APIError
    assert type(error_from_response(404, JSON, b'{"message":"key already exists"}')) is APIError
    # "error" wins over "message" when non-empty
    err = error_from_response(404, JSON, b'{"message":"x","error":"key does not exist"}')
    assert isinstance(err, KeyNotFound)
    err = error_from_response(404, "application/json; charset=utf-8", b'{"message":"m","error":""}')
    assert err == APIError(404, "m")
    # non-JSON: the raw text
    assert error_from_response(404, "text/plain", b"404 page not found\n") == APIError(
        404, "404 page not found\n"
    )
    with pytest.raises(ResponseError):
        error_from_response(500, JSON, b"{not json")


def test_response_size_limits() -> None:
    reply = ops.Reply(200, JSON, b'{"hmac":"' + b"A" * 1000 + b'"}')
    with pytest.raises(ResponseError, match="limit of 1000 bytes"):
        ops.finish(ops.hmac("k", b"m"), reply)
    version = ops.Reply(200, JSON, b'{"version":"v"}' + b" " * 1024)
    with pytest.raises(ResponseError):
        ops.finish(ops.version(), version)
    assert ops.finish(ops.version(), ops.Reply(200, JSON, b'{"version":"v","commit":"c"}\n')) == "v"


def test_request_shapes() -> None:
    """What the SDK sends (docs/compat/api.md §8)."""
    assert ops.list_keys("").path == "/v1/key/list"
    assert ops.list_keys("*").path == "/v1/key/list/%2A"
    assert ops.create_key("a b/c").path == "/v1/key/create/a%20b%2Fc"
    assert ops.create_key("..").path == "/v1/key/create/%2E%2E"
    gen = ops.generate_key("k", None)
    assert (gen.method, gen.body, gen.headers) == ("POST", b"{}", ops.JSON)
    assert ops.generate_key("k", b"\x00").body == b'{"context":"AA=="}'
    mac = ops.hmac("k", b"hi")
    assert (mac.method, mac.headers, mac.body) == ("PUT", (), b'{"message":"aGk="}')
    imp = ops.import_key("k", b"\x01" * 32, KeyAlgorithm.CHACHA20)
    assert imp.body == b'{"key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","cipher":"ChaCha20"}'
    dec = ops.decrypt("k", b"c", None, "")
    assert dec.body == b'{"ciphertext":"Yw=="}'


def test_status_and_key_info_decoding() -> None:
    state = State.from_json({"version": "v", "uptime": 12, "keystore_unreachable": True})
    assert state.keystore_unreachable and not state.keystore_reachable
    assert state.to_json() == {"version": "v", "uptime": 12, "keystore_unreachable": True}
    with pytest.raises(ResponseError, match="invalid number of CPUs"):
        State.from_json({"num_cpu": -1})
    info = KeyInfo.from_json({"name": "k", "created_at": "2024-01-12T10:39:20.886816123Z"})
    assert info.algorithm is KeyAlgorithm.AES256  # missing → Go zero value
    assert info.to_json() == {
        "name": "k",
        "algorithm": "AES256",  # always present (the Go CLI drops it for AES256)
        "created_at": "2024-01-12T10:39:20.886816Z",
    }
    legacy = KeyInfo.from_json({"name": "k", "algorithm": "XCHACHA20-POLY1305"})
    assert legacy.algorithm is KeyAlgorithm.CHACHA20
    with pytest.raises(ResponseError, match="invalid key algorithm 'DES'"):
        KeyInfo.from_json({"name": "k", "algorithm": "DES"})


@pytest.mark.parametrize(
    ("get", "value", "error"),
    [
        (get_str, True, "'f' is not a string"),
        (get_int, True, "'f' is not an integer"),  # a JSON boolean is no number
        (get_int, 1.5, "'f' is not an integer"),
        (get_float, False, "'f' is not a number"),
        (get_float, "1", "'f' is not a number"),
        (get_bool, 1, "'f' is not a boolean"),
        (get_bytes, 1, "'f' is not a base64 string"),
        (get_bytes, "!!", "'f' is not valid base64"),
    ],
)
def test_field_type_errors(
    get: Callable[[dict[str, object], str], object], value: object, error: str
) -> None:
    with pytest.raises(ResponseError) as failure:
        get({"f": value}, "f")
    assert str(failure.value) == f"kes: invalid response: {error}"


def test_field_values_and_zero_values() -> None:
    fields = {"s": "x", "i": 3, "f": 2, "b": True, "y": "AQI=\n"}
    assert (get_str(fields, "s"), get_int(fields, "i"), get_bool(fields, "b")) == ("x", 3, True)
    assert get_float(fields, "f") == 2.0 and isinstance(get_float(fields, "f"), float)
    assert get_bytes(fields, "y") == b"\x01\x02"
    missing = {"s": None}  # null is no value, like a missing field
    assert (get_str(missing, "s"), get_int(missing, "i"), get_bool(missing, "b")) == ("", 0, False)
    assert (get_float(missing, "f"), get_bytes(missing, "y")) == (0.0, b"")


def test_creation_fields_in_json() -> None:
    at = parse_time("2024-01-12T10:39:20Z")
    assert PolicyInfo("p", at, "").to_json() == {"name": "p", "created_at": "2024-01-12T10:39:20Z"}
    assert Policy(("a",), (), at, "me").to_json() == {
        "allow": {"a": {}},
        "created_at": "2024-01-12T10:39:20Z",
        "created_by": "me",
    }
    info = IdentityInfo("id", "p", True, at, "me")
    assert list(info.to_json()) == ["identity", "policy", "admin", "created_at", "created_by"]
    assert list(KeyInfo("k", KeyAlgorithm.AES256, at, "me").to_json()) == [
        "name",
        "algorithm",
        "created_at",
        "created_by",
    ]


def test_times() -> None:
    t = parse_time("2025-05-27T10:00:00.123456789+02:00")
    assert t.utcoffset() == dt.timedelta(hours=2) and t.microsecond == 123456
    assert format_time(t) == "2025-05-27T10:00:00.123456+02:00"
    assert format_time(parse_time("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00Z"
    with pytest.raises(ResponseError):
        parse_time("2025-05-27 10:00:00")


METRICS = """# HELP kes_http_request_success x
# TYPE kes_http_request_success counter
kes_http_request_success{code="200"} 5
kes_http_request_success{code="201"} 2
# TYPE kes_http_request_error counter
kes_http_request_error{code="404"} 3
# TYPE kes_http_response_time histogram
kes_http_response_time_bucket{le="0.01"} 6
kes_http_response_time_bucket{le="0.05"} 9
kes_http_response_time_bucket{le="+Inf"} 10
kes_http_response_time_sum 0.3
kes_http_response_time_count 10
# TYPE kes_system_up_time gauge
kes_system_up_time 12.99
# TYPE kes_system_num_threads gauge
kes_system_num_threads 7
# TYPE something_else gauge
something_else{a="1"} 1
something_else{a="2"} 1
"""


def test_metrics_parsing() -> None:
    with pytest.raises(ResponseError, match="more than one metric"):
        parse_metrics(METRICS)  # the Go SDK rejects any multi-sample non-counter family
    metric = parse_metrics(METRICS.split("# TYPE something_else")[0])
    assert (metric.request_ok, metric.request_err, metric.request_fail) == (7, 3, 0)
    assert metric.latency_histogram == {10_000_000: 6, 50_000_000: 9}
    assert metric.uptime == 12_000_000_000  # truncated to whole seconds, as Go
    assert metric.threads == 7
    assert metric.average_latency() == int(10_000_000 * 6 / 9 + 50_000_000 * 3 / 9)
    with pytest.raises(ResponseError, match="contains no metric"):
        parse_metrics("# TYPE kes_system_num_cpu gauge\n")


def test_pager_follows_continue_at_as_prefix_with_guards() -> None:
    pager = ops.Pager("")
    assert pager.feed((["a", "b"], "c")) == ["a", "b"] and pager.next_prefix == "c"
    assert pager.feed((["c", "d"], "")) == ["c", "d"] and pager.next_prefix is None
    pager = ops.Pager("ke*")
    pager.feed((["key-1"], "key-2"))
    assert pager.next_prefix == "key-2"
    pager = ops.Pager("key")
    pager.feed((["key-1"], "other"))  # outside the requested prefix: stop
    assert pager.next_prefix is None
    pager = ops.Pager("")
    pager.feed((["b"], "a"))  # does not advance: stop
    assert pager.next_prefix is None
