"""``kes server`` (docs/compat/cli.md §3, config.md §5)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pykes import __version__
from pykes.api.context import COMMIT
from pykes.api.handlers import legacy
from pykes.api.handlers.system import GOARCH, GOOS
from pykes.api.routes import DEFAULT_ROUTES, STATEFUL_ROUTES, RouteOverride
from pykes.auth.policy import Policy
from pykes.auth.proxy import tls_proxy
from pykes.cli import server_flags
from pykes.cli.common import ArgumentParser, CLIError
from pykes.errors import ConfigError
from pykes.goformat.oserror import go_errno_text
from pykes.keystore import KeyStore, MemoryKeyStore
from pykes.keystore.factory import UnsupportedKeyStoreError, connect_keystore
from pykes.observe.slogtext import LEVEL_INFO, level_name
from pykes.pki import APIKey, client_certificate, self_signed_server_certificate
from pykes.process import memlock
from pykes.process.runner import (
    ServerSetup,
    check_bind,
    create_predefined_keys,
    prepare_store,
    serve_forever,
)
from pykes.wire.acceptor import raise_fd_limit
from pykes.wire.tls import TLSSettings, TLSSetupError, server_context

if TYPE_CHECKING:
    from pykes.config import ServerConfig
    from pykes.store import EnclaveStore

DEFAULT_ADDRESS = "0.0.0.0:7373"


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="kes server",
        usage="kes server [--addr <[ip]:port>] [--config <file> [--check]] [--dev [--stateful]] "
        "[--workers N]",
        add_help=True,
    )
    p.add_argument("--addr", default=None, help="The address of the server (default 0.0.0.0:7373)")
    p.add_argument("--config", default=None, help="Path to the server configuration file")
    p.add_argument("--dev", action="store_true", help="Start the KES server in development mode")
    p.add_argument(
        "--stateful",
        action="store_true",
        help="With --dev: keep keys in a sealed store with enclaves and key versions "
        "(a temporary one, with a fresh seal key)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="Check the config file, its TLS files and the keystore connection, then exit",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Number of worker processes (default: number of CPUs; 1 with --dev)",
    )
    server_flags.add_flags(p)
    p.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    return p


def parse_address(addr: str) -> tuple[str, int]:
    """``[ip]:port`` → (host, port); the host must be empty or an IP literal."""
    host, sep, port_text = addr.rpartition(":")
    if not sep:
        raise CLIError(f"invalid address '{addr}': missing port")
    host = host.strip("[]")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise CLIError(f"'{host}' is not a valid IP address") from None
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise CLIError(f"invalid address '{addr}': invalid port '{port_text}'") from None
    return host, port


def interface_ips() -> list[str]:
    """IPv4 addresses of this host's interfaces (loopback included)."""
    ips: list[str] = []
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in zip(lines, lines[1:], strict=False):
            if "/32 host LOCAL" in line:
                ip = prev.strip().split()[-1]
                if ip not in ips and not ip.startswith("169.254."):
                    ips.append(ip)
    except OSError:
        pass
    if "127.0.0.1" not in ips:
        ips.insert(0, "127.0.0.1")
    return sorted(ips, key=lambda ip: (not ip.startswith("127."), ipaddress.ip_address(ip)))


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _setup_from_config(
    cfg: ServerConfig,
    address: str,
    workers: int,
    config_path: str,
    address_override: str | None,
    flag_overrides: dict[str, str] | None = None,
) -> ServerSetup:
    host, port = parse_address(address)
    known = {r.path for r in DEFAULT_ROUTES + STATEFUL_ROUTES}
    overrides = {
        path: RouteOverride(skip_auth=api.skip_auth, timeout=api.timeout)
        for path, api in cfg.api.items()
        if path in known
    }
    policies = {
        name: Policy(name, tuple(p.allow), tuple(p.deny)) for name, p in cfg.policies.items()
    }
    assignments = {identity: name for name, p in cfg.policies.items() for identity in p.identities}
    keystore_config, store_config = cfg.keystore, cfg.store

    async def open_keystore() -> KeyStore:
        if keystore_config is None:  # stateful mode: setup.open_store instead
            raise RuntimeError("stateful mode has no keystore")
        return await connect_keystore(keystore_config)

    open_store = None
    if store_config is not None:

        async def open_store() -> EnclaveStore:
            from pykes.store.factory import open_store

            return await open_store(store_config, created_by=cfg.admin_identity)

    setup = ServerSetup(
        host=host,
        port=port,
        tls=TLSSettings(
            cert_file=cfg.tls.cert,
            key_file=cfg.tls.key,
            password=cfg.tls.password,
            auth=cfg.tls.auth,
            ca=cfg.tls.ca,
            optional_client_cert=any(o.skip_auth for o in overrides.values()),
        ),
        admin=cfg.admin_identity,
        policies=policies,
        assignments=assignments,
        overrides=overrides,
        cache_any=cfg.cache.any,
        cache_unused=cfg.cache.unused,
        cache_offline=cfg.cache.offline,
        log_error=cfg.log_error,
        log_audit=cfg.log_audit,
        open_keystore=open_keystore,
        predefined_keys=list(cfg.keys),
        workers=workers,
        legacy_api=cfg.api_legacy,
        reload=lambda: _reload(config_path, address_override, workers, flag_overrides),
        proxy=tls_proxy(cfg.tls),
        open_store=open_store,
    )
    return setup


