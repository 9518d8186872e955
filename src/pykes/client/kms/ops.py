"""The KMS API's requests and answers, without I/O, shared by
:class:`~pykes.client.kms.KMSClient` and :class:`~pykes.client.kms.AsyncKMSClient`:
each call is an :class:`~pykes.client.ops.Op` the SDK's transports send as any other.

A request is ``POST /v1/kms[/<enclave>]`` with frames of one command; its answer has one
frame per command, in order (a list: one). Answers are the protocol's generated
messages (:mod:`pykes.kms.pb.response_pb2`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from pykes.client.errors import ResponseError
from pykes.client.kms.errors import BINARY, batch_error, error_from_response
from pykes.client.ops import MiB, Op, Reply
from pykes.kms import identity as kms_identity
from pykes.kms.commands import LISTS, REQUESTS, Command
from pykes.kms.frames import MAX_FRAMES, FrameError, encode, split
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.kms.pb import rule_pb2

PATH = "/v1/kms"
#: the kms-go client's headers: a binary body, an answer in protobuf or JSON
HEADERS = (("Content-Type", BINARY), ("Accept", "application/*"))
#: an answer's limit: a request is at most 1 MB, its answer (ciphertexts of its
#: plaintexts, up to 256 data keys of 1 KiB in two forms) is not much larger
LIMIT = 2 * MiB

Rules = Mapping[str, Iterable[str]]
"""A policy's rules: ``{command name: name patterns}``."""

#: what each command answers (None: an empty frame)
ANSWERS: dict[Command, type[Message] | None] = {
    Command.CLUSTER_ADD_NODE: None,
    Command.CLUSTER_REMOVE_NODE: None,
    Command.CLUSTER_STATUS: rs.ClusterStatusResponse,
    Command.CLUSTER_EDIT: None,
    Command.CLUSTER_ADD_HSM: None,
    Command.CLUSTER_REMOVE_HSM: None,
    Command.ENCLAVE_CREATE: None,
    Command.ENCLAVE_DELETE: None,
    Command.ENCLAVE_STATUS: rs.EnclaveStatusResponse,
    Command.ENCLAVE_LIST: rs.ListEnclavesResponse,
    Command.KEY_CREATE: None,
    Command.KEY_DELETE: None,
    Command.KEY_IMPORT: None,
    Command.KEY_STATUS: rs.KeyStatusResponse,
    Command.KEY_ENCRYPT: rs.EncryptResponse,
    Command.KEY_DECRYPT: rs.DecryptResponse,
    Command.KEY_GENERATE: rs.GenerateKeyResponse,
    Command.KEY_LIST: rs.ListKeysResponse,
    Command.KEY_LIST_VERSIONS: rs.ListKeysResponse,
    Command.KEY_MAC: rs.MACResponse,
    Command.POLICY_CREATE: None,
    Command.POLICY_DELETE: None,
    Command.POLICY_ASSIGN: None,
    Command.POLICY_GET: rs.PolicyResponse,
    Command.POLICY_STATUS: rs.PolicyStatusResponse,
    Command.POLICY_LIST: rs.ListPoliciesResponse,
    Command.IDENTITY_CREATE: None,
    Command.IDENTITY_DELETE: None,
    Command.IDENTITY_GET: rs.IdentityResponse,
    Command.IDENTITY_LIST: rs.ListIdentitiesResponse,
}


def path(command: Command, enclave: str) -> str:
    """Where ``command`` goes: enclave commands to ``/v1/kms``, the others to the
    enclave's path (``/v1/kms`` too without one: the server's ``default``)."""
    if command < Command.KEY_CREATE or not enclave:
        return PATH
    return f"{PATH}/{enclave}"


def batch(enclave: str, command: Command, requests: Sequence[Message]) -> Op[list[Any]]:
    """One request of ``requests``, all messages of ``command``; its answer is one
    message per request, in order (``None`` for commands that answer nothing). One
    failing command fails the request: its error is raised, noting the batch."""
    command = Command(command)
    count = len(requests)
    if not 1 <= count <= (1 if command in LISTS else MAX_FRAMES):
        most = 1 if command in LISTS else MAX_FRAMES
        raise ValueError(f"kms: a request holds 1 to {most} {command.text} commands, not {count}")
    expected = REQUESTS[command]
    for request in requests:
        if type(request) is not expected:
            raise TypeError(
                f"kms: {command.text} takes {expected.__name__}, not {type(request).__name__}"
            )
    answer = ANSWERS[command]

    def parse(reply: Reply) -> list[Any]:
        ok(reply)
        try:
            number, payloads = split(reply.body, LIMIT)
        except FrameError as err:
            raise ResponseError(f"kms: invalid response: {err.message}") from None
        if number != command or len(payloads) != count:
            raise ResponseError(
                f"kms: invalid response: {len(payloads)} frames of command {number} "
                f"for {count} {command.text} commands"
            )
        if answer is None:
            return [None] * count
        return [_decode(answer, payload) for payload in payloads]

    return Op(
        "POST",
        path(command, enclave),
        parse,
        encode(command, requests),
        HEADERS,
        LIMIT,
        batch_error(count, command.text),
    )


