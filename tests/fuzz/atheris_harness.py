"""Optional coverage-guided fuzzing with atheris (libFuzzer); not part of CI.

    pip install atheris
    python tests/fuzz/atheris_harness.py <target> [-max_total_time=600] [-runs=N] ...

Targets: ciphertext, config, apikey, certificate, gojson. The checked-in corpus of the
target is copied to a temporary directory and used as libFuzzer's seed corpus. The
properties are the same as in the hypothesis tests: only the documented exception
types may escape, anything else is reported by libFuzzer as a crash (with the input
saved as ``crash-<sha1>``; add it to tests/fuzz/corpus/<target>/ as ``regress-*``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

CORPUS = Path(__file__).resolve().parent / "corpus"

with atheris.instrument_imports():
    from pykes.config import parse_config
    from pykes.config.legacy import translate
    from pykes.crypto import KeyType, KeyVersion
    from pykes.errors import ConfigError, DecryptError
    from pykes.goformat.json import BodyError, bytes_field, parse_object
    from pykes.pki.apikey import APIKey
    from pykes.pki.certs import load_private_key_pem
    from pykes.pki.identity import decode_pem_blocks, identity_of_certificate, is_ca_certificate

_VECTOR_KEY = KeyVersion(bytes(range(1, 33)), KeyType.AES256, None, None, "")
_CONTEXT = b"legacy-ctx"


def _ciphertext(data: bytes) -> None:
    try:
        _VECTOR_KEY.decrypt(data, _CONTEXT)
    except DecryptError:
        return


def _config(data: bytes) -> None:
    try:
        doc, _ = translate("fuzz.yml", data)
        parse_config(doc, {})
    except ConfigError as err:
        if "\n" in str(err):
            raise AssertionError("multi-line config error") from None


def _apikey(data: bytes) -> None:
    try:
        APIKey.parse(data.decode("utf-8", "replace"))
    except ValueError:
        return


def _certificate(data: bytes) -> None:
    for der in [data, *(block.der for block in decode_pem_blocks(data))]:
        with contextlib.suppress(ValueError):
            identity_of_certificate(der)
        with contextlib.suppress(ValueError):
            is_ca_certificate(der)
    with contextlib.suppress(ValueError):
        load_private_key_pem(data, b"fuzz-password")


def _gojson(data: bytes) -> None:
    try:
        obj = parse_object(data, ("plaintext", "ciphertext", "context", "version"))
        for name in obj:
            bytes_field(obj, name)
    except BodyError:
        return


TARGETS: dict[str, tuple[Callable[[bytes], None], tuple[str, ...]]] = {
    "ciphertext": (_ciphertext, ("ciphertext_raw", "ciphertext_json", "ciphertext_msgpack")),
    "config": (_config, ("config",)),
    "apikey": (_apikey, ("apikey",)),
    "certificate": (_certificate, ("certificate", "private_key")),
    "gojson": (_gojson, ("gojson",)),
}


def _seed_dir(folders: tuple[str, ...]) -> str:
    out = tempfile.mkdtemp(prefix="pykes-atheris-")
    for folder in folders:
        for path in (CORPUS / folder).iterdir():
            data = path.read_bytes()
            if folder.startswith("ciphertext_"):  # JSON entries → the ciphertext bytes
                data = base64.b64decode(json.loads(data)["ciphertext"])
            Path(out, f"{folder}-{path.name}").write_bytes(data)
    return out


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags]")
    func, folders = TARGETS[sys.argv[1]]
    corpus_dir = _seed_dir(folders)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup([sys.argv[0], *sys.argv[2:], corpus_dir], func)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
