"""One-line config errors: a message that quotes a config value holding a line break
(``auth: "x\ny"``, a policy name, a path) would otherwise span several lines of the
start-up output. Line breaks are shown escaped; every other message is left as is."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pykes.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def one_line(message: str) -> str:
    return message.translate(_ESCAPES)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Re-raise a :class:`ConfigError` whose message has a line break with it escaped."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as err:
            message = str(err)
            if one_line(message) == message:
                raise
            raise ConfigError(one_line(message)) from None

    return wrapper
