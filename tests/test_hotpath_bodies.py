"""The crypto endpoints' shortcut for the usual request body (``simple_bytes_fields``)
answers exactly what the general JSON path answers — over a real server, HTTP/1.1 and
HTTP/2 — and takes only bodies it can decode exactly."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import PKI, RunningServer, config_yaml, start_server
from pykes.goformat.json import BodyError, bytes_field, parse_object, simple_bytes_fields

FIELDS = ("ciphertext", "context")


def general_path(body: bytes) -> dict[str, bytes] | None:
    """What the handlers decode without the shortcut (None: a 400)."""
    try:
        obj = parse_object(body, (*FIELDS, "version"))
        version = obj.get("version")
        if version is not None and not isinstance(version, str):
            return None
        return {f: bytes_field(obj, f) for f in FIELDS}
    except BodyError:
        return None


BODIES = [
    b"{}",
    b'{"ciphertext":"QUJD"}',
    b'{"ciphertext":"QUJD","context":"e30="}',
    b'{"context":"e30=","ciphertext":"QUJD"}',
    b'{"ciphertext":"QUJD","ciphertext":"REVG"}',  # the last one wins
    b'{"ciphertext":""}',
    b'{"ciphertext":"QUJD"} trailing',  # a json.Decoder reads the first value only
    b'{"ciphertext":"QUJD===="}',  # excess padding: Go rejects it, strict a2b does not
    b'{"ciphertext":"QUJD="}',
    b'{"ciphertext":"QUJ"}',
    b'{"ciphertext":"QU\\u004aD"}',  # an escape: decoded by the general path
    b'{"ciphertext":"QUJD\\n"}',
    b'{"ciphertext":"QU\nJD"}',  # a raw control character: not JSON
    b'{"ciphertext":"QUJD\\"}',
    b'{"ciphertext":"QU\xc3\xa9D"}',
    b'{"ciphertext":"QUJD","version":"v1"}',
    b'{"ciphertext":"QUJD","version":"\x01"}',
    b'{"ciphertext":"QUJD","other":"x\\"y"}',
    b'{"ciphertext":"QUJD","other":"not base64"}',
    b'{"Ciphertext":"QUJD"}',
    b'{"ciphertext":null}',
    b'{ "ciphertext":"QUJD"}',
    b"",
    b"[]",
]


@pytest.mark.parametrize("body", BODIES)
def test_shortcut_agrees_with_the_general_path(body: bytes) -> None:
    fast = simple_bytes_fields(body, FIELDS)
    if fast is not None:  # taken: exactly the general path's result
        assert fast == general_path(body)


def test_shortcut_takes_the_usual_bodies_and_leaves_the_rest() -> None:
    assert simple_bytes_fields(b"{}", FIELDS) == {"ciphertext": b"", "context": b""}
    assert simple_bytes_fields(b'{"ciphertext":"QUJD","context":"e30="}', FIELDS) == {
        "ciphertext": b"ABC",
        "context": b"{}",
    }
    for body in (
        b'{"ciphertext":"QUJD===="}',
        b'{"ciphertext":"QU\\u004aD"}',
        b'{"ciphertext":"QUJD","version":"v1"}',
        b'{"Ciphertext":"QUJD"}',
    ):
        assert simple_bytes_fields(body, FIELDS) is None, body


_B64_TEXT = st.text(
    alphabet='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\\"\n', max_size=12
)


@given(
    names=st.lists(st.sampled_from(["ciphertext", "context", "version", "x"]), max_size=2),
    values=st.lists(
        st.one_of(_B64_TEXT, st.binary(max_size=9).map(lambda b: base64.b64encode(b).decode())),
        min_size=2,
        max_size=2,
    ),
)
def test_shortcut_agrees_on_generated_bodies(names: list[str], values: list[str]) -> None:
    body = (
        "{"
        + ",".join(f'"{n}":"{v}"' for n, v in zip(names, values[: len(names)], strict=True))
        + "}"
    ).encode()
    fast = simple_bytes_fields(body, FIELDS)
    if fast is not None:
        assert fast == general_path(body)


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI):
    root = tmp_path_factory.mktemp("kes-hotpath")
    server = start_server(root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys"))
    yield server
    server.stop()


@pytest.fixture(params=["http1", "http2"])
def admin(request, kes: RunningServer, pki: PKI):
    with kes.client(pki.client("admin"), http2=request.param == "http2") as client:
        r = client.post("/v1/key/create/hot")
        assert r.status_code in (200, 400), r.text
        yield client


def _decrypt(client, body: bytes):
    r = client.post("/v1/key/decrypt/hot", content=body)
    return r.status_code, r.json()


def test_generate_with_and_without_context_over_the_api(admin) -> None:
    for body, context in ((b"{}", None), (b'{"context":"e30="}', "e30=")):
        r = admin.post("/v1/key/generate/hot", content=body)
        assert r.status_code == 200, r.text
        dek = r.json()
        plain = base64.b64decode(dek["plaintext"], validate=True)
        assert len(plain) == 32
        ct = dek["ciphertext"]
        good = {"ciphertext": ct} | ({"context": context} if context else {})
        assert _decrypt(admin, _json(good)) == (200, {"plaintext": dek["plaintext"]})
        # the wrong context (or none where one was used) is not authentic
        bad = {"ciphertext": ct, "context": "b3RoZXI="}  # "other"
        assert _decrypt(admin, _json(bad))[0] == 400


def _json(fields: dict[str, str]) -> bytes:
    return ("{" + ",".join(f'"{k}":"{v}"' for k, v in fields.items()) + "}").encode()


def test_decrypt_bodies_the_shortcut_leaves_to_the_general_path(admin) -> None:
    dek = admin.post("/v1/key/generate/hot", content=b"{}").json()
    ct = dek["ciphertext"]
    ok = (200, {"plaintext": dek["plaintext"]})
    escaped = ct.replace("/", "\\/").replace("+", "\\u002b")
    assert _decrypt(admin, b'{"ciphertext":"' + escaped.encode() + b'"}') == ok
    assert _decrypt(admin, _json({"ciphertext": ct, "version": "v1"})) == ok
    assert _decrypt(admin, _json({"CipherText": ct})) == ok
    assert _decrypt(admin, _json({"ciphertext": "QUJD", "ciphertext ": "x"})) == (
        400,
        {"message": "decryption failed: ciphertext is not authentic"},
    )
    invalid = (400, {"message": "invalid request body"})
    assert _decrypt(admin, b'{"ciphertext":"QUJD===="}') == invalid
    assert _decrypt(admin, b'{"ciphertext":"QUJD="}') == invalid
    assert _decrypt(admin, b'{"ciphertext":"QU\nJD"}') == invalid
    assert _decrypt(admin, b'{"ciphertext":"' + ct.encode() + b'","version":1}') == invalid
