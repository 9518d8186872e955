"""``kes identity [new|of|info|ls]`` and the bare ``kes identity [<api-key|file>]``
forms (docs/compat/cli.md §6, auth.md §8)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text

from pykes.cli.common import (
    ENCLAVE_HELP,
    ArgumentParser,
    CLIError,
    check_arguments,
    dispatch,
    flag_color,
    flag_enclave,
    flag_insecure,
    flag_json,
    go_quote,
    split_list,
)
from pykes.cli.connect import new_client, read_password, reported
from pykes.cli.key import list_names
from pykes.cli.output import clock, colorize, console, is_terminal, print_json, styled, write
from pykes.client import Client
from pykes.pki import (
    APIKey,
    encrypt_private_key_pem_legacy,
    identity_of_certificate,
    new_identity_certificate,
)
from pykes.pki.apikey import ECDSA_API_KEY_PREFIX, KMS_API_KEY_PREFIX
from pykes.pki.identity import decode_pem_blocks

USAGE = """Usage:
    kes identity                          Generate a new API key.
    kes identity <api-key | file>         Compute an identity (or the API key of a key file).
    kes identity <command>

Commands:
    new                      Create a new KES identity.
    of                       Compute a KES identity from an API key or certificate.
    info                     Get information about a KES identity.
    ls                       List KES identities.

Options:
    -h, --help               Print command line options.
"""

NEW_USAGE = """Usage:
    kes identity new [options] [<subject>]

Options:
    --key <PATH>             Path to private key.
    --cert <PATH>            Path to certificate.
    -f, --force              Overwrite an existing private key and/or certificate.

    --ip <IP>                Add <IP> as subject alternative name. (SAN)
    --dns <DOMAIN>           Add <DOMAIN> as subject alternative name. (SAN)
    --expiry <DURATION>      Duration until the certificate expires. (default: 720h)
    --encrypt                Encrypt the private key with a password.
    --kms                    Print the API key as a KMS API key (k1:…), as
                             MinIO's MINIO_KMS_API_KEY and 'kes migrate' take it.

    -h, --help               Print command line options.

Examples:
    $ kes identity new
    $ kes identity new --kms
    $ kes identity new --key client.key --cert client.crt --ip 127.0.0.1 Client-1
"""

OF_USAGE = """Usage:
    kes identity of <api-key>
    kes identity of <certificate>

Options:
    -h, --help               Print command line options.
"""

_REMOTE_USAGE = """Usage:
    kes identity {name} [options] [<{arg}>]

Options:
    -k, --insecure           Skip TLS certificate validation.
        --json               Print output in JSON format.
        --color <when>       Specify when to use colored output: auto, never, always.
