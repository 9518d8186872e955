"""pykes — a Python, wire-compatible implementation of MinIO KES."""

__version__ = "0.1.0"
