"""``kes store backup``: an online backup of a stateful server's SQLite store (pykes's own
command, docs/backup.md)."""

from __future__ import annotations

from collections.abc import Sequence

from pykes.cli.common import ArgumentParser, CLIError, check_arguments, dispatch

USAGE = """Usage:
    kes store <command>

Commands:
    backup                   Copy a stateful server's store while it runs.

Options:
    -h, --help               Print command line options.
"""

BACKUP_USAGE = """Usage:
    kes store backup --config <FILE> <OUT>

Options:
    --config <PATH>          Path to the KES config file whose 'store' section names
                             the SQLite database to copy.

    -h, --help               Print command line options.

Copies the store into the new file <OUT> (mode 0600, never overwritten) as one
consistent snapshot, while servers may read and write the store. The copy is
sealed like the store: it is useless without the seal key, which is not copied.
Restore by placing <OUT> at the path of 'store.sqlite.path' (docs/backup.md).

Examples:
    $ kes store backup --config config.yml /backup/pykes-$(date +%F).db
"""


def backup(argv: Sequence[str]) -> int:
    from pykes.config import load_config
    from pykes.errors import ConfigError
    from pykes.store.backup import BackupError, backup_sqlite

    p = ArgumentParser(prog="kes store backup", usage_text=BACKUP_USAGE)
    p.add_argument("--config", default="")
    p.add_argument("args", nargs="*")
    args = p.parse(argv)
    if not args.config:
        raise CLIError("no config file specified. Use '--config' flag")
    check_arguments(args.args, "kes store backup", ("backup file",), most=1)
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        raise CLIError(str(err)) from None
    if cfg.store is None or cfg.store.sqlite is None:
        raise CLIError(f"the config '{args.config}' has no 'store' section with 'sqlite'")
    try:
        size = backup_sqlite(cfg.store.sqlite.path, args.args[0])
    except (BackupError, OSError) as err:
        raise CLIError(str(err)) from None
    print(f"Backed up {cfg.store.sqlite.path} to {args.args[0]} ({size} bytes)")
    return 0


COMMANDS = {"backup": backup}


def run(argv: Sequence[str]) -> int:
    return dispatch("store", argv, COMMANDS, USAGE)
