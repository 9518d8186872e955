import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pykes.kms.pb import rule_pb2 as _rule_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrResponse(_message.Message):
    __slots__ = ("Message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    Message: str
    def __init__(self, Message: _Optional[str] = ...) -> None: ...

class VersionResponse(_message.Message):
    __slots__ = ("Version", "Commit", "APIVersion", "Host", "FIPS140")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    APIVERSION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    FIPS140_FIELD_NUMBER: _ClassVar[int]
    Version: str
    Commit: str
    APIVersion: str
    Host: str
    FIPS140: bool
    def __init__(self, Version: _Optional[str] = ..., Commit: _Optional[str] = ..., APIVersion: _Optional[str] = ..., Host: _Optional[str] = ..., FIPS140: _Optional[bool] = ...) -> None: ...

class ServerStatusResponse(_message.Message):
    __slots__ = ("Version", "APIVersion", "Host", "UpTime", "Role", "Commit", "Nodes", "ID", "LeaderID", "LastHeartbeat", "HeartbeatInterval", "ElectionTimeout", "OS", "Arch", "CPUs", "UsableCPUs", "HeapMemInUse", "StackMemInUse", "HSMs", "ConfiguredHSMs")
    class NodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APIVERSION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LEADERID_FIELD_NUMBER: _ClassVar[int]
    LASTHEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEATINTERVAL_FIELD_NUMBER: _ClassVar[int]
    ELECTIONTIMEOUT_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    USABLECPUS_FIELD_NUMBER: _ClassVar[int]
    HEAPMEMINUSE_FIELD_NUMBER: _ClassVar[int]
    STACKMEMINUSE_FIELD_NUMBER: _ClassVar[int]
    HSMS_FIELD_NUMBER: _ClassVar[int]
    CONFIGUREDHSMS_FIELD_NUMBER: _ClassVar[int]
    Version: str
    APIVersion: str
    Host: str
    UpTime: _duration_pb2.Duration
    Role: str
    Commit: int
    Nodes: _containers.ScalarMap[int, str]
    ID: int
    LeaderID: int
    LastHeartbeat: _duration_pb2.Duration
    HeartbeatInterval: _duration_pb2.Duration
    ElectionTimeout: _duration_pb2.Duration
    OS: str
    Arch: str
    CPUs: int
    UsableCPUs: int
    HeapMemInUse: int
    StackMemInUse: int
    HSMs: _containers.RepeatedScalarFieldContainer[str]
    ConfiguredHSMs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, Version: _Optional[str] = ..., APIVersion: _Optional[str] = ..., Host: _Optional[str] = ..., UpTime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., Role: _Optional[str] = ..., Commit: _Optional[int] = ..., Nodes: _Optional[_Mapping[int, str]] = ..., ID: _Optional[int] = ..., LeaderID: _Optional[int] = ..., LastHeartbeat: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., HeartbeatInterval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., ElectionTimeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., OS: _Optional[str] = ..., Arch: _Optional[str] = ..., CPUs: _Optional[int] = ..., UsableCPUs: _Optional[int] = ..., HeapMemInUse: _Optional[int] = ..., StackMemInUse: _Optional[int] = ..., HSMs: _Optional[_Iterable[str]] = ..., ConfiguredHSMs: _Optional[_Iterable[str]] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("NodesUp", "NodesDown")
    class NodesUpEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: ServerStatusResponse
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[ServerStatusResponse, _Mapping]] = ...) -> None: ...
    class NodesDownEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    NODESUP_FIELD_NUMBER: _ClassVar[int]
    NODESDOWN_FIELD_NUMBER: _ClassVar[int]
    NodesUp: _containers.MessageMap[int, ServerStatusResponse]
    NodesDown: _containers.ScalarMap[int, str]
    def __init__(self, NodesUp: _Optional[_Mapping[int, ServerStatusResponse]] = ..., NodesDown: _Optional[_Mapping[int, str]] = ...) -> None: ...