def _reload(
    config_path: str,
    address_override: str | None,
    workers: int,
    flag_overrides: dict[str, str] | None = None,
) -> ServerSetup:
    """Re-read the config file; the older flags still override it (server_flags)."""
    from pykes.config import load_config

    cfg = load_config(config_path, overrides=flag_overrides)
    return _setup_from_config(
        cfg,
        address_override or cfg.address,
        workers,
        config_path,
        address_override,
        flag_overrides,
    )


def _setup_dev(
    address: str, tmpdir: Path, stateful: bool = False
) -> tuple[ServerSetup, MemoryKeyStore, APIKey]:
    host, port = parse_address(address)
    api_key = APIKey.generate()
    ips = [host] if host and host not in ("0.0.0.0", "::") else interface_ips()
    cert_pem, key_pem = self_signed_server_certificate(ips, ["localhost"])
    (tmpdir / "server.crt").write_bytes(cert_pem)
    (tmpdir / "server.key").write_bytes(key_pem)
    (tmpdir / "server.key").chmod(0o600)
    client_cert, client_key = client_certificate(api_key)
    (tmpdir / "client.crt").write_bytes(client_cert)
    (tmpdir / "client.key").write_bytes(client_key)
    (tmpdir / "client.key").chmod(0o600)
    store = MemoryKeyStore()
    setup = ServerSetup(
        host=host,
        port=port,
        tls=TLSSettings(str(tmpdir / "server.crt"), str(tmpdir / "server.key")),
        admin=api_key.identity,
        policies={},
        assignments={},
        overrides={},
        cache_any=300.0,
        cache_unused=30.0,
        cache_offline=0.0,
        log_error=LEVEL_INFO,
        log_audit=LEVEL_INFO,
        open_keystore=lambda: _same(store),
        workers=1,  # the in-memory keystore lives in one process
    )
    if stateful:
        setup.open_store = _dev_store(tmpdir, api_key.identity)
    return setup, store, api_key


def _dev_store(tmpdir: Path, admin: str) -> Callable[[], Awaitable[EnclaveStore]]:
    """``--dev --stateful``: a store in ``tmpdir`` sealed by a fresh seal key written
    next to it (mode 0600): both go when the server stops."""
    from pykes.config.store import SealConfig, SQLiteStoreConfig, StoreConfig
    from pykes.store import generate_seal_key
    from pykes.store.factory import open_store

    seal_file = tmpdir / "root.seal"
    seal_file.touch(mode=0o600)
    seal_file.write_text(generate_seal_key().text() + "\n")
    config = StoreConfig(
        sqlite=SQLiteStoreConfig(path=str(tmpdir / "pykes.db")),
        seal=SealConfig(file=str(seal_file)),
    )
    return lambda: open_store(config, created_by=admin)


async def _same(store: KeyStore) -> KeyStore:
    return store