def one(enclave: str, command: Command, request: Message) -> Op[Any]:
    """A request of one command; its answer is the one message (or ``None``)."""
    op = batch(enclave, command, [request])
    return dataclasses.replace(op, parse=lambda reply: op.parse(reply)[0])


def ok(reply: Reply) -> None:
    """Success is exactly 200 (kms-go's ``StatusOK``); any other status is an error."""
    if reply.status != 200:
        raise error_from_response(reply.status, reply.content_type, reply.body)


def _decode(answer: type[Message], payload: bytes | memoryview) -> Any:
    message = answer()
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise ResponseError(f"kms: invalid response: malformed {answer.__name__}") from None
    return message


# ----------------------------------------------------------------------- server
def _version(reply: Reply) -> rs.VersionResponse:
    ok(reply)
    if reply.content_type.split(";")[0].strip() == BINARY:
        return _decode(rs.VersionResponse, reply.body)  # type: ignore[no-any-return]
    try:  # JSON, as a KES server answers
        return json_format.Parse(reply.body, rs.VersionResponse(), ignore_unknown_fields=True)
    except json_format.ParseError as err:
        raise ResponseError(f"kms: invalid version response: {err}") from None


def version() -> Op[rs.VersionResponse]:
    return Op("GET", "/version", _version, None, (("Accept", "application/*"),), 64 << 10,
              error_from_response)  # fmt: skip


def _alive(reply: Reply) -> bool:
    ok(reply)
    return True


def live() -> Op[bool]:
    return Op("GET", "/v1/health/live", _alive, error=error_from_response)


def ready(write: bool = False) -> Op[bool]:
    target = "/v1/health/ready?write" if write else "/v1/health/ready"
    return Op("GET", target, _alive, error=error_from_response)


# ----------------------------------------------------------------------- messages
def list_request(prefix: str, continue_at: str, limit: int) -> rq.ListRequest:
    return rq.ListRequest(Prefix=prefix, ContinueAt=continue_at, Limit=limit)


def rule_sets(rules: Rules | None) -> dict[str, rule_pb2.RuleSet]:
    """``{command name: patterns}`` as a policy's rule sets."""
    return {
        command: rule_pb2.RuleSet(Rules={pattern: rule_pb2.Rule() for pattern in patterns})
        for command, patterns in (rules or {}).items()
    }


def h1(identity: str) -> str:
    """An identity in the KMS API's ``h1:`` spelling; a KES (hex) identity is converted."""
    if identity.startswith(kms_identity.PREFIX):
        return identity
    return kms_identity.from_kes(identity) or identity


# ----------------------------------------------------------------------- enclaves
def cluster_status() -> Op[rs.ClusterStatusResponse]:
    return one("", Command.CLUSTER_STATUS, rq.ClusterStatusRequest())


def create_enclave(name: str) -> Op[None]:
    return one("", Command.ENCLAVE_CREATE, rq.CreateEnclaveRequest(Name=name))


def delete_enclave(name: str) -> Op[None]:
    return one("", Command.ENCLAVE_DELETE, rq.DeleteEnclaveRequest(Name=name))


def enclave_status(name: str) -> Op[rs.EnclaveStatusResponse]:
    return one("", Command.ENCLAVE_STATUS, rq.EnclaveStatusRequest(Name=name))


def list_enclaves(prefix: str, continue_at: str, limit: int) -> Op[rs.ListEnclavesResponse]:
    return one("", Command.ENCLAVE_LIST, list_request(prefix, continue_at, limit))


# ----------------------------------------------------------------------- keys
def create_key(enclave: str, name: str, key_type: str, add_version: bool) -> Op[None]:
    request = rq.CreateKeyRequest(Name=name, Type=key_type, AddVersion=add_version)
    return one(enclave, Command.KEY_CREATE, request)


def import_key(enclave: str, name: str, key: bytes, key_type: str) -> Op[None]:
    request = rq.ImportKeyRequest(Name=name, Type=key_type, Key=key)
    return one(enclave, Command.KEY_IMPORT, request)