"""
_REMOTE_USAGE += ENCLAVE_HELP + "\n    -h, --help               Print command line options.\n"

DEFAULT_EXPIRY = 720 * 3600.0


def _bold(text: str, color: bool) -> Text:
    return styled(text, "bold", color)


def _emit(lines: list[str | Text]) -> None:
    """Print lines; rich Text objects keep their style on a colour terminal."""
    out = console(colorize("auto"))
    for line in lines:
        out.print(line)


def _show_value(title: str, value: str) -> None:
    """Terminal: ``<title>:`` + the value in bold; otherwise the raw value, no newline."""
    if not is_terminal():
        write(value)
        return
    _emit([f"{title}:", "", Text("   ").append_text(_bold(value, colorize("auto")))])


# ------------------------------------------------------------------ new
@dataclass
class _Files:
    key: str
    cert: str
    force: bool
    encrypt: bool
    ips: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    expiry: float = DEFAULT_EXPIRY
    subject: str | None = None


def _check_ips(values: list[str]) -> list[str]:
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise CLIError(
                f'invalid argument {go_quote(value)} for "--ip" flag: invalid string being '
                f"converted to IP address: {value}. See 'kes identity new --help'"
            ) from None
    return values


def _expiry(value: str | None) -> float:
    from pykes.goformat.duration import DurationError, parse_duration_ns

    if value is None:
        return 0.0
    try:
        return parse_duration_ns(value) / 1e9
    except DurationError as err:
        raise CLIError(
            f'invalid argument {go_quote(value)} for "--expiry" flag: {err}. '
            "See 'kes identity new --help'"
        ) from None


def _new_password() -> bytes:
    password = read_password("Enter password for private key: ")
    confirm = read_password("Confirm password for private key: ")
    if password != confirm:
        raise CLIError("passwords don't match")
    return password.encode()


def _write_files(files: _Files, key: APIKey) -> None:
    if not files.force:
        if os.path.exists(files.key):
            raise CLIError("private key already exists. Use --force to overwrite it")
        if os.path.exists(files.cert):
            raise CLIError("certificate already exists. Use --force to overwrite it")
    cert_pem, key_pem, _ = new_identity_certificate(
        subject=files.subject,
        ips=files.ips,
        dns=files.dns,
        expiry_seconds=files.expiry,
        private_key=key.private_key,
    )
    if files.encrypt:
        key_pem = encrypt_private_key_pem_legacy(key_pem, _new_password())
    try:
        fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # also when overwriting an existing file
            f.write(key_pem)
    except OSError as err:
        raise CLIError(f"failed to create private key: {err.strerror}") from None
    try:
        fd = os.open(files.cert, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem)
    except OSError as err:
        os.remove(files.key)
        raise CLIError(f"failed to create certificate: {err.strerror}") from None


def _print_new(key: APIKey, files: _Files | None, kms: bool = False) -> None:
    color = colorize("auto")
    secret = key.kms_text() if kms else str(key)
    lines: list[str | Text] = [
        "Your API key:",
        "",
        Text("   ").append_text(_bold(secret, color)),
        "",
        "This is the only time it is shown. Keep it secret and secure!",
        "",
        "Your Identity:",
        "",
        Text("   ").append_text(_bold(key.identity, color)),
        "",
        "The identity is not a secret. It can be shared. Any peer",
        "needs this identity in order to verify your API key.",
    ]
    if files is not None:
        lines += [
            "",
            f"The generated TLS private key is stored at: {files.key}",
            f"The generated TLS certificate is stored at: {files.cert}",
        ]
    lines += ["", "The identity can be computed again via:", "", f"    kes identity of {secret}"]
    if files is not None:
        lines.append(f"    kes identity of {files.cert}")
    _emit(lines)


def new(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes identity new", usage_text=NEW_USAGE)
    p.add_argument("--key", default="")
    p.add_argument("--cert", default="")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--ip", action="append")
    p.add_argument("--dns", action="append")
    p.add_argument("--expiry", default=None)
    p.add_argument("--encrypt", action="store_true")
    p.add_argument("--kms", action="store_true")
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    check_arguments(args.args, "kes identity new", most=1)
    if args.key and not args.cert:
        raise CLIError("private key file specified but no certificate file. Set the '--cert' flag")
    if args.cert and not args.key:
        raise CLIError("certificate file specified but no private key file. Set the '--key' flag")
    ips, dns, expiry = _check_ips(split_list(args.ip)), split_list(args.dns), _expiry(args.expiry)
    if not args.key:
        for flag, used in (
            ("--encrypt", args.encrypt),
            ("--force", args.force),
            ("--expiry", expiry > 0),
            ("--ip", ips),
            ("--dns", dns),
        ):
            if used:
                raise CLIError(
                    f"'{flag}' requires a private key and certificate file. "
                    "Set the '--cert' and '--key' flag"
                )
    key = APIKey.generate()
    files: _Files | None = None
    if args.key:
        files = _Files(
            key=args.key,
            cert=args.cert,
            force=args.force,
            encrypt=args.encrypt,
            ips=ips,
            dns=dns,
            expiry=expiry if expiry > 0 else DEFAULT_EXPIRY,
            subject=args.args[0] if args.args else None,
        )
        _write_files(files, key)
    _print_new(key, files, args.kms)
    return 0


# ------------------------------------------------------------------ of / bare forms
def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        raise CLIError(f"open {path}: {reason}") from None


def _certificate_identity(path: str, data: bytes) -> str | None:
    for block in decode_pem_blocks(data):
        if block.type == "CERTIFICATE":
            try:
                return identity_of_certificate(block.der)
            except ValueError as err:
                raise CLIError(f"failed to parse certificate in '{path}': {err}") from None
    return None


_API_KEY_PREFIXES = ("kes:v1:", KMS_API_KEY_PREFIX, ECDSA_API_KEY_PREFIX)


def identity_of(value: str) -> str:
    """The identity of an API key (``kes:v1:…``, a KMS API key ``k1:…`` or ``k2:…``)
    or of a PEM certificate file."""
    if value.startswith(_API_KEY_PREFIXES):
        try:
            return APIKey.parse(value).identity
        except ValueError as err:
            raise CLIError(str(err)) from None
    identity = _certificate_identity(value, _read(value))
    if identity is None:
        raise CLIError(f"failed to parse certificate in '{value}': no PEM-encoded certificate")
    return identity


def of(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes identity of", usage_text=OF_USAGE)
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    check_arguments(args.args, "kes identity of", ("API key or certificate",), most=1)
    _show_value("Identity", identity_of(args.args[0]))
    return 0


def _api_key_of_file(path: str, data: bytes) -> str | None:
    """The API key of a PKCS#8 Ed25519 private key file, else None."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for block in decode_pem_blocks(data):
        if block.type != "PRIVATE KEY":
            continue
        if block.headers.get("Proc-Type") == "4,ENCRYPTED":
            raise CLIError(f"failed to parse private key in '{path}': the key is encrypted")
        try:
            key = serialization.load_der_private_key(block.der, password=None)
        except (ValueError, TypeError) as err:
            raise CLIError(f"failed to parse private key in '{path}': {err}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CLIError(f"failed to parse private key in '{path}': not an Ed25519 key")
        return str(APIKey(key))
    return None


def convert(argv: Sequence[str]) -> int:
    """``kes identity <api-key | certificate | Ed25519 private key file>``."""
    check_arguments(argv, "kes identity", most=1)
    value = argv[0]
    if value.startswith(_API_KEY_PREFIXES):
        _show_value("Identity", identity_of(value))
        return 0
    data = _read(value)
    identity = _certificate_identity(value, data)
    if identity is not None:
        _show_value("Identity", identity)
        return 0
    api_key = _api_key_of_file(value, data)
    if api_key is None:
        raise CLIError(f"'{value}' contains neither a certificate nor an Ed25519 private key")
    _show_value("API key", api_key)
    return 0


def generate() -> int:
    """Bare ``kes identity``: a new API key."""
    key = APIKey.generate()
    if is_terminal():
        _print_new(key, None)
    else:
        write(str(key))
    return 0


# ------------------------------------------------------------------ info / ls
def _remote_parser(name: str, arg: str) -> ArgumentParser:
    p = ArgumentParser(
        prog=f"kes identity {name}", usage_text=_REMOTE_USAGE.format(name=name, arg=arg)
    )
    flag_insecure(p)
    flag_enclave(p)
    flag_json(p)
    flag_color(p)
    p.add_argument("args", nargs="*")
    return p


def _row(label: str, value: str | Text, color: bool) -> Text:
    line = styled(f"{label:<11}", "bold dim", color)
    line.append(" ")
    line.append_text(value if isinstance(value, Text) else Text(value))
    return line


def info(argv: Sequence[str]) -> int:
    args = _remote_parser("info", "identity").parse(argv)
    check_arguments(args.args, "kes identity info", most=1)
    color = colorize(args.color)
    with new_client(args.insecure, enclave=args.enclave) as client, reported():
        if args.args:
            ident = client.describe_identity(args.args[0])
            policy = None
        else:
            ident, policy = client.describe_self()
    if args.json:
        # Difference: the Go CLI accepts --json but ignores it.
        out = ident.to_json()
        if policy is not None and ident.policy:
            out.update({k: v for k, v in policy.to_json().items() if k in ("allow", "deny")})
        print_json(out)
        return 0
    lines: list[str | Text] = [_row("Identity", styled(ident.identity, "blue", color), color)]
    if args.args and ident.policy:
        lines.append(_row("Policy", styled(ident.policy, "yellow", color), color))
    lines.append(_row("Created At", clock(ident.created_at), color))
    lines.append(_row("Role", "Admin" if ident.is_admin else "User", color))
    if ident.created_by:
        lines.append(_row("Created By", ident.created_by, color))
    if policy is not None and ident.policy:
        lines += ["", _row("Policy", styled(ident.policy, "yellow", color), color)]
        for title, patterns, dot in (
            ("Allow", policy.allow, "green"),
            ("Deny", policy.deny, "red"),
        ):
            if patterns:
                lines.append(styled(title, "bold dim", color))
                for pattern in patterns:
                    bullet = Text(" " * 12)
                    bullet.append("·", style=dot if color else "")
                    bullet.append(f" {pattern}")
                    lines.append(bullet)
    out_console = console(color)
    for line in lines:
        out_console.print(line)
    return 0


def ls(argv: Sequence[str]) -> int:
    args = _remote_parser("ls", "pattern").parse(argv)
    return list_names(args, "identity", "identities", "Identity", "", Client.list_identities)


COMMANDS = {"new": new, "of": of, "info": info, "ls": ls}


def run(argv: Sequence[str]) -> int:
    if not argv:
        return generate()
    if argv[0] in COMMANDS or argv[0].startswith("-"):
        return dispatch("identity", argv, COMMANDS, USAGE)
    return convert(argv)