async def _prepare(setup: ServerSetup, keep_open: bool) -> tuple[str, KeyStore | None]:
    """Connect the keystore (start-up checks) and create the predefined keys: the
    banner's text and the keystore, whose connection is closed again unless the
    in-process worker reuses it (--dev). Stateful mode: the same on the store."""
    if setup.open_store is not None:
        return f"{await prepare_store(setup)} (stateful)", None
    store = await setup.open_keystore()
    try:
        await create_predefined_keys(store, setup.predefined_keys, setup.admin)
    finally:
        if not keep_open:
            await store.close()
    return store.description, store


def _is_hex_identity(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


UP_AND_RUNNING = "\n=> Server is up and running...\n"


def _announce_listening() -> None:
    """The banner's last line, printed once the server listens (Go prints it before)."""
    sys.stdout.write(UP_AND_RUNNING)
    sys.stdout.flush()


def _kes_command() -> str:
    """How to call this ``kes`` again: as typed if not the one on PATH (``.venv/bin/kes``
    after ``make run``), else plain ``kes``."""
    typed = sys.argv[0]
    if Path(typed).name != "kes":
        return "kes"
    on_path = shutil.which("kes")
    if on_path is not None and Path(on_path).resolve() == Path(typed).resolve():
        return "kes"
    return typed


def dev_hints(setup: ServerSetup, api_key: APIKey, tmpdir: Path) -> str:
    """How to talk to a ``--dev`` server: the exact ``export`` line for the CLI (pykes's
    and Go's read the same variables) and why ``-k`` is needed."""
    host = setup.host if setup.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    kes = _kes_command()
    return (
        "\n=> To use the kes CLI (Go's kes reads the same variables), in another shell:\n\n"
        f"   export KES_SERVER=https://{shown}:{setup.port} KES_API_KEY={api_key}\n"
        f"   {kes} status -k\n\n"
        "   -k (--insecure): the certificate of this server is a throw-away self-signed\n"
        "   one, which no system trusts. To verify it instead, name it per command:\n"
        f"   SSL_CERT_FILE={tmpdir / 'server.crt'} {kes} status\n"
    )


def banner(
    setup: ServerSetup,
    kms: str,
    api_key: APIKey | None,
    tmpdir: Path | None,
    mlocked: bool = False,
) -> str:
    """The start-up banner up to (not including) the line saying the server is up."""
    rows: list[tuple[str, str]] = [
        ("Version", f"{__version__} commit={COMMIT}"),
        ("Runtime", f"Python {platform.python_version()} {GOOS}/{GOARCH} compiler=CPython"),
        ("License", "AGPLv3 https://www.gnu.org/licenses/agpl-3.0.html"),
        ("Copyright", f"pykes authors, MinIO, Inc. 2015-{time.gmtime().tm_year}"),
        ("KMS", kms),
    ]
    ips = [setup.host] if setup.host and setup.host not in ("0.0.0.0", "::") else interface_ips()
    for i, ip in enumerate(ips):
        shown = f"[{ip}]" if ":" in ip else ip
        rows.append(("API" if i == 0 else "", f"· https://{shown}:{setup.port}"))
    rows.append(("Docs", "https://min.io/docs/kes"))
    if api_key is not None:
        rows.append(("API Key", str(api_key)))
    rows.append(("Admin", setup.admin if _is_hex_identity(setup.admin) else "<disabled>"))
    if tmpdir is not None:
        rows.append(("Client Cert", str(tmpdir / "client.crt")))
        rows.append(("Client Key", str(tmpdir / "client.key")))
    rows.append(("Logs", f"error=stderr level={level_name(setup.log_error)}"))
    if setup.log_audit <= LEVEL_INFO:
        rows.append(("", f"audit=stdout level={level_name(setup.log_audit)}"))
    if mlocked:
        rows.append(("MLock", "enabled"))
    if setup.workers > 1:
        rows.append(("Workers", str(setup.workers)))
    lines = [f"{label:<12}{value}" for label, value in rows]
    text = "\n".join(lines) + "\n"
    if api_key is not None and tmpdir is not None:
        text += dev_hints(setup, api_key, tmpdir)
    return text


def _lock_memory() -> bool:
    """mlockall where permitted (process/memlock.py), else one warning line. Workers
    forked later lock again themselves (runner.py)."""
    result = memlock.lock_memory()
    if not result.locked:
        print(
            f"WARNING: memory is not locked ({result.reason}): key material may be swapped to disk",
            file=sys.stderr,
        )
    return result.locked


def _listen_error(setup: ServerSetup, err: OSError) -> CLIError:
    """Go's text: ``listen tcp 127.0.0.1:7373: bind: address already in use``."""
    host = f"[{setup.host}]" if ":" in setup.host else setup.host
    return CLIError(f"listen tcp {host}:{setup.port}: bind: {go_errno_text(err)}")


async def _check_keystore(setup: ServerSetup) -> None:
    """``--check``: connect the keystore as at start-up (login, probe), then close;
    stateful mode: open the store (the seal key unseals it), then close."""
    store = await (setup.open_store or setup.open_keystore)()
    await store.close()


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.extra:
        raise CLIError("too many arguments. See 'kes server --help'")
    server_flags.warn_deprecated(args)
    flag_overrides = server_flags.overrides(args)
    if args.dev and flag_overrides:  # --dev makes its own admin and certificate
        flag = next(f for f in server_flags.given(args) if f != "mlock").replace("_", "-")
        raise CLIError(f"'--{flag}' flag is not supported in development mode")
    if args.dev and args.check:
        raise CLIError("'--check' flag is not supported in development mode")
    if args.stateful and not args.dev:
        raise CLIError(
            "'--stateful' flag is only supported in development mode "
            "(a 'store' section in the config file makes a server stateful)"
        )
    if args.workers is not None and args.workers < 1:
        raise CLIError("invalid number of workers: must be at least 1")
    tmpdir: Path | None = None
    api_key: APIKey | None = None
    try:
        mlocked = False if args.check else _lock_memory()  # first, as Go: covers keys too
        if args.dev:
            if args.config:
                raise CLIError("'--config' flag is not supported in development mode")
            tmpdir = Path(tempfile.mkdtemp(prefix="kes-dev-"))
            setup, _, api_key = _setup_dev(args.addr or DEFAULT_ADDRESS, tmpdir, args.stateful)
        else:
            if not args.config:
                raise CLIError("no config file specified. Use '--config <file>' or '--dev'")
            from pykes.config import load_config
            from pykes.config.loader import warn_unknown_keys

            try:
                cfg = load_config(
                    args.config,
                    overrides=flag_overrides,
                    on_unknown_key=warn_unknown_keys(args.config),
                )
            except ConfigError as err:
                raise CLIError(str(err)) from None
            workers = args.workers if args.workers is not None else _default_workers()
            setup = _setup_from_config(
                cfg, args.addr or cfg.address, workers, args.config, args.addr, flag_overrides
            )
        try:
            server_context(setup.tls)  # validate TLS material before anything is printed
        except TLSSetupError as err:
            raise CLIError(str(err)) from None
        try:
            if args.check:
                asyncio.run(_check_keystore(setup))
            else:
                kms, store = asyncio.run(_prepare(setup, keep_open=args.dev))
        except (UnsupportedKeyStoreError, ConfigError, ValueError, OSError) as err:
            raise CLIError(str(err)) from None  # ConfigError: a seal key that does not fit
        except Exception as err:  # keystore connect / predefined keys
            raise CLIError(f"failed to connect to keystore: {err}") from None
        if args.check:
            print(f"{args.config}: the configuration is valid")
            return 0
        try:
            check_bind(setup.host, setup.port)  # a clash is reported before any banner
        except OSError as err:
            raise _listen_error(setup, err) from None
        sys.stdout.write(banner(setup, kms, api_key, tmpdir, mlocked))
        sys.stdout.flush()
        notice = legacy.write_routes_notice(setup.policies, setup.legacy_api)
        if notice is not None:  # issue 20: who can write run-time policies
            print(notice, file=sys.stderr)
        raise_fd_limit()  # thousands of client connections (issue 9)
        setup.on_listening = _announce_listening
        status = serve_forever(setup, store if args.dev and store is not None else None)
        print("\n=> Stopping server... Goodbye.")
        return status
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
