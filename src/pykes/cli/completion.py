"""Shell completion for ``kes`` (bash and zsh).

``kes completion bash|zsh`` prints a script that completes from a word list baked into
it (no ``kes`` process per Tab). Go's ``kes`` completes by being re-invoked by the
shell (``complete -C kes kes``, with ``COMP_LINE``/``COMP_POINT`` set, docs/compat/cli.md §1);
that protocol is answered too, so a shell set up for Go's binary keeps completing, and
``kes --auto-completion`` installs it in ``~/.bashrc`` / ``~/.zshrc`` as Go's does.
This module imports nothing heavy: it runs on every Tab of the ``-C`` protocol.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

#: command path → (its sub-commands, its flags); the flags are those of the command's
#: ``--help`` text (a test keeps the two equal).
TREE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "": (
        (
            "server",
            "ls",
            "key",
            "policy",
            "identity",
            "enclave",
            "store",
            "log",
            "status",
            "metric",
            "migrate",
            "completion",
        ),
        ("--version", "--help", "--auto-completion"),
    ),
    "server": ((), ("--addr", "--config", "--check", "--dev", "--stateful", "--workers", "--help")),
    "ls": (
        (),
        ("--api-key", "--insecure", "--json", "--identity", "--policy", "--server", "--enclave"),
    ),
    "key": (
        ("create", "import", "info", "ls", "rm", "rotate", "encrypt", "decrypt", "dek"),
        ("--help",),
    ),
    "key create": ((), ("--insecure", "--enclave", "--help")),
    "key import": ((), ("--insecure", "--enclave", "--help")),
    "key info": ((), ("--insecure", "--json", "--color", "--enclave", "--help")),
    "key ls": ((), ("--insecure", "--json", "--color", "--enclave", "--help")),
    "key rm": ((), ("--insecure", "--enclave", "--help")),
    "key rotate": ((), ("--insecure", "--enclave", "--help")),
    "key encrypt": ((), ("--insecure", "--enclave", "--help")),
    "key decrypt": ((), ("--insecure", "--enclave", "--version", "--help")),
    "key dek": ((), ("--insecure", "--enclave", "--help")),
    "policy": (("info", "ls", "show"), ("--help",)),
    "policy info": ((), ("--insecure", "--json", "--color", "--enclave", "--help")),
    "policy ls": ((), ("--insecure", "--json", "--color", "--enclave", "--help")),
    "policy show": ((), ("--insecure", "--json", "--enclave", "--help")),
    "identity": (("new", "of", "info", "ls"), ("--help",)),
    "identity new": (
        (),
        ("--key", "--cert", "--ip", "--dns", "--expiry", "--encrypt", "--kms", "--force", "--help"),
    ),
    "identity of": ((), ("--help",)),
    "identity info": ((), ("--insecure", "--json", "--color", "--enclave", "--help")),
    "identity ls": ((), ("--insecure", "--json", "--color", "--enclave", "--help")),
    "enclave": (("create", "info", "ls", "rm"), ("--help",)),
    "enclave create": ((), ("--insecure", "--help")),
    "enclave info": ((), ("--insecure", "--json", "--color", "--help")),
    "enclave ls": ((), ("--insecure", "--json", "--color", "--help")),
    "enclave rm": ((), ("--insecure", "--force", "--help")),
    "store": (("backup",), ("--help",)),
    "store backup": ((), ("--config", "--help")),
    "log": ((), ("--audit", "--error", "--json", "--insecure", "--help")),
    "status": ((), ("--short", "--api", "--json", "--color", "--insecure", "--help")),
    "metric": ((), ("--rate", "--insecure", "--help")),
    "migrate": (
        (),
        (
            "--from",
            "--to",
            "--create-enclave",
            "--merge",
            "--force",
            "--server",
            "--enclave",
            "--api-key",
            "--insecure",
        ),
    ),
    "completion": (("bash", "zsh"), ("--help",)),
}

#: flags whose value is a file name (the shell completes files after them)
FILE_FLAGS = frozenset(("--config", "--from", "--to", "--key", "--cert"))
#: flags that take a value of another kind (nothing is completed after them); ``kes
#: --version`` takes none, but nothing follows it either
VALUE_FLAGS = frozenset(
    ("--addr", "--workers", "--api-key", "--server", "--enclave", "--color", "--rate")
    + ("--ip", "--dns", "--expiry", "--version")
)
COLORS = ("auto", "never", "always")


def command_path(words: Sequence[str]) -> str:
    """The deepest command of ``TREE`` named by ``words`` (flags and their values are
    skipped; the first other word that is not a sub-command ends the path)."""
    path = ""
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = "=" not in word and (word in FILE_FLAGS or word in VALUE_FLAGS)
            continue
        subcommands = TREE.get(path, ((), ()))[0]
        if word not in subcommands:
            break
        path = f"{path} {word}".strip()
    return path


def complete(words: Sequence[str], current: str) -> list[str]:
    """Completions of ``current`` after ``words`` (the words before it, without ``kes``).
    An empty list after a file flag: the shell completes file names itself."""
    previous = words[-1] if words else ""
    if previous in FILE_FLAGS:
        return []
    if previous == "--color":
        return [c for c in COLORS if c.startswith(current)]
    if previous in VALUE_FLAGS:
        return []
    subcommands, flags = TREE.get(command_path(words), ((), ()))
    if current.startswith("-"):
        return [f for f in flags if f.startswith(current)]
    return [s for s in subcommands if s.startswith(current)]


# ------------------------------------------------------------------ scripts
_BASH = """# bash completion for kes (pykes); generated by `kes completion bash`
_kes() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local kes_path="" word i skip=0  # not "path": zsh ties that name to $PATH
    case "$prev" in
        {file_flags}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --color) COMPREPLY=($(compgen -W "{colors}" -- "$cur")); return ;;
        {value_flags}) COMPREPLY=(); return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            {skip_flags}) skip=1; continue ;;
            -*) continue ;;
        esac
        case "$kes_path:$word" in
{path_cases}
            *) break ;;
        esac
    done
    local subcommands="" flags=""
    case "$kes_path" in
{word_cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
    fi
}}
complete -o default -F _kes kes
"""

_ZSH_PREAMBLE = """#compdef kes
# zsh completion for kes (pykes); generated by `kes completion zsh`
autoload -U +X bashcompinit && bashcompinit
"""


def bash_script() -> str:
    path_cases = []
    word_cases = []
    for path, (subcommands, flags) in TREE.items():
        for sub in subcommands:
            child = f"{path} {sub}".strip()
            path_cases.append(f'            "{path}:{sub}") kes_path="{child}" ;;')
        word_cases.append(
            f'        "{path}") subcommands="{" ".join(subcommands)}" flags="{" ".join(flags)}" ;;'
        )
    return _BASH.format(
        file_flags="|".join(sorted(FILE_FLAGS)),
        value_flags="|".join(sorted(VALUE_FLAGS - {"--color"})),
        skip_flags="|".join(sorted(FILE_FLAGS | VALUE_FLAGS)),
        colors=" ".join(COLORS),
        path_cases="\n".join(path_cases),
        word_cases="\n".join(word_cases),
    )


def zsh_script() -> str:
    """zsh runs the bash function through its bashcompinit layer."""
    return _ZSH_PREAMBLE + bash_script().split("\n", 1)[1]


SCRIPTS = {"bash": bash_script, "zsh": zsh_script}

USAGE = """Usage:
    kes completion bash|zsh

