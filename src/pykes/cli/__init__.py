"""The ``kes`` command line."""