class EnclaveStatusResponse(_message.Message):
    __slots__ = ("Name", "CreatedAt", "CreatedBy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATEDAT_FIELD_NUMBER: _ClassVar[int]
    CREATEDBY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    CreatedAt: _timestamp_pb2.Timestamp
    CreatedBy: str
    def __init__(self, Name: _Optional[str] = ..., CreatedAt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., CreatedBy: _Optional[str] = ...) -> None: ...

class ListEnclavesResponse(_message.Message):
    __slots__ = ("Enclaves", "ContinueAt")
    ENCLAVES_FIELD_NUMBER: _ClassVar[int]
    CONTINUEAT_FIELD_NUMBER: _ClassVar[int]
    Enclaves: _containers.RepeatedCompositeFieldContainer[EnclaveStatusResponse]
    ContinueAt: str
    def __init__(self, Enclaves: _Optional[_Iterable[_Union[EnclaveStatusResponse, _Mapping]]] = ..., ContinueAt: _Optional[str] = ...) -> None: ...

class KeyStatusResponse(_message.Message):
    __slots__ = ("Name", "Version", "Type", "CreatedAt", "CreatedBy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATEDAT_FIELD_NUMBER: _ClassVar[int]
    CREATEDBY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Version: int
    Type: str
    CreatedAt: _timestamp_pb2.Timestamp
    CreatedBy: str
    def __init__(self, Name: _Optional[str] = ..., Version: _Optional[int] = ..., Type: _Optional[str] = ..., CreatedAt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., CreatedBy: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("Keys", "ContinueAt")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CONTINUEAT_FIELD_NUMBER: _ClassVar[int]
    Keys: _containers.RepeatedCompositeFieldContainer[KeyStatusResponse]
    ContinueAt: str
    def __init__(self, Keys: _Optional[_Iterable[_Union[KeyStatusResponse, _Mapping]]] = ..., ContinueAt: _Optional[str] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ("Version", "Ciphertext")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    Version: int
    Ciphertext: bytes
    def __init__(self, Version: _Optional[int] = ..., Ciphertext: _Optional[bytes] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ("Plaintext",)
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    Plaintext: bytes
    def __init__(self, Plaintext: _Optional[bytes] = ...) -> None: ...

class GenerateKeyResponse(_message.Message):
    __slots__ = ("Version", "Plaintext", "Ciphertext")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    Version: int
    Plaintext: bytes
    Ciphertext: bytes
    def __init__(self, Version: _Optional[int] = ..., Plaintext: _Optional[bytes] = ..., Ciphertext: _Optional[bytes] = ...) -> None: ...

class MACResponse(_message.Message):
    __slots__ = ("Version", "MAC")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    Version: int
    MAC: bytes
    def __init__(self, Version: _Optional[int] = ..., MAC: _Optional[bytes] = ...) -> None: ...

class PolicyStatusResponse(_message.Message):
    __slots__ = ("Name", "CreatedAt", "CreatedBy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATEDAT_FIELD_NUMBER: _ClassVar[int]
    CREATEDBY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    CreatedAt: _timestamp_pb2.Timestamp
    CreatedBy: str
    def __init__(self, Name: _Optional[str] = ..., CreatedAt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., CreatedBy: _Optional[str] = ...) -> None: ...

class PolicyResponse(_message.Message):
    __slots__ = ("Name", "Allow", "Deny", "CreatedAt", "CreatedBy")
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
    CREATEDAT_FIELD_NUMBER: _ClassVar[int]
    CREATEDBY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Allow: _containers.MessageMap[str, _rule_pb2.RuleSet]
    Deny: _containers.MessageMap[str, _rule_pb2.RuleSet]
    CreatedAt: _timestamp_pb2.Timestamp
    CreatedBy: str
    def __init__(self, Name: _Optional[str] = ..., Allow: _Optional[_Mapping[str, _rule_pb2.RuleSet]] = ..., Deny: _Optional[_Mapping[str, _rule_pb2.RuleSet]] = ..., CreatedAt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., CreatedBy: _Optional[str] = ...) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("Policies", "ContinueAt")
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    CONTINUEAT_FIELD_NUMBER: _ClassVar[int]
    Policies: _containers.RepeatedCompositeFieldContainer[PolicyStatusResponse]
    ContinueAt: str
    def __init__(self, Policies: _Optional[_Iterable[_Union[PolicyStatusResponse, _Mapping]]] = ..., ContinueAt: _Optional[str] = ...) -> None: ...

class IdentityResponse(_message.Message):
    __slots__ = ("Identity", "Privilege", "Policy", "CreatedAt", "CreatedBy", "IsServiceAccount", "ServiceAccounts", "Tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CREATEDAT_FIELD_NUMBER: _ClassVar[int]
    CREATEDBY_FIELD_NUMBER: _ClassVar[int]
    ISSERVICEACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SERVICEACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    Identity: str
    Privilege: int
    Policy: str
    CreatedAt: _timestamp_pb2.Timestamp
    CreatedBy: str
    IsServiceAccount: bool
    ServiceAccounts: _containers.RepeatedScalarFieldContainer[str]
    Tags: _containers.ScalarMap[str, str]
    def __init__(self, Identity: _Optional[str] = ..., Privilege: _Optional[int] = ..., Policy: _Optional[str] = ..., CreatedAt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., CreatedBy: _Optional[str] = ..., IsServiceAccount: _Optional[bool] = ..., ServiceAccounts: _Optional[_Iterable[str]] = ..., Tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListIdentitiesResponse(_message.Message):
    __slots__ = ("Identities", "ContinueAt")
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    CONTINUEAT_FIELD_NUMBER: _ClassVar[int]
    Identities: _containers.RepeatedCompositeFieldContainer[IdentityResponse]
    ContinueAt: str
    def __init__(self, Identities: _Optional[_Iterable[_Union[IdentityResponse, _Mapping]]] = ..., ContinueAt: _Optional[str] = ...) -> None: ...
