"""``kes migrate [-f] [--merge] --from FILE (--to FILE [-e ENCLAVE] | -s HOST -e ENCLAVE
-a KEY [-k]) [PATTERN]`` (docs/compat/cli.md §11).

Copies the raw stored values from the keystore of one KES config file to the keystore
of another (no re-encoding; legacy formats stay legacy) or, if the target config has a
``store`` section, into an enclave of that stateful store, each value version 1 of a
key ring; without ``--to``, imports each key into an enclave of a KMS server through
its KMS API, as Go's does (migrate_targets.py). Existing target keys abort the
migration unless ``--merge`` (skip them) or ``-f/--force`` (replace them). Because
every create is atomic and names are only skipped with ``--merge``, an interrupted
migration can simply be re-run with ``--merge``.

Differences to Go (docs/compat/keystore.md §6): the source is listed completely (the Go CLI's
"continue-at as next prefix" iterator visits only the first 1024 names of a
paginating backend).
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from pykes.cli.common import ArgumentParser, CLIError, env
from pykes.cli.migrate_targets import Target, open_kms_target, open_target

if TYPE_CHECKING:
    from pykes.keystore import KeyStore

USAGE = """Usage:
    kes migrate [-f] [--merge] --from FILE --to FILE [PATTERN]
    kes migrate [-f] [--merge] --from FILE --to FILE [-e ENCLAVE] [PATTERN]
    kes migrate [-k] [-f] [--merge] --from FILE [-s HOST] [-e ENCLAVE]
                [-a KEY] [PATTERN]

Options:
    --from <PATH>            Path to source KES config file.
    --to   <PATH>            Path to target KES config file. If it has a 'store'
                             section, keys are migrated into the enclave named
                             by -e (default: $KES_ENCLAVE, else 'default').
                             $MINIO_KMS_KES_ENCLAVE is read too, as by the
                             other kes commands.
    --create-enclave         Create that enclave if the store has none of the name.

    -s, --server HOST        KMS server endpoint to which keys are migrated.
                             Defaults to the value of $MINIO_KMS_SERVER
    -e, --enclave ENCLAVE    KMS enclave endpoint to which keys are migrated.
                             Defaults to the value of $MINIO_KMS_ENCLAVE
    -a, --api-key KEY        KMS API key used to authenticate to the KMS server.
                             Defaults to the value of $MINIO_KMS_API_KEY
    -k, --insecure           Skip KMS server certificate verification. Without it,
                             the system roots verify it ($SSL_CERT_FILE and
                             $SSL_CERT_DIR name other CA certificates).

    -f, --force              Migrate keys even if a key with the same name exists
                             at the target. The existing keys will be deleted
                             (in an enclave: only keys that were never rotated).

    --merge                  Merge the source into the target by only migrating
                             those keys that do not exist at the target.
"""

LIST_ALL = sys.maxsize


def glob_matcher(pattern: str) -> re.Pattern[str]:
    """A shell glob (``*``, ``?``, ``[...]``, ``[^...]``) as Go's ``filepath.Match``."""
    return re.compile(fnmatch.translate(pattern.replace("[^", "[!")))


def _progress_line(count: int) -> str:
    return f"Migrated {count:6d} key  ...\n" if count <= 1 else f"Migrated {count:6d} keys ...\n"


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def _names(store: KeyStore) -> list[str]:
    """Every name of ``store`` (following a continue-at only if a backend still pages)."""
    names, continue_at = await store.list("", LIST_ALL)
    seen = set(names)
    while continue_at and continue_at not in seen:
        page, continue_at = await store.list(continue_at, LIST_ALL)
        page = [n for n in page if n not in seen]
        seen.update(page)
        names += page
    return names


async def _migrate(
    src_path: str,
    dst_path: str,
    pattern: str,
    merge: bool,
    force: bool,
    enclave: str | None = None,
    create_enclave: bool = False,
) -> int:
    """Migrate into the keystore or store of the config file ``dst_path``."""
    open_dst = _config_target(dst_path, enclave, create_enclave)
    return await _migrate_to(src_path, open_dst, pattern, merge, force)


