"""The benchmark driver behind ``bench/run.py``, one module per job (bench/README.md,
"The driver's modules")."""
