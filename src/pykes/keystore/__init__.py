"""Keystores: the backend protocol, the shared list helper, the filesystem and
in-memory backends, and the key cache (docs/compat/keystore.md)."""

from pykes.keystore.base import KeyStore
from pykes.keystore.cache import KeyCache
from pykes.keystore.fs import FSKeyStore
from pykes.keystore.listing import list_page
from pykes.keystore.memory import MemoryKeyStore

__all__ = ["FSKeyStore", "KeyCache", "KeyStore", "MemoryKeyStore", "list_page"]
