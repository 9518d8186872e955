"""The SDK needs Go's duration format, not the server's config loader (issue 22): the
duration helpers live in ``pykes.goformat``, so ``import pykes.client`` loads no
``pykes.config`` module (nor PyYAML)."""

from __future__ import annotations

import subprocess
import sys

LOADED = "import sys, pykes.client; print(*sorted(sys.modules))"


def test_importing_the_sdk_loads_no_config_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "pykes.client" in out
    assert [name for name in out if name.startswith("pykes.config") or name == "yaml"] == []
