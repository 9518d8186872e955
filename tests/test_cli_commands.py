"""``kes ls``, ``kes policy …`` and the top level of ``kes`` (docs/compat/cli.md §1, §5, §7)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator

import pytest

from conftest import PKI
from pykes import __version__
from pykes.cli.common import CLIError
from test_cli_support import (
    READER_ALLOW,
    READER_DENY,
    KesServer,
    clean_env,
    error_line,
    run_kes,
    start_kes,
)


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("cli-commands"), pki)
    with server.client() as c:
        for name in ("ls-1", "ls-2", "other"):
            c.create_key(name)
    yield server
    server.stop()


def test_ls(kes: KesServer) -> None:
    assert kes.kes("ls").stdout == "Key\nls-1\nls-2\nother\n"
    assert kes.kes("ls", "ls").stdout == "Key\nls-1\nls-2\n"
    assert kes.kes("ls", "--json", "o").stdout == '["other"]\n'
    assert kes.kes("ls", "-p").stdout == "Policy\nreader\nunused\n"
    r = kes.kes("ls", "-i", "--json")
    assert json.loads(r.stdout) == sorted([kes.admin.identity, kes.user.identity])
    assert error_line(kes.kes("ls", "-i", "-p")) == (
        "'-p / --policy' and '-i / --identity' must not be used at the same time"
    )
    # -s / -a override the env vars
    env = clean_env(SSL_CERT_FILE=str(kes.server.pki.server_cert))
    r = run_kes("ls", "-s", kes.endpoint, "-a", str(kes.admin), "--json", env=env)
    assert json.loads(r.stdout) == ["ls-1", "ls-2", "other"]


def test_policy_commands(kes: KesServer) -> None:
    r = kes.kes("policy", "ls")
    assert r.stdout == "Policy\nreader\nunused\n"  # header fixed (Go says "Key")
    assert kes.kes("policy", "ls", "--json", "re*").stdout == '["reader"]\n'

    r = kes.kes("policy", "info", "reader", "--json")
    info = json.loads(r.stdout)
    assert info["name"] == "reader" and info["created_by"] == kes.admin.identity
    lines = kes.kes("policy", "info", "reader").stdout.splitlines()
    assert lines[0] == "Name        reader"
    assert lines[2] == f"Created by  {kes.admin.identity}"

    shown = json.loads(kes.kes("policy", "show", "reader").stdout)  # non-terminal: JSON
    assert shown["allow"] == {p: {} for p in READER_ALLOW}
    assert shown["deny"] == {p: {} for p in READER_DENY}
    assert shown["created_by"] == kes.admin.identity
    assert error_line(kes.kes("policy", "show", "missing")) == (
        "failed to show policy: policy does not exist"
    )
    assert error_line(kes.kes("policy", "info", "reader", api_key=kes.user)) == (
        "failed to describe policy: not authorized: insufficient permissions"
    )


def test_top_level() -> None:
    env = clean_env()
    r = run_kes("--version", env=env)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 4
    assert lines[0].split()[:2] == ["Version", __version__]
    assert [line.split()[0] for line in lines] == ["Version", "Runtime", "License", "Copyright"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # aligned values

    for args in ((), ("-h",), ("--help",)):
        r = run_kes(*args, env=env)
        # Asked-for help goes to stdout, exit 0 (a pager shows it); a missing command
        # prints the usage to stderr, exit 2 (as Go does for both).
        usage, other = (r.stdout, r.stderr) if args else (r.stderr, r.stdout)
        assert r.returncode == (0 if args else 2) and other == ""
        assert usage.startswith("Usage:\n    kes [options] <command>")
        for command in ("server", "ls", "key", "policy", "identity", "log", "status", "metric"):
            assert f"    {command} " in usage
    assert error_line(run_kes("frob", env=env)) == (
        "\"frob\" is not a kes command. See 'kes --help'"
    )
    assert error_line(run_kes("policy", "rm", "x", env=env)) == (
        "\"rm\" is not a policy command. See 'kes policy --help'"
    )
    assert "not supported" in error_line(run_kes("update", env=env))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["key", "import"], "no key name specified. See 'kes key import --help'"),
        (["key", "import", "a", "b", "c"], "too many arguments. See 'kes key import --help'"),
        (["key", "info"], "no key name specified. See 'kes key info --help'"),
        (["key", "info", "a", "b"], "too many arguments. See 'kes key info --help'"),
        (["key", "ls", "a", "b"], "too many arguments. See 'kes key ls --help'"),
        (["key", "encrypt"], "no key name specified. See 'kes key encrypt --help'"),
        (["key", "encrypt", "a", "b", "c"], "too many arguments. See 'kes key encrypt --help'"),
        (["key", "decrypt"], "no key name specified. See 'kes key decrypt --help'"),
        (["key", "decrypt", "a"], "no ciphertext specified. See 'kes key decrypt --help'"),
        (["key", "decrypt", *"abcd"], "too many arguments. See 'kes key decrypt --help'"),
        (["key", "dek"], "no key name specified. See 'kes key dek --help'"),
        (["key", "dek", "a", "b", "c"], "too many arguments. See 'kes key dek --help'"),
        (["policy", "info"], "no policy name specified. See 'kes policy info --help'"),
        (["policy", "info", "a", "b"], "too many arguments. See 'kes policy info --help'"),
        (["policy", "ls", "a", "b"], "too many arguments. See 'kes policy ls --help'"),
        (["identity", "new", "a", "b"], "too many arguments. See 'kes identity new --help'"),
        (["identity", "of", "a", "b"], "too many arguments. See 'kes identity of --help'"),
        (["identity", "info", "a", "b"], "too many arguments. See 'kes identity info --help'"),
        (["identity", "ls", "a", "b"], "too many arguments. See 'kes identity ls --help'"),
        (["identity", "a", "b"], "too many arguments. See 'kes identity --help'"),
        (
            ["tool", "identity", "of", "a", "b"],
            "too many arguments. See 'kes tool identity of --help'",
        ),
        (["log", "a"], "too many arguments. See 'kes log --help'"),
        (["metric", "a"], "too many arguments. See 'kes metric --help'"),
    ],
)
def test_argument_count_errors(argv: list[str], message: str) -> None:
    """The Go CLI's texts for missing and surplus arguments, raised before any connection
    (the commands run in-process: no server is needed)."""
    command = importlib.import_module(f"pykes.cli.{argv[0]}")
    with pytest.raises(CLIError) as failure:
        command.run(argv[1:])
    assert str(failure.value) == message