async def _migrate_to(
    src_path: str,
    open_dst: Callable[[], Awaitable[Target]],
    pattern: str,
    merge: bool,
    force: bool,
) -> int:
    from pykes.config import load_config
    from pykes.errors import ConfigError
    from pykes.keystore.factory import UnsupportedKeyStoreError, connect_keystore

    try:
        src_cfg = load_config(src_path)
    except ConfigError as err:
        raise CLIError(str(err)) from None
    if src_cfg.keystore is None:
        raise CLIError(
            f"the source config '{src_path}' has no 'keystore' section: "
            "kes migrate copies the keys of a stateless keystore"
        )
    try:
        src = await connect_keystore(src_cfg.keystore)
    except (UnsupportedKeyStoreError, ValueError, OSError) as err:
        raise CLIError(str(err)) from None
    try:
        dst = await open_dst()
    except (UnsupportedKeyStoreError, ValueError, OSError, ConfigError) as err:
        await src.close()
        raise CLIError(str(err)) from None
    except BaseException:
        await src.close()
        raise
    return await _copy(src, dst, pattern, merge, force)


def _config_target(
    dst_path: str, enclave: str | None, create_enclave: bool
) -> Callable[[], Awaitable[Target]]:
    """The target of ``--to``: the keystore or store of that config file."""

    async def open_dst() -> Target:
        from pykes.config import load_config

        return await open_target(load_config(dst_path), enclave, create_enclave)

    return open_dst


async def _copy(src: KeyStore, dst: Target, pattern: str, merge: bool, force: bool) -> int:
    count = 0

    async def report() -> None:
        while True:
            await asyncio.sleep(1)
            _say(_progress_line(count))

    _say("Starting key migration:\n\n")
    reporter = asyncio.create_task(report())
    matches = glob_matcher(pattern).fullmatch
    try:
        for name in await _names(src):
            if not matches(name):
                continue
            if await dst.copy(name, await src.get(name), merge=merge, force=force):
                count += 1  # a key --merge skipped is not counted
    except CLIError:
        raise
    except Exception as err:
        raise CLIError(str(err) or type(err).__name__) from None
    finally:
        reporter.cancel()
        await src.close()
        await dst.close()
    if count == 0:
        _say("Migration succeeded! No keys migrated.\n")
    else:
        _say(f"Migrated {count:6d} keys successfully!\n")
    return 0


def run(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="kes migrate", usage_text=USAGE)
    p.add_argument("-k", "--insecure", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--merge", action="store_true")
    p.add_argument("--from", dest="source", default="")
    p.add_argument("--to", dest="target", default="")
    p.add_argument("-s", "--server", default=None)
    p.add_argument("-e", "--enclave", default=None)
    p.add_argument("--create-enclave", action="store_true")
    p.add_argument("-a", "--api-key", default=None)
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    if len(args.args) > 1:
        raise CLIError("too many arguments")
    if not args.source:
        raise CLIError("no source specified. Use '--from' flag")
    # -e also names the enclave of a stateful --to (checked once its config is read)
    for flag, value in (("-s / --server", args.server), ("-a / --api-key", args.api_key)):
        if value is not None and args.target:
            raise CLIError(f"cannot use '{flag}' and '--to' flag")
    if args.target and args.insecure:
        raise CLIError("cannot use '-k / --insecure' and '--to' flag")
    kms_target: tuple[str, str, str] | None = None
    if not args.target:
        # a flag given (even empty) wins over its variable, as Go's flag defaults
        kms_target = (
            _flag_or_env(args.server, "MINIO_KMS_SERVER"),
            _flag_or_env(args.enclave, "MINIO_KMS_ENCLAVE"),
            _flag_or_env(args.api_key, "MINIO_KMS_API_KEY"),
        )
        server, enclave, api_key = kms_target
        if not server:
            raise CLIError("missing migration target. Use '--to' or '--server'")
        if not enclave:
            raise CLIError("no KMS enclave specified. Use '--enclave'")
        if not api_key:
            raise CLIError("no KMS API key specified. Use '--api-key'")
    if args.force and args.merge:
        raise CLIError("'--force' and '--merge' flags are mutually exclusive")
    pattern = args.args[0] if args.args else "*"
    if kms_target is None:
        migration = _migrate(
            args.source,
            args.target,
            pattern,
            args.merge,
            args.force,
            args.enclave,
            args.create_enclave,
        )
        return asyncio.run(migration)
    if args.create_enclave:
        raise CLIError("'--create-enclave' needs a '--to' config with a 'store' section")
    open_dst = functools.partial(open_kms_target, *kms_target, args.insecure)
    return asyncio.run(_migrate_to(args.source, open_dst, pattern, args.merge, args.force))


def _flag_or_env(flag: str | None, variable: str) -> str:
    return flag if flag is not None else env(variable) or ""
