"""The KMS API's commands: their numbers (as the kms-go client sends them), their
names (what audit lines and errors show) and the protobuf request each carries."""

from __future__ import annotations

import enum

from google.protobuf.message import Message

from pykes.kms.pb import request_pb2 as rq


class Command(enum.IntEnum):
    CLUSTER_ADD_NODE = 1
    CLUSTER_REMOVE_NODE = 2
    CLUSTER_STATUS = 3
    CLUSTER_EDIT = 4
    CLUSTER_ADD_HSM = 5
    CLUSTER_REMOVE_HSM = 6

    ENCLAVE_CREATE = 101
    ENCLAVE_DELETE = 102
    ENCLAVE_STATUS = 103
    ENCLAVE_LIST = 104

    KEY_CREATE = 201
    KEY_DELETE = 202
    KEY_IMPORT = 203
    KEY_STATUS = 204
    KEY_ENCRYPT = 205
    KEY_DECRYPT = 206
    KEY_GENERATE = 207
    KEY_LIST = 208
    KEY_LIST_VERSIONS = 209
    KEY_MAC = 210

    POLICY_CREATE = 301
    POLICY_DELETE = 302
    POLICY_ASSIGN = 303
    POLICY_GET = 304
    POLICY_STATUS = 305
    POLICY_LIST = 306

    IDENTITY_CREATE = 401
    IDENTITY_DELETE = 402
    IDENTITY_GET = 403
    IDENTITY_LIST = 404

    @property
    def text(self) -> str:
        """The command's name as the kms-go client spells it: ``KEY:GENERATE``, …"""
        return _TEXTS.get(self) or self.name.replace("_", ":", 1).replace("_", "")


_TEXTS = {Command.IDENTITY_GET: "IDENTITY:STATUS"}  # the one name not from its constant

REQUESTS: dict[Command, type[Message]] = {
    Command.CLUSTER_ADD_NODE: rq.AddClusterNodeRequest,
    Command.CLUSTER_REMOVE_NODE: rq.RemoveClusterNodeRequest,
    Command.CLUSTER_STATUS: rq.ClusterStatusRequest,
    Command.CLUSTER_EDIT: rq.EditClusterRequest,
    Command.CLUSTER_ADD_HSM: rq.AddHSMRequest,
    Command.CLUSTER_REMOVE_HSM: rq.RemoveHSMRequest,
    Command.ENCLAVE_CREATE: rq.CreateEnclaveRequest,
    Command.ENCLAVE_DELETE: rq.DeleteEnclaveRequest,
    Command.ENCLAVE_STATUS: rq.EnclaveStatusRequest,
    Command.ENCLAVE_LIST: rq.ListRequest,
    Command.KEY_CREATE: rq.CreateKeyRequest,
    Command.KEY_DELETE: rq.DeleteKeyRequest,
    Command.KEY_IMPORT: rq.ImportKeyRequest,
    Command.KEY_STATUS: rq.KeyStatusRequest,
    Command.KEY_ENCRYPT: rq.EncryptRequest,
    Command.KEY_DECRYPT: rq.DecryptRequest,
    Command.KEY_GENERATE: rq.GenerateKeyRequest,
    Command.KEY_LIST: rq.ListRequest,
    Command.KEY_LIST_VERSIONS: rq.ListRequest,
    Command.KEY_MAC: rq.MACRequest,
    Command.POLICY_CREATE: rq.CreatePolicyRequest,
    Command.POLICY_DELETE: rq.DeletePolicyRequest,
    Command.POLICY_ASSIGN: rq.AssignPolicyRequest,
    Command.POLICY_GET: rq.PolicyRequest,
    Command.POLICY_STATUS: rq.PolicyRequest,
    Command.POLICY_LIST: rq.ListRequest,
    Command.IDENTITY_CREATE: rq.CreateIdentityRequest,
    Command.IDENTITY_DELETE: rq.DeleteIdentityRequest,
    Command.IDENTITY_GET: rq.IdentityRequest,
    Command.IDENTITY_LIST: rq.ListRequest,
}
"""The request message of every command."""

LISTS = frozenset(
    (Command.ENCLAVE_LIST, Command.KEY_LIST, Command.KEY_LIST_VERSIONS, Command.POLICY_LIST,
     Command.IDENTITY_LIST)
)  # fmt: skip
"""Commands answered by exactly one frame: one per request."""
