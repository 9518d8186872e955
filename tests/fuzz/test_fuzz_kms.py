"""Fuzzing the KMS API's bodies (issue 24): any bytes either decode into a batch of one
command that encodes back the same, or are a ``FrameError`` with a 4xx; and a live
stateful server answers mutated batches with 200 or a 4xx (501 for the cluster
membership and HSM commands pykes does not support), never another 5xx, and stays up."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PKI
from fuzz.fuzz_corpus import edits, mutate
from pykes.kms.commands import Command
from pykes.kms.frames import MAX_FRAMES, FrameError, decode_request, encode, frame
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from test_stateful import new_store

ENCLAVE = "fuzz"
KEY = "k"

# Seeds: valid bodies of the commands served (made with the generated messages).
SEEDS = [
    encode(Command.KEY_GENERATE, [rq.GenerateKeyRequest(Name=KEY, AssociatedData=b"ctx")] * 3),
    encode(Command.KEY_GENERATE, [rq.GenerateKeyRequest(Name=KEY, Length=1024, Version=1)]),
    encode(Command.KEY_ENCRYPT, [rq.EncryptRequest(Name=KEY, Plaintext=b"p" * 40)] * 2),
    encode(Command.KEY_DECRYPT, [rq.DecryptRequest(Name=KEY, Version=1, Ciphertext=b"c" * 60)]),
    encode(Command.KEY_MAC, [rq.MACRequest(Name=KEY, Message=b"m")] * 2),
    encode(Command.KEY_STATUS, [rq.KeyStatusRequest(Name=KEY, Version=1)]),
    encode(Command.KEY_CREATE, [rq.CreateKeyRequest(Name="new", Type="AES256")]),
    encode(Command.KEY_IMPORT, [rq.ImportKeyRequest(Name="imp", Key=bytes(32))]),
    encode(Command.KEY_LIST, [rq.ListRequest(Prefix="k", ContinueAt="k", Limit=3)]),
    encode(Command.KEY_LIST_VERSIONS, [rq.ListRequest(Prefix=KEY)]),
    encode(Command.ENCLAVE_STATUS, [rq.EnclaveStatusRequest(Name=ENCLAVE)] * 2),
    encode(Command.ENCLAVE_LIST, [rq.ListRequest(Prefix="f")]),
    frame(Command.POLICY_LIST, b""),
]


def _check_decoding(body: bytes) -> None:
    try:
        command, messages = decode_request(body)
    except FrameError as err:
        assert 400 <= err.status < 500 and err.message and "\n" not in err.message
        return
    assert 1 <= len(messages) <= MAX_FRAMES
    command_again, messages_again = decode_request(encode(command, messages))
    assert (command_again, messages_again) == (command, messages)


@given(st.integers(0, len(SEEDS) - 1), edits)
def test_mutated_bodies_decode_or_are_4xx(index: int, changes: list) -> None:
    _check_decoding(mutate(SEEDS[index], changes))


@given(st.binary(max_size=96))
def test_random_bodies_decode_or_are_4xx(data: bytes) -> None:
    _check_decoding(data)


@given(st.lists(st.tuples(st.integers(0, 65535), st.binary(max_size=24)), max_size=8))
def test_frames_of_any_command_and_payload(frames: list[tuple[int, bytes]]) -> None:
    _check_decoding(b"".join(frame(command, payload) for command, payload in frames))


# ------------------------------------------------------------------ a live server
@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[httpx.Client]:
    servers = new_store(tmp_path_factory.mktemp("kms-fuzz") / "store", pki)
    server = servers.start()
    with server.client(servers.admin) as client:
        for command, message in (
            (Command.ENCLAVE_CREATE, rq.CreateEnclaveRequest(Name=ENCLAVE)),
            (Command.KEY_CREATE, rq.CreateKeyRequest(Name=KEY)),
        ):
            path = "/v1/kms" if command == Command.ENCLAVE_CREATE else f"/v1/kms/{ENCLAVE}"
            assert client.post(path, content=encode(command, [message])).status_code == 200
        yield client
    server.stop()


@settings(max_examples=150)
@given(st.integers(0, len(SEEDS) - 1), edits)
def test_a_live_server_answers_mutated_bodies_with_200_or_4xx(
    admin: httpx.Client, index: int, changes: list
) -> None:
    body = mutate(SEEDS[index], changes)
    response = admin.post(f"/v1/kms/{ENCLAVE}", content=body)
    status = response.status_code
    assert status == 200 or 400 <= status < 500 or status == 501, (status, response.text)
    if status == 200:
        assert response.headers["content-type"] == "application/octet-stream"
    else:
        message = json_format.Parse(response.text, rs.ErrResponse()).Message
        assert message and "\n" not in message
    assert admin.get("/v1/health/live").status_code == 200
