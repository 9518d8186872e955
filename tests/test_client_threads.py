"""One blocking Client shared by several threads keeps failing over when a node dies
(HTTP/2): each thread has its own connection pool."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from conftest import PKI, config_yaml, start_server
from pykes.client import Client


def test_shared_client_across_threads_survives_a_node_kill(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    keys = tmp_path / "keys"
    nodes = []
    for i in range(2):
        root = tmp_path / f"n{i}"
        root.mkdir()
        nodes.append(start_server(root, pki, config_yaml(pki, admin.identity, keys)))
    failures: list[str] = []
    done = [0]
    stop = threading.Event()
    try:
        with Client(
            [n.url for n in nodes],
            cert_file=str(admin.cert_file),
            key_file=str(admin.key_file),
            ca_file=str(pki.server_cert),
        ) as client:
            client.create_key("threads-key")

            def work() -> None:
                while not stop.is_set():
                    try:
                        dek = client.generate_key("threads-key", b"{}")
                        assert client.decrypt("threads-key", dek.ciphertext, b"{}") == dek.plaintext
                        done[0] += 1
                    except Exception as err:  # noqa: BLE001 - every failure is the finding
                        failures.append(repr(err))

            threads = [threading.Thread(target=work, daemon=True) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            nodes[0].proc.send_signal(signal.SIGKILL)
            nodes[0].proc.wait()
            time.sleep(1.5)
            stop.set()
            for t in threads:
                t.join(20)
    finally:
        stop.set()
        for n in nodes:
            n.stop()
    assert failures == []
    assert done[0] > 50
