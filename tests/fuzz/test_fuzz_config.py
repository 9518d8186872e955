"""Fuzzing the config loader (``pykes.config.load_config``).

Property: any file content — mutated sample configs of docs/compat/config.md, random YAML
documents built from the config's own vocabulary, random bytes, legacy TOML — either
loads to a ``ServerConfig`` or raises ``ConfigError`` with a non-empty one-line
message. Any other exception (or a multi-line message) is a bug.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzz_corpus import corpus, edits, mutate, with_examples
from pykes.config import ServerConfig, load_config
from pykes.errors import ConfigError

SEEDS = corpus("config")
ENV = {"KES_FUZZ": "fuzz", "EMPTY": "", "MULTI": "a\nb", "NUM": "42", "DUR": "5m"}
WORKDIR = Path(tempfile.mkdtemp(prefix="pykes-fuzz-config-"))
YAML_TOKENS = (
    b": ", b"- ", b"&a ", b"*a", b"<<: *a", b"!!binary ", b"!!int ", b"!!float ", b"!!timestamp ",
    b"!!set ", b"!!python/name:os.system ", b"? ", b"|\n", b">\n", b"---\n", b"...\n",
    b"%YAML 1.1\n", b"${KES_FUZZ}", b"${MISSING}", b"${MULTI}", b"${", b"\t", b"~", b"[]", b"{}",
    b"0x1F", b"1_000", b".inf", b"yes", b"-1h", b"9999999999h", b"\xef\xbb\xbf", b"#",
)  # fmt: skip

TOML_TOKENS = (b"=", b"[", b"]", b"[[", b"{", b"}", b'"', b"'''", b"07:32:00", b"1979-05-27",
               b"1979-05-27T07:32:00Z", b"inf", b"nan", b"0x1F", b"true", b"\n[a]\n")  # fmt: skip


def _load(data: bytes, suffix: str = ".yml") -> ServerConfig | None:
    path = WORKDIR / f"config{suffix}"
    path.write_bytes(data)
    try:
        return load_config(str(path), ENV)
    except ConfigError as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return None


@with_examples([{"index": i, "changes": []} for i in range(len(SEEDS))])
@given(index=st.integers(0, len(SEEDS) - 1), changes=edits)
def test_mutated_sample_configs(index: int, changes: list) -> None:
    name, data = SEEDS[index]
    toml = name.endswith(".toml")
    _load(mutate(data, changes, TOML_TOKENS if toml else YAML_TOKENS), Path(name).suffix)


VALUES = ("", "~", "null", "on", "off", "yes", "5m", "-5m", "0", "1e3", "0x10", "v2", "[]", "{}",
          "'quoted'", '"a\\nb"', "${KES_FUZZ}", "${EMPTY}", "${MISSING}", "${MULTI}", "&x v",
          "*x", "!!binary aGk=", "!!str 1", "|", "[a, b]", "{a: b}", "127.0.0.1:0", "::1",
          "/v1/key/*", "disabled", "9" * 30 + "h")  # fmt: skip
line_edits = st.lists(
    st.tuples(
        st.sampled_from(("delete", "duplicate", "indent", "dedent", "value", "swap")),
        st.integers(0, 200),
        st.sampled_from(VALUES),
    ),
    max_size=5,
)


def _edit_lines(text: str, changes: list[tuple[str, int, str]]) -> str:
    """Line-level edits that keep most of a document's YAML shape: drop, repeat,
    re-indent, swap lines, or replace the value after a key's colon."""
    lines = text.split("\n")
    for kind, at, value in changes:
        i = at % len(lines)
        if kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "indent":
            lines[i] = "  " + lines[i]
        elif kind == "dedent":
            lines[i] = lines[i].removeprefix("  ")
        elif kind == "swap":
            j = (i + 1) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "value" and ":" in lines[i]:
            lines[i] = lines[i].split(":", 1)[0] + ": " + value
    return "\n".join(lines)


YAML_SEEDS = [i for i, (name, _) in enumerate(SEEDS) if not name.endswith(".toml")]


@with_examples([{"index": i, "changes": []} for i in YAML_SEEDS])
@given(index=st.sampled_from(YAML_SEEDS), changes=line_edits)
def test_line_edited_sample_configs(index: int, changes: list) -> None:
    _load(_edit_lines(SEEDS[index][1].decode(), changes).encode())


# ------------------------------------------------------ structured random documents
SECTIONS: dict[str, Any] = {
    "version": None,
    "address": None,
    "admin": {"identity": None},
    "tls": {"key": None, "cert": None, "ca": None, "password": None, "auth": None,
            "proxy": {"identities": None, "header": {"cert": None}}},
    "policy": {"my-app": {"allow": None, "deny": None, "identities": None, "paths": None}},
    "cache": {"expiry": {"any": None, "unused": None, "offline": None, "all": None}},
    "api": {"/v1/status": {"skip_auth": None, "timeout": None}, "legacy": None},
    "log": {"error": None, "audit": None},
    "keys": None,
    "keystore": {"fs": {"path": None}, "vault": {"endpoint": None, "engine": None,
                 "approle": {"id": None, "secret": None}, "prefix": None}},
    "root": None,
}  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["on", "off", "v1", "5m", "1h30m", "-1s", "0", "${KES_FUZZ}", "${NOPE}",
                     "127.0.0.1:7373", "[::1]:7373", ":7373", "disabled", "/tmp/x", "*"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _shaped(template: Any) -> st.SearchStrategy[Any]:
    """A value following the config's layout, with random leaves and random intrusions."""
    if isinstance(template, dict):
        return (
            st.fixed_dictionaries({}, optional={k: _shaped(v) for k, v in template.items()})
            | values
        )
    return values


@given(doc=_shaped(SECTIONS), style=st.sampled_from([False, True, None]))
def test_structured_random_configs(doc: Any, style: bool | None) -> None:
    try:
        text = yaml.safe_dump(doc, default_flow_style=style, allow_unicode=True)
    except yaml.YAMLError:
        return
    _load(text.encode())


@given(data=st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _load(data)
