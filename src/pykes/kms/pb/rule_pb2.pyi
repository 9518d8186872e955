from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Rule(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RuleSet(_message.Message):
    __slots__ = ("Rules",)
    class RulesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Rule
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...
    RULES_FIELD_NUMBER: _ClassVar[int]
    Rules: _containers.MessageMap[str, Rule]
    def __init__(self, Rules: _Optional[_Mapping[str, Rule]] = ...) -> None: ...