def delete_key(enclave: str, name: str, version: int, all_versions: bool) -> Op[None]:
    request = rq.DeleteKeyRequest(Name=name, Version=version, AllVersions=all_versions)
    return one(enclave, Command.KEY_DELETE, request)


def key_status(enclave: str, name: str, version: int) -> Op[rs.KeyStatusResponse]:
    return one(enclave, Command.KEY_STATUS, rq.KeyStatusRequest(Name=name, Version=version))


def encrypt(
    enclave: str, name: str, plaintext: bytes, associated_data: bytes, version: int
) -> Op[rs.EncryptResponse]:
    request = rq.EncryptRequest(
        Name=name, Version=version, Plaintext=plaintext, AssociatedData=associated_data
    )
    return one(enclave, Command.KEY_ENCRYPT, request)


def decrypt(
    enclave: str, name: str, ciphertext: bytes, version: int, associated_data: bytes
) -> Op[rs.DecryptResponse]:
    request = rq.DecryptRequest(
        Name=name, Version=version, Ciphertext=ciphertext, AssociatedData=associated_data
    )
    return one(enclave, Command.KEY_DECRYPT, request)


def generate_key(
    enclave: str, name: str, associated_data: bytes, length: int, version: int
) -> Op[rs.GenerateKeyResponse]:
    request = rq.GenerateKeyRequest(
        Name=name, Version=version, AssociatedData=associated_data, Length=length
    )
    return one(enclave, Command.KEY_GENERATE, request)


def mac(enclave: str, name: str, message: bytes, version: int) -> Op[rs.MACResponse]:
    request = rq.MACRequest(Name=name, Version=version, Message=message)
    return one(enclave, Command.KEY_MAC, request)


def list_keys(enclave: str, prefix: str, continue_at: str, limit: int) -> Op[rs.ListKeysResponse]:
    return one(enclave, Command.KEY_LIST, list_request(prefix, continue_at, limit))


def list_key_versions(
    enclave: str, name: str, continue_at: str, limit: int
) -> Op[rs.ListKeysResponse]:
    return one(enclave, Command.KEY_LIST_VERSIONS, list_request(name, continue_at, limit))


# ----------------------------------------------------------------------- policies
def create_policy(
    enclave: str,
    name: str,
    allow: Rules | None,
    deny: Rules | None,
) -> Op[None]:
    request = rq.CreatePolicyRequest(Name=name, Allow=rule_sets(allow), Deny=rule_sets(deny))
    return one(enclave, Command.POLICY_CREATE, request)


def delete_policy(enclave: str, name: str) -> Op[None]:
    return one(enclave, Command.POLICY_DELETE, rq.DeletePolicyRequest(Name=name))


def assign_policy(enclave: str, identity: str, policy: str) -> Op[None]:
    request = rq.AssignPolicyRequest(Identity=h1(identity), Policy=policy)
    return one(enclave, Command.POLICY_ASSIGN, request)


def get_policy(enclave: str, name: str) -> Op[rs.PolicyResponse]:
    return one(enclave, Command.POLICY_GET, rq.PolicyRequest(Name=name))


def policy_status(enclave: str, name: str) -> Op[rs.PolicyStatusResponse]:
    return one(enclave, Command.POLICY_STATUS, rq.PolicyRequest(Name=name))


def list_policies(
    enclave: str, prefix: str, continue_at: str, limit: int
) -> Op[rs.ListPoliciesResponse]:
    return one(enclave, Command.POLICY_LIST, list_request(prefix, continue_at, limit))


# ----------------------------------------------------------------------- identities
def create_identity(enclave: str, identity: str, privilege: str) -> Op[None]:
    request = rq.CreateIdentityRequest(Identity=h1(identity), Privilege=privilege)
    return one(enclave, Command.IDENTITY_CREATE, request)


def delete_identity(enclave: str, identity: str) -> Op[None]:
    request = rq.DeleteIdentityRequest(Identity=h1(identity))
    return one(enclave, Command.IDENTITY_DELETE, request)


def identity_status(enclave: str, identity: str) -> Op[rs.IdentityResponse]:
    return one(enclave, Command.IDENTITY_GET, rq.IdentityRequest(Identity=h1(identity)))


def list_identities(
    enclave: str, prefix: str, continue_at: str, limit: int
) -> Op[rs.ListIdentitiesResponse]:
    return one(enclave, Command.IDENTITY_LIST, list_request(prefix, continue_at, limit))
