"""Hypothesis profiles for the parser fuzz tests (issue 9).

* ``fuzz-ci`` (default): deterministic (``derandomize``) and bounded so that the whole
  of tests/fuzz stays well under 60 s on a 2-core CI machine.
* ``fuzz-long``: random, many examples, for a local run:
  ``PYKES_FUZZ_PROFILE=fuzz-long PYKES_FUZZ_EXAMPLES=50000 pytest tests/fuzz``.

No example database is written (``database=None``): failures found by a long run are
added as ``regress-*`` files to ``tests/fuzz/corpus/<target>/`` instead, so CI replays
them as explicit examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def _register(name: str, examples: str, derandomize: bool) -> None:
    settings.register_profile(
        name,
        max_examples=int(os.environ.get("PYKES_FUZZ_EXAMPLES", examples)),
        derandomize=derandomize,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=_SLOW_OK,
    )


_register("fuzz-ci", "400", derandomize=True)  # CI: the same examples every run
_register("fuzz-long", "20000", derandomize=False)
settings.load_profile(os.environ.get("PYKES_FUZZ_PROFILE", "fuzz-ci"))
