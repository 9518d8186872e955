import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pykes.kms.pb import rule_pb2 as _rule_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddClusterNodeRequest(_message.Message):
    __slots__ = ("Host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    Host: str
    def __init__(self, Host: _Optional[str] = ...) -> None: ...

class RemoveClusterNodeRequest(_message.Message):
    __slots__ = ("Host", "DeleteClusterOnHost")
    HOST_FIELD_NUMBER: _ClassVar[int]
    DELETECLUSTERONHOST_FIELD_NUMBER: _ClassVar[int]
    Host: str
    DeleteClusterOnHost: bool
    def __init__(self, Host: _Optional[str] = ..., DeleteClusterOnHost: _Optional[bool] = ...) -> None: ...

class EditClusterRequest(_message.Message):
    __slots__ = ("Host", "RemoveIDs")
    HOST_FIELD_NUMBER: _ClassVar[int]
    REMOVEIDS_FIELD_NUMBER: _ClassVar[int]
    Host: str
    RemoveIDs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, Host: _Optional[str] = ..., RemoveIDs: _Optional[_Iterable[int]] = ...) -> None: ...

class AddHSMRequest(_message.Message):
    __slots__ = ("Name", "Overwrite")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Overwrite: bool
    def __init__(self, Name: _Optional[str] = ..., Overwrite: _Optional[bool] = ...) -> None: ...

class RemoveHSMRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("Prefix", "ContinueAt", "Limit")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CONTINUEAT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    Prefix: str
    ContinueAt: str
    Limit: int
    def __init__(self, Prefix: _Optional[str] = ..., ContinueAt: _Optional[str] = ..., Limit: _Optional[int] = ...) -> None: ...

class CreateEnclaveRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class DeleteEnclaveRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class EnclaveStatusRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class LogRequest(_message.Message):
    __slots__ = ("Level", "Message", "Since", "TraceLevel")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    TRACELEVEL_FIELD_NUMBER: _ClassVar[int]
    Level: int
    Message: str
    Since: _timestamp_pb2.Timestamp
    TraceLevel: int
    def __init__(self, Level: _Optional[int] = ..., Message: _Optional[str] = ..., Since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., TraceLevel: _Optional[int] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("Name", "Type", "AddVersion")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ADDVERSION_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Type: str
    AddVersion: bool
    def __init__(self, Name: _Optional[str] = ..., Type: _Optional[str] = ..., AddVersion: _Optional[bool] = ...) -> None: ...

class ImportKeyRequest(_message.Message):
    __slots__ = ("Name", "Type", "Key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Type: str
    Key: bytes
    def __init__(self, Name: _Optional[str] = ..., Type: _Optional[str] = ..., Key: _Optional[bytes] = ...) -> None: ...

class DeleteKeyRequest(_message.Message):
    __slots__ = ("Name", "Version", "AllVersions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLVERSIONS_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    AllVersions: bool
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ..., AllVersions: _Optional[bool] = ...) -> None: ...

class KeyStatusRequest(_message.Message):
    __slots__ = ("Name", "Version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ("Name", "Version", "Plaintext", "AssociatedData")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATEDDATA_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    Plaintext: bytes
    AssociatedData: bytes
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ..., Plaintext: _Optional[bytes] = ..., AssociatedData: _Optional[bytes] = ...) -> None: ...

class GenerateKeyRequest(_message.Message):
    __slots__ = ("Name", "Version", "AssociatedData", "Length")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATEDDATA_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    AssociatedData: bytes
    Length: int
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ..., AssociatedData: _Optional[bytes] = ..., Length: _Optional[int] = ...) -> None: ...

class MACRequest(_message.Message):
    __slots__ = ("Name", "Version", "Message")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    Message: bytes
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ..., Message: _Optional[bytes] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ("Name", "Version", "Ciphertext", "AssociatedData")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATEDDATA_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    Ciphertext: bytes
    AssociatedData: bytes
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ..., Ciphertext: _Optional[bytes] = ..., AssociatedData: _Optional[bytes] = ...) -> None: ...

class CreatePolicyRequest(_message.Message):
    __slots__ = ("Name", "Allow", "Deny")
    class AllowEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _rule_pb2.RuleSet
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_rule_pb2.RuleSet, _Mapping]] = ...) -> None: ...
    class DenyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _rule_pb2.RuleSet
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_rule_pb2.RuleSet, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Allow: _containers.MessageMap[str, _rule_pb2.RuleSet]
    Deny: _containers.MessageMap[str, _rule_pb2.RuleSet]
    def __init__(self, Name: _Optional[str] = ..., Allow: _Optional[_Mapping[str, _rule_pb2.RuleSet]] = ..., Deny: _Optional[_Mapping[str, _rule_pb2.RuleSet]] = ...) -> None: ...

class PolicyRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class DeletePolicyRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class AssignPolicyRequest(_message.Message):
    __slots__ = ("Identity", "Policy")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    Identity: str
    Policy: str
    def __init__(self, Identity: _Optional[str] = ..., Policy: _Optional[str] = ...) -> None: ...

class CreateIdentityRequest(_message.Message):
    __slots__ = ("Identity", "Privilege", "IsServiceAccount", "Tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGE_FIELD_NUMBER: _ClassVar[int]
    ISSERVICEACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    Identity: str
    Privilege: str
    IsServiceAccount: bool
    Tags: _containers.ScalarMap[str, str]
    def __init__(self, Identity: _Optional[str] = ..., Privilege: _Optional[str] = ..., IsServiceAccount: _Optional[bool] = ..., Tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IdentityRequest(_message.Message):
    __slots__ = ("Identity",)
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    Identity: str
    def __init__(self, Identity: _Optional[str] = ...) -> None: ...

class DeleteIdentityRequest(_message.Message):
    __slots__ = ("Identity",)
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    Identity: str
    def __init__(self, Identity: _Optional[str] = ...) -> None: ...
