"""Where the bench lives: the repository, bench/ and the results directory."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
RESULTS_DIR = BENCH / "results"
