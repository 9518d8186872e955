"""What the ``kes`` CLI sends and prints for enclaves and key versions: the real entry
point against a local HTTPS server that records each request (tests/replay_server.py).
Output is not a terminal here, so commands print their JSON forms."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import PKI
from pykes.pki import APIKey
from replay_server import ReplayServer, Reply
from test_cli_support import clean_env, error_line, run_kes

OK = Reply(200)


def kes(server: ReplayServer, pki: PKI, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = clean_env(
        MINIO_KES_SERVER=server.url,
        MINIO_KES_API_KEY=str(APIKey.generate()),
        SSL_CERT_FILE=str(pki.server_cert),
        **env,
    )
    return run_kes(*args, env=environment)


def sent(server: ReplayServer) -> list[tuple[str, str, str | None]]:
    return [(r.method, r.path, r.headers.get("kes-enclave")) for r in server.requests]


# ------------------------------------------------------------------ choosing the enclave
@pytest.mark.parametrize(
    ("args", "method", "path", "reply"),
    [
        (("key", "create", "k"), "POST", "/v1/key/create/k", OK),
        (("key", "ls"), "GET", "/v1/key/list/%2A", Reply(200, {"names": []})),
        (("key", "info", "k"), "GET", "/v1/key/describe/k", Reply(200, {"name": "k"})),
        (("key", "encrypt", "k", "m"), "POST", "/v1/key/encrypt/k", Reply(200, {"ciphertext": ""})),
        (("policy", "show", "p"), "GET", "/v1/policy/read/p", Reply(200, {})),
        (("identity", "ls"), "GET", "/v1/identity/list", Reply(200, {"identities": []})),
        (("ls", "-p"), "GET", "/v1/policy/list", Reply(200, {"names": []})),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_enclave_command_sends_the_enclave_of_its_flag(
    kes_replay: ReplayServer, pki: PKI, args: tuple[str, ...], method: str, path: str, reply: Reply
):
    kes_replay.script(method, path, reply)
    assert kes(kes_replay, pki, *args, "-e", "tenant-a", KES_ENCLAVE="x").returncode == 0
    assert sent(kes_replay) == [(method, path, "tenant-a")]


def test_without_the_flag_the_enclave_comes_from_the_environment(
    kes_replay: ReplayServer, pki: PKI
):
    kes_replay.script("POST", "/v1/key/create/k", *[OK] * 4)
    for env in (
        {"KES_ENCLAVE": "k", "MINIO_KMS_KES_ENCLAVE": "m"},
        {"MINIO_KMS_KES_ENCLAVE": "m"},
        {"KES_ENCLAVE": "", "MINIO_KMS_KES_ENCLAVE": "m"},  # the first set one wins
        {},
    ):
        assert kes(kes_replay, pki, "key", "create", "k", **env).returncode == 0
    assert [e for _, _, e in sent(kes_replay)] == ["k", "m", None, None]


def test_server_wide_commands_name_no_enclave(kes_replay: ReplayServer, pki: PKI):
    kes_replay.script("PUT", "/v1/enclave/create/a", OK)
    kes_replay.script("GET", "/v1/enclave/list/%2A", Reply(200, {"names": ["a"]}))
    assert kes(kes_replay, pki, "enclave", "create", "a", KES_ENCLAVE="x").returncode == 0
    assert kes(kes_replay, pki, "enclave", "ls", KES_ENCLAVE="x").returncode == 0
    assert [e for _, _, e in sent(kes_replay)] == [None, None]


def test_an_invalid_enclave_name_is_one_error_line_and_sends_nothing(
    kes_replay: ReplayServer, pki: PKI
):
    r = kes(kes_replay, pki, "key", "create", "k", "-e", "no spaces")
    assert error_line(r) == (
        'kes: invalid enclave name "no spaces": 1 to 80 of 0-9 A-Z a-z _ -, '
        "with '-' neither first nor last"
    )
    assert kes_replay.requests == []


# ------------------------------------------------------------------ kes enclave
def test_enclave_create_and_rm_go_through_every_name_in_order(kes_replay: ReplayServer, pki: PKI):
    kes_replay.script("PUT", "/v1/enclave/create/a", OK)
    kes_replay.script(
        "PUT", "/v1/enclave/create/b", Reply(400, {"message": "enclave already exists"})
    )
    r = kes(kes_replay, pki, "enclave", "create", "a", "b", "c")
    assert error_line(r) == 'failed to create enclave "b": enclave already exists'
    kes_replay.script("DELETE", "/v1/enclave/delete/a", OK, OK)
    assert kes(kes_replay, pki, "enclave", "rm", "a").returncode == 0
    assert kes(kes_replay, pki, "enclave", "rm", "-f", "a").returncode == 0
    assert [(r.method, r.path, r.query) for r in kes_replay.requests] == [
        ("PUT", "/v1/enclave/create/a", {}),
        ("PUT", "/v1/enclave/create/b", {}),
        ("DELETE", "/v1/enclave/delete/a", {}),
        ("DELETE", "/v1/enclave/delete/a", {"force": "true"}),
    ]
    r = kes(kes_replay, pki, "enclave", "rm")
    assert error_line(r) == "no enclave name specified. See 'kes enclave rm --help'"


def test_enclave_info_and_ls(kes_replay: ReplayServer, pki: PKI):
    info = {"name": "a", "created_at": "2026-01-02T03:04:05Z", "created_by": "ab" * 32}
    kes_replay.script("GET", "/v1/enclave/describe/a", Reply(200, info), Reply(200, info))
    kes_replay.script("GET", "/v1/enclave/list/t%2A", Reply(200, {"names": ["tb", "ta"]}))
    r = kes(kes_replay, pki, "enclave", "info", "a", "--json")
    assert json.loads(r.stdout) == info
    r = kes(kes_replay, pki, "enclave", "info", "a")
    assert r.stdout == (
        f"Enclave     a\nCreated At  2026-01-02 03:04:05\nCreated By  {'ab' * 32}\n"
    )
    r = kes(kes_replay, pki, "enclave", "ls", "t*", "--json")
    assert json.loads(r.stdout) == ["ta", "tb"]
    r = kes(kes_replay, pki, "enclave", "info")
    assert error_line(r) == "no enclave name specified. See 'kes enclave info --help'"
    r = kes(kes_replay, pki, "enclave", "move")
    assert error_line(r) == "\"move\" is not an enclave command. See 'kes enclave --help'"


# ------------------------------------------------------------------ key versions
def test_key_rotate_prints_each_new_version(kes_replay: ReplayServer, pki: PKI):
    kes_replay.script("PUT", "/v1/key/rotate/a", Reply(200, {"version": "2"}))
    kes_replay.script("PUT", "/v1/key/rotate/b", Reply(200, {"version": "7"}))
    kes_replay.script("PUT", "/v1/key/rotate/c", Reply(404, {"message": "key does not exist"}))
    r = kes(kes_replay, pki, "key", "rotate", "a", "b", "-e", "tenant-a")
    assert r.returncode == 0
    assert r.stdout == '{"name":"a","version":"2"}\n{"name":"b","version":"7"}\n'
    r = kes(kes_replay, pki, "key", "rotate", "c")
    assert error_line(r) == 'failed to rotate key "c": key does not exist'
    assert [e for _, _, e in sent(kes_replay)] == ["tenant-a", "tenant-a", None]


def test_dek_and_encrypt_show_the_version_a_server_names(kes_replay: ReplayServer, pki: PKI):
    dek = {"plaintext": "AAE=", "ciphertext": "AgM="}
    kes_replay.script("POST", "/v1/key/generate/k", Reply(200, {**dek, "version": "3"}))
    kes_replay.script("POST", "/v1/key/generate/k", Reply(200, dek))
    kes_replay.script(
        "POST", "/v1/key/encrypt/k", Reply(200, {"ciphertext": "BA==", "version": "3"})
    )
    assert kes(kes_replay, pki, "key", "dek", "k").stdout == (
        '{"plaintext":"AAE=","ciphertext":"AgM=","version":"3"}'
    )
    # a server without versions: the Go CLI's output, byte for byte
    assert (
        kes(kes_replay, pki, "key", "dek", "k").stdout == '{"plaintext":"AAE=","ciphertext":"AgM="}'
    )
    assert kes(kes_replay, pki, "key", "encrypt", "k", "m").stdout == (
        '{"ciphertext":"BA==","version":"3"}'
    )


def test_decrypt_sends_the_version_asked_for(kes_replay: ReplayServer, pki: PKI):
    kes_replay.script("POST", "/v1/key/decrypt/k", *[Reply(200, {"plaintext": "bQ=="})] * 2)
    r = kes(kes_replay, pki, "key", "decrypt", "--version", "3", "k", "AQ==")
    assert r.stdout == '{"plaintext":"bQ=="}'
    assert kes(kes_replay, pki, "key", "decrypt", "k", "AQ==").returncode == 0
    bodies = [r.body for r in kes_replay.calls("POST", "/v1/key/decrypt/k")]
    assert bodies == [{"ciphertext": "AQ==", "version": "3"}, {"ciphertext": "AQ=="}]


def test_key_info_shows_the_versions_a_server_keeps(kes_replay: ReplayServer, pki: PKI):
    ring = {"name": "k", "algorithm": "AES256", "created_at": "2026-01-02T03:04:05Z"}
    ring |= {"version": "3", "min_version": "2", "versions": ["1", "2", "3"]}
    kes_replay.script("GET", "/v1/key/describe/k", Reply(200, ring), Reply(200, ring))
    r = kes(kes_replay, pki, "key", "info", "k")
    assert r.stdout == (
        "Name        k\n"
        "Algorithm   AES256\n"
        "Date        2026-01-02 03:04:05\n"
        "Owner       \n"
        "Version     3\n"
        "Versions    1 2 3\n"
        "Decrypts    versions 2 and later\n"
    )
    assert json.loads(kes(kes_replay, pki, "key", "info", "k", "--json").stdout) == ring