Print a shell completion script for kes. Load it in the current shell:

    source <(kes completion bash)        # bash
    source <(kes completion zsh)         # zsh

or save it where your shell finds completions, e.g.
    kes completion bash > ~/.local/share/bash-completion/completions/kes

Options:
    -h, --help               Print command line options.
"""


def run(argv: Sequence[str]) -> int:
    """``kes completion bash|zsh``."""
    from pykes.cli.common import CLIError, show_usage

    if not argv or argv[0] in ("-h", "--help"):
        return show_usage(USAGE, asked=bool(argv))
    if len(argv) != 1 or argv[0] not in SCRIPTS:
        raise CLIError(
            f"unsupported shell {argv[0]!r}: use bash or zsh. See 'kes completion --help'"
        )
    sys.stdout.write(SCRIPTS[argv[0]]())
    return 0


# ------------------------------------------------------------------ Go's -C protocol
def answer_shell(environ: dict[str, str] | os._Environ[str]) -> bool:
    """If the shell invoked us to complete (``complete -C kes kes``: ``COMP_LINE`` and
    ``COMP_POINT`` set), print the completions one per line and return True."""
    line, point = environ.get("COMP_LINE"), environ.get("COMP_POINT")
    if line is None or point is None:
        return False
    try:
        before = line[: int(point)]
    except ValueError:
        before = line
    try:
        words = shlex.split(before)
    except ValueError:  # an open quote: complete nothing
        return True
    current = "" if not words or before.endswith((" ", "\t")) else words.pop()
    for match in complete(words[1:], current):
        print(match)
    return True


def install(kes_binary: str, home: Path | None = None) -> list[str]:
    """``kes --auto-completion``: add Go's lines to ``~/.bashrc`` and ``~/.zshrc``
    (those that exist); returns a sentence per file. Nothing is added twice."""
    home = Path.home() if home is None else home
    quoted = shlex.quote(kes_binary)
    shells = {
        ".bashrc": [f"complete -C {quoted} kes"],
        ".zshrc": ["autoload -U +X bashcompinit && bashcompinit", f"complete -C {quoted} kes"],
    }
    done: list[str] = []
    for name, lines in shells.items():
        rc = home / name
        if not rc.is_file():
            continue
        text = rc.read_text(errors="replace")
        missing = [line for line in lines if line not in text.splitlines()]
        if not missing:
            done.append(f"kes completion is already installed in {rc}")
            continue
        with rc.open("a") as file:
            file.write(
                ("" if text.endswith("\n") or not text else "\n") + "\n".join(missing) + "\n"
            )
        done.append(f"Installed kes completion in {rc} (open a new shell to use it)")
    return done
