"""The KMS API's bodies, without I/O: a body is one or more frames
``[u16 BE command][u32 BE length][protobuf message]`` of one command; its answer has one
frame per request frame (a list: exactly one), in order (docs/kms-api.md, "Frames").

Limits, checked before any message is decoded:

* ``MAX_BODY``: 1 MB, the KES API's body limit (Go's ``mem.MB``). The largest message
  a client needs is an encrypt plaintext; a batch of 64 generate commands is ~3 KB.
* ``MAX_FRAMES``: 256 commands per body. A batch runs on one worker without yielding
  between cheap commands (~15–50 µs each): 256 bounds the delay it adds to the
  worker's other requests to a few milliseconds; MinIO sends one, benches 64.
* ``MAX_MESSAGE``: one message is at most the body limit less its frame header; no
  lower bound is needed, since the whole body is already held in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from google.protobuf.message import DecodeError, Message

from pykes.errors import APIError
from pykes.kms.commands import LISTS, REQUESTS, Command

HEADER = struct.Struct(">HI")
HEADER_SIZE = HEADER.size  # 6
MAX_BODY = 1_000_000
MAX_FRAMES = 256
MAX_MESSAGE = MAX_BODY - HEADER_SIZE


class FrameError(APIError):
    """A body that is not a well-formed batch of one known command: a 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(status, message)


def body_too_large() -> FrameError:
    return FrameError("request body too large", 413)


def split(body: bytes, max_body: int = MAX_BODY) -> tuple[int, list[memoryview]]:
    """The command number of ``body``'s frames and their messages' bytes (views into
    ``body``): ``FrameError`` for an empty, truncated or mixed body, one larger than
    ``max_body`` (a client reads answers larger than requests), or one of more than
    ``MAX_FRAMES`` frames."""
    size = len(body)
    if size == 0:
        raise FrameError("invalid request: empty body")
    if size > max_body:
        raise body_too_large()
    view = memoryview(body)
    first = -1
    messages: list[memoryview] = []
    offset = 0
    while offset < size:
        if size - offset < HEADER_SIZE:
            raise FrameError("invalid request: truncated frame")
        command, length = HEADER.unpack_from(body, offset)
        offset += HEADER_SIZE
        if length > size - offset:
            raise FrameError("invalid request: truncated frame")
        if first < 0:
            first = command
        elif command != first:
            raise FrameError(
                f"invalid request: command {_text(command)} after {_text(first)}: "
                "a request holds one command"
            )
        if len(messages) == MAX_FRAMES:
            raise FrameError(f"invalid request: more than {MAX_FRAMES} commands")
        messages.append(view[offset : offset + length])
        offset += length
    return first, messages


def decode_request(body: bytes) -> tuple[Command, list[Message]]:
    """The command of a request body and its decoded request messages."""
    number, payloads = split(body)
    try:
        command = Command(number)
    except ValueError:
        raise FrameError(f"invalid request: unknown command {number}") from None
    if command in LISTS and len(payloads) > 1:
        raise FrameError(f"invalid request: {command.text} takes one command per request")
    message_type = REQUESTS[command]
    messages = []
    for payload in payloads:
        message = message_type()
        try:
            message.ParseFromString(payload)
        except DecodeError:
            raise FrameError(f"invalid request: malformed {command.text} message") from None
        messages.append(message)
    return command, messages


def frame(command: int, payload: bytes) -> bytes:
    """One frame: ``command``'s header and ``payload``, a serialized message."""
    return HEADER.pack(command, len(payload)) + payload


def encode(command: int, messages: Iterable[Message | None]) -> bytes:
    """A body of one frame per message (``None``: a frame without a message)."""
    parts = []
    for message in messages:
        payload = b"" if message is None else message.SerializeToString()
        parts.append(HEADER.pack(command, len(payload)))
        parts.append(payload)
    return b"".join(parts)


def _text(number: int) -> str:
    try:
        return Command(number).text
    except ValueError:
        return str(number)
