"""The lean server-side HTTP/2 implementation (see ``handler.py``)."""

from pykes.server.h2lean.handler import LeanH2Handler

__all__ = ["LeanH2Handler"]
