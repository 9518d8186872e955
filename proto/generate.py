"""Generate the KMS API's protobuf modules (src/pykes/kms/pb) from proto/: `make proto`.

The generator is the protoc bundled with the pinned ``grpcio-tools`` of pyproject's test
extra; tests/test_kms_messages.py regenerates into a temporary directory and compares,
so the committed modules never drift from their .proto files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
SOURCES = ("rule.proto", "request.proto", "response.proto")
PACKAGE = Path("pykes", "kms", "pb")


def generate(out: Path) -> list[Path]:
    """Write ``<out>/pykes/kms/pb/<name>_pb2.py`` and ``.pyi`` for every source; the
    generated files, sorted."""
    out = out.resolve()
    target = out / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    sources = [str(PACKAGE / name) for name in SOURCES]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
         f"--python_out={out}", f"--pyi_out={out}", *sources],
        check=True,
        cwd=PROTO_ROOT,
    )  # fmt: skip
    return sorted(p for p in target.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi")))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1] if len(sys.argv) > 1 else "src")):
        print(path)
