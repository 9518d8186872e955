"""The KMS API's generated protobuf modules: current with their .proto files, and
carrying the field numbers and types the kms-go client puts on the wire."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pykes.kms.commands import LISTS, REQUESTS, Command
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_modules_are_what_make_proto_generates(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)
    assert len(generated) == 6  # three .proto files, a _pb2.py and a _pb2.pyi each
    committed = ROOT / "src/pykes/kms/pb"
    for path in generated:
        mine = committed / path.name
        assert mine.exists(), f"{path.name} is not committed: run `make proto`"
        assert mine.read_bytes() == path.read_bytes(), f"{path.name} is stale: run `make proto`"


@pytest.mark.parametrize(
    ("message", "hex_wire"),
    [
        # Field numbers and wire types as the kms-go client encodes them.
        (rq.GenerateKeyRequest(Name="k", Version=2, AssociatedData=b"a", Length=64),
         "0a016b10021a01612040"),
        (rq.DecryptRequest(Name="k", Version=1, Ciphertext=b"c", AssociatedData=b"a"),
         "0a016b10011a0163220161"),
        (rq.DeleteKeyRequest(Name="k", Version=3, AllVersions=True), "0a016b10031801"),
        (rq.CreateKeyRequest(Name="k", Type="AES256", AddVersion=True),
         "0a016b1206414553323536" "1801"),
        (rq.ListRequest(Prefix="p", ContinueAt="c", Limit=5), "0a017012016318" "05"),
        (rs.GenerateKeyResponse(Version=1, Plaintext=b"p", Ciphertext=b"c"), "0801120170" "1a0163"),
        (rs.ErrResponse(Message="x"), "0a0178"),
        (rs.KeyStatusResponse(Name="k", Version=1, Type="AES256", CreatedBy="h1:x"),
         "0a016b1001" "1a06414553323536" "2a0468313a78"),
    ],
)  # fmt: skip
def test_messages_have_the_clients_wire_format(message, hex_wire: str) -> None:
    assert message.SerializeToString().hex() == hex_wire
    again = type(message)()
    again.ParseFromString(bytes.fromhex(hex_wire))
    assert again == message


def test_every_command_has_a_request_message_and_the_clients_name() -> None:
    assert set(REQUESTS) == set(Command)
    assert Command(207).text == "KEY:GENERATE"
    assert Command(209).text == "KEY:LISTVERSIONS"
    assert Command(403).text == "IDENTITY:STATUS"
    assert Command(1).text == "CLUSTER:ADDNODE"
    assert {c.value for c in LISTS} == {104, 208, 209, 306, 404}


def test_json_names_are_the_clients() -> None:
    fields = {f.name: f.json_name for f in rs.ServerStatusResponse.DESCRIPTOR.fields}
    assert fields["ID"] == "node_id" and fields["OS"] == "sys_os"
    assert rs.ErrResponse.DESCRIPTOR.fields_by_name["Message"].json_name == "message"
