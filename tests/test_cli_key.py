"""``kes key …`` as a subprocess (the real entry point) against a live server, with the
connection taken from env vars. Output is non-terminal (pipes): the JSON forms."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Iterator

import pytest

from conftest import PKI
from pykes.crypto import KeyType, decode_key_version
from test_cli_support import KesServer, error_line, start_kes


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("cli-key"), pki)
    yield server
    server.stop()


def test_create_info_ls_rm(kes: KesServer) -> None:
    r = kes.kes("key", "create", "cli-a", "cli-b")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert (kes.keys_dir / "cli-a").exists() and (kes.keys_dir / "cli-b").exists()

    assert error_line(kes.kes("key", "create", "cli-c", "cli-a")) == (
        'failed to create key "cli-a": key already exists'
    )
    assert (kes.keys_dir / "cli-c").exists()  # created before the failure, in order

    r = kes.kes("key", "info", "cli-a", "--json")
    assert r.returncode == 0 and r.stdout.endswith("}\n")
    info = json.loads(r.stdout)
    assert info["name"] == "cli-a"
    assert info["algorithm"] == "AES256"  # the Go CLI omits it (bug fixed)
    assert info["created_by"] == kes.admin.identity
    stored = decode_key_version((kes.keys_dir / "cli-a").read_bytes())
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    created = epoch + dt.timedelta(microseconds=stored.created_at_ns // 1000)
    assert info["created_at"].endswith("Z")
    assert dt.datetime.fromisoformat(info["created_at"].replace("Z", "+00:00")) == created

    r = kes.kes("key", "info", "cli-a")
    lines = r.stdout.splitlines()
    assert lines[0] == "Name        cli-a"
    assert lines[1] == "Algorithm   AES256"
    assert lines[2].startswith("Date        ") and len(lines[2]) == 12 + 19
    assert lines[3] == f"Owner       {kes.admin.identity}"

    r = kes.kes("key", "ls", "cli-*")
    assert r.stdout == "Key\ncli-a\ncli-b\ncli-c\n"
    r = kes.kes("key", "ls", "--json", "cli-*")
    assert r.stdout == '["cli-a","cli-b","cli-c"]\n'  # JSON only (Go also prints the table)
    assert kes.kes("key", "ls", "--json", "nomatch*").stdout == "[]\n"
    assert kes.kes("key", "ls", "nomatch*").stdout == ""
    colored = kes.kes("key", "ls", "--color", "always", "cli-a").stdout
    assert colored == "\x1b[4mKey\x1b[0m\ncli-a\n"  # underlined header, forced colours

    r = kes.kes("key", "rm", "cli-b", "cli-c", "-k")
    assert r.returncode == 0 and not (kes.keys_dir / "cli-b").exists()
    assert error_line(kes.kes("key", "rm", "cli-b")) == (
        'failed to remove key "cli-b": key does not exist'
    )
    assert (
        error_line(kes.kes("key", "info", "cli-b")) == "failed to describe keys: key does not exist"
    )


def test_import_encrypt_decrypt_dek(kes: KesServer) -> None:
    raw = os.urandom(32)
    r = kes.kes("key", "import", "cli-imported", base64.b64encode(raw).decode())
    assert r.returncode == 0, r.stderr
    stored = decode_key_version((kes.keys_dir / "cli-imported").read_bytes())
    assert stored.key == raw and stored.key_type is KeyType.AES256

    r = kes.kes("key", "encrypt", "cli-imported", "hello world")
    assert r.returncode == 0 and not r.stdout.endswith("\n")
    ciphertext = json.loads(r.stdout)["ciphertext"]
    assert stored.decrypt(base64.b64decode(ciphertext)) == b"hello world"

    r = kes.kes("key", "decrypt", "cli-imported", ciphertext)
    expected = base64.b64encode(b"hello world").decode()
    assert r.stdout == f'{{"plaintext":"{expected}"}}'

    context = base64.b64encode(b"bucket/object").decode()
    r = kes.kes("key", "dek", "cli-imported", context)
    dek = json.loads(r.stdout)
    assert list(dek) == ["plaintext", "ciphertext"]
    plaintext = base64.b64decode(dek["plaintext"])
    assert stored.decrypt(base64.b64decode(dek["ciphertext"]), b"bucket/object") == plaintext
    r = kes.kes("key", "decrypt", "cli-imported", dek["ciphertext"], context)
    assert json.loads(r.stdout)["plaintext"] == dek["plaintext"]
    assert error_line(kes.kes("key", "decrypt", "cli-imported", dek["ciphertext"])) == (
        "failed to decrypt ciphertext: decryption failed: ciphertext is not authentic"
    )
    assert error_line(kes.kes("key", "dek", "cli-missing")) == (
        "failed to derive key: key does not exist"
    )


def test_argument_errors_and_usage(kes: KesServer) -> None:
    assert error_line(kes.kes("key", "import", "x")) == (
        "no crypto key specified. See 'kes key import --help'"
    )
    assert error_line(kes.kes("key", "import", "x", "not base64!")).startswith("invalid key: ")
    assert error_line(kes.kes("key", "encrypt", "x")) == (
        "no message specified. See 'kes key encrypt --help'"
    )
    assert (
        error_line(kes.kes("key", "create")) == "no key name specified. See 'kes key create --help'"
    )
    assert error_line(kes.kes("key", "frobnicate")) == (
        "\"frobnicate\" is not a key command. See 'kes key --help'"
    )
    usage = kes.kes("key")
    assert usage.returncode == 2 and usage.stderr.startswith("Usage:\n    kes key <command>")
    help_ = kes.kes("key", "ls", "--help")
    assert help_.returncode == 0 and "kes key ls" in help_.stdout and help_.stderr == ""
    rm_help = " ".join(kes.kes("key", "rm", "--help").stdout.split())
    assert "at most cache.expiry.any (default 5m)" in rm_help  # other nodes (issue 19)
    assert "cache.expiry" not in kes.kes("key", "create", "--help").stdout


def test_policy_restricted_identity(kes: KesServer) -> None:
    assert error_line(kes.kes("key", "create", "cli-denied", api_key=kes.user)) == (
        'failed to create key "cli-denied": not authorized: insufficient permissions'
    )
    kes.kes("key", "create", "app-cli")
    r = kes.kes("key", "dek", "app-cli", api_key=kes.user)
    assert r.returncode == 0 and len(base64.b64decode(json.loads(r.stdout)["ciphertext"])) == 76
