"""Shell completion (``kes completion bash|zsh``, Go's ``COMP_LINE`` protocol and
``kes --auto-completion``) in real shells, and help that a pager shows: ``-h`` prints
to stdout with exit 0, as plain text."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import kes_command
from pykes.cli import enclave, identity, key, main, policy
from pykes.cli.completion import TREE
from test_cli_support import clean_env, run_kes

KES = Path(sys.executable).parent / "kes"  # the entry point a user runs


def _bash_complete(*words: str) -> list[str]:
    """Source ``kes completion bash`` in a real bash and complete the last word."""
    array = " ".join(f"'{w}'" for w in words)
    script = (
        'source <("$KES" completion bash)\n'
        f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; COMPREPLY=()\n"
        "_kes\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = subprocess.run(
        ["bash", "--norc", "-c", script],
        env=clean_env(KES=str(KES)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line]


CASES = [
    (("kes", ""), list(TREE[""][0])),
    (("kes", "k"), ["key"]),
    (
        ("kes", "key", ""),
        ["create", "import", "info", "ls", "rm", "rotate", "encrypt", "decrypt", "dek"],
    ),
    (("kes", "key", "r"), ["rm", "rotate"]),
    (("kes", "enclave", ""), ["create", "info", "ls", "rm"]),
    (("kes", "enclave", "ls", "--"), ["--insecure", "--json", "--color", "--help"]),
    (("kes", "key", "decrypt", "--v"), ["--version"]),
    (("kes", "key", "ls", "--enclave", ""), []),
    (("kes", "key", "d"), ["decrypt", "dek"]),
    (("kes", "key", "create", "--"), ["--insecure", "--enclave", "--help"]),
    (("kes", "server", "--c"), ["--config", "--check"]),
    (("kes", "status", "--color", ""), ["auto", "never", "always"]),
    (("kes", "-k", "policy", "s"), ["show"]),
    (("kes", "server", "--addr", ""), []),
    (("kes", "completion", ""), ["bash", "zsh"]),
]


@pytest.mark.parametrize(("words", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bash_completion(words: tuple[str, ...], expected: list[str]) -> None:
    assert _bash_complete(*words) == expected


def test_bash_completes_file_names_after_config() -> None:
    here = Path(__file__).name
    assert here in _bash_complete("kes", "server", "--config", "test_cli_comp")


def test_go_comp_line_protocol() -> None:
    """What `complete -C kes kes` (Go's --auto-completion) makes bash run."""

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = clean_env(COMP_LINE=line, COMP_POINT=str(len(line)))
        r = subprocess.run(
            [str(KES), "kes", words[-1], words[-2]], env=env, capture_output=True, text=True
        )
        assert r.returncode == 0 and r.stderr == "", r.stderr
        return r.stdout.splitlines()

    assert complete("kes key c") == ["create"]
    assert complete("kes identity new --e") == ["--expiry", "--encrypt"]
    assert complete("kes ") == list(TREE[""][0])


def test_auto_completion_installs_go_lines_once(tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("# mine\n")
    (tmp_path / ".zshrc").write_text("")
    env = clean_env(HOME=str(tmp_path))
    first = subprocess.run([str(KES), "--auto-completion"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("Installed kes completion in") == 2
    line = f"complete -C {KES} kes"
    assert (tmp_path / ".bashrc").read_text() == f"# mine\n{line}\n"
    assert (tmp_path / ".zshrc").read_text() == (
        f"autoload -U +X bashcompinit && bashcompinit\n{line}\n"
    )
    again = subprocess.run([str(KES), "--auto-completion"], env=env, capture_output=True, text=True)
    assert again.stdout.count("already installed") == 2
    assert (tmp_path / ".bashrc").read_text().count(line) == 1
    # bash really registers it
    r = subprocess.run(
        ["bash", "-c", "source ~/.bashrc; complete -p kes"], env=env, capture_output=True, text=True
    )
    assert r.stdout.strip() == f"complete -C '{KES}' kes"


def test_auto_completion_without_rc_files_says_what_to_do(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(KES), "--auto-completion"],
        env=clean_env(HOME=str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "Use 'kes completion bash|zsh' instead" in r.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_loads_and_registers(tmp_path: Path) -> None:
    script = (
        "autoload -U compinit && compinit -u -d $HOME/.zcompdump\n"
        'source <("$KES" completion zsh)\n'
        "print -r -- ${_comps[kes]}\n"
        # bashcompinit calls the function with ksharrays set (0-based COMP_WORDS); its
        # compgen leaves matching the typed prefix to zsh, so all candidates come back
        "setopt ksharrays\n"
        "COMP_WORDS=(kes policy s); COMP_CWORD=2; _kes; print -r -- ${COMPREPLY[*]}\n"
        "COMP_WORDS=(kes log --); COMP_CWORD=2; _kes; print -r -- ${COMPREPLY[*]}\n"
    )
    r = subprocess.run(
        ["zsh", "-f", "-c", script],
        env=clean_env(KES=str(KES), HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "_bash_complete -o default -F _kes",
        "info ls show",
        "--audit --error --json --insecure --help",
    ]


def test_zsh_script_is_the_bash_function_under_bashcompinit() -> None:
    zsh = run_kes("completion", "zsh", env=clean_env()).stdout
    bash = run_kes("completion", "bash", env=clean_env()).stdout
    assert zsh.startswith("#compdef kes\n") and "bashcompinit" in zsh
    assert bash.split("\n", 1)[1] in zsh
    assert " path=" not in bash  # zsh ties $path to $PATH


def test_completion_usage_and_errors() -> None:
    r = run_kes("completion", "fish", env=clean_env())
    assert r.returncode == 1
    assert r.stderr == (
        "Error: unsupported shell 'fish': use bash or zsh. See 'kes completion --help'\n"
    )
    assert run_kes("completion", env=clean_env()).returncode == 2


# ------------------------------------------------------------------ the tree is the CLI
def _help(path: str) -> str:
    r = run_kes(*path.split(), "--help", env=clean_env())
    assert r.returncode == 0 and r.stderr == "", (path, r.stderr)
    return r.stdout


@pytest.mark.parametrize("path", list(TREE))
def test_completion_flags_are_the_help_flags(path: str) -> None:
    assert set(re.findall(r"--[a-z][-a-z]*", _help(path))) == set(TREE[path][1])


def test_completion_commands_are_the_dispatched_commands() -> None:
    assert set(TREE[""][0]) == set(main.COMMANDS) - {"update", "tool"}  # hidden: see USAGE
    groups = (("key", key), ("policy", policy), ("identity", identity), ("enclave", enclave))
    for group, module in groups:
        assert set(TREE[group][0]) == set(module.COMMANDS), group


# ------------------------------------------------------------------ help for a pager
@pytest.mark.parametrize(
    "args", [("--help",), ("-h",), ("key", "-h"), ("key", "ls", "--help"), ("server", "--help")]
)
def test_help_goes_to_stdout_as_plain_text(args: tuple[str, ...]) -> None:
    r = subprocess.run(
        [*kes_command(*args)], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.lower().startswith("usage:")
    assert "\x1b[" not in r.stdout


def test_help_through_a_pager() -> None:
    pager = shutil.which("cat")
    assert pager is not None
    r = subprocess.run(
        ["bash", "-c", f'"$KES" key --help | {pager}'],
        env=clean_env(KES=str(KES)),
        capture_output=True,
        text=True,
    )
    assert "kes key <command>" in r.stdout and r.returncode == 0


def test_missing_command_prints_usage_to_stderr() -> None:
    for args in ((), ("key",), ("policy",)):
        r = run_kes(*args, env=clean_env())
        assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("Usage:")
