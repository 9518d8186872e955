"""The KMS API's frames without a server: splitting, decoding and encoding bodies, and
the 4xx of every malformed, truncated, unknown, mixed or oversize one."""

from __future__ import annotations

import pytest

from pykes.kms.commands import Command
from pykes.kms.frames import (
    MAX_BODY,
    MAX_FRAMES,
    FrameError,
    decode_request,
    encode,
    frame,
    split,
)
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs

GENERATE = Command.KEY_GENERATE


def test_a_frame_is_command_length_message() -> None:
    body = encode(GENERATE, [rq.GenerateKeyRequest(Name="k")])
    assert body == bytes.fromhex("00cf 00000003 0a016b")


def test_a_body_of_several_frames_decodes_in_order() -> None:
    names = [f"k{i}" for i in range(5)]
    body = encode(GENERATE, [rq.GenerateKeyRequest(Name=n) for n in names])
    command, messages = decode_request(body)
    assert command is GENERATE
    assert [m.Name for m in messages] == names


def test_an_empty_message_is_a_frame_of_length_zero() -> None:
    body = encode(Command.KEY_CREATE, [None, rs.ErrResponse()])
    assert body == frame(201, b"") * 2
    assert [len(m) for m in split(body)[1]] == [0, 0]


def _error(body: bytes) -> FrameError:
    with pytest.raises(FrameError) as info:
        decode_request(body)
    return info.value


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"", 400, "invalid request: empty body"),
        (b"\x00\xcf\x00\x00", 400, "invalid request: truncated frame"),
        (frame(207, b"\x0a\x01k")[:-1], 400, "invalid request: truncated frame"),
        (frame(207, b"") + b"\x00", 400, "invalid request: truncated frame"),
        (frame(7, b""), 400, "invalid request: unknown command 7"),
        (frame(65535, b""), 400, "invalid request: unknown command 65535"),
        (frame(207, b"") + frame(206, b""), 400,
         "invalid request: command KEY:DECRYPT after KEY:GENERATE: a request holds one command"),
        (frame(207, b"") + frame(9, b""), 400,
         "invalid request: command 9 after KEY:GENERATE: a request holds one command"),
        (frame(207, b"\xff\xff\xff"), 400, "invalid request: malformed KEY:GENERATE message"),
        (frame(207, b"\x0a\x02\xff\xfe"), 400, "invalid request: malformed KEY:GENERATE message"),
        (frame(208, b"") * 2, 400, "invalid request: KEY:LIST takes one command per request"),
        (frame(207, b"") * (MAX_FRAMES + 1), 400,
         f"invalid request: more than {MAX_FRAMES} commands"),
        (frame(205, bytes(MAX_BODY)), 413, "request body too large"),
    ],
)  # fmt: skip
def test_bad_bodies_are_4xx_with_their_text(body: bytes, status: int, text: str) -> None:
    err = _error(body)
    assert (err.status, err.message) == (status, text)


def test_the_limits_themselves_are_accepted() -> None:
    assert len(decode_request(frame(207, b"") * MAX_FRAMES)[1]) == MAX_FRAMES
    largest = frame(205, rq.EncryptRequest(Plaintext=bytes(MAX_BODY - 12)).SerializeToString())
    assert len(largest) <= MAX_BODY
    assert len(decode_request(largest)[1][0].Plaintext) == MAX_BODY - 12
