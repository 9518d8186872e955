"""HPACK for the lean HTTP/2 server: request header blocks decoded by the ``hpack``
library with a per-connection cache keyed by the block's bytes, and response header
blocks built from precomputed pieces (static-table references, no dynamic table).

A client repeats the same request headers, and once they are in its dynamic table it
sends the same bytes every time. A cached result is only valid while the decoder's
dynamic table is unchanged, so the table counts its changes (``generation``) and a block
is cached only if decoding it changed nothing; a hit also requires the generation at
caching time. Blocks that add to the table are always decoded.
"""

from __future__ import annotations

from hpack import Decoder, HPACKError, OversizedHeaderListError
from hpack.hpack import encode_integer
from hpack.table import HeaderTable

MAX_HEADER_LIST_SIZE = 1 << 20  # as Go's http.DefaultMaxHeaderBytes (and HTTP/1.1 here)
# The cache is bounded per connection: 64 entries of blocks ≤ 2 KiB with ≤ 64 fields
# each (a few hundred KB at worst); a client uses a handful.
_CACHE_LIMIT = 64
_CACHE_BLOCK_LIMIT = 2048
_CACHE_FIELDS_LIMIT = 64

#: Headers that are connection-specific in HTTP/1.1 and malformed in HTTP/2 (§8.2.2).
_CONNECTION_HEADERS = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_REQUEST_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority"))


class _CountingTable(HeaderTable):
    """hpack's header table, counting every change to its dynamic part."""

    generation = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.generation += 1
        super().add(name, value)

    @HeaderTable.maxsize.setter  # type: ignore[attr-defined, misc]
    def maxsize(self, newmax: int) -> None:
        self.generation += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class RequestHead:
    """What the server needs from a request header block (or why it is malformed)."""

    __slots__ = ("method", "target", "content_length", "malformed", "headers")

    def __init__(
        self,
        method: str,
        target: str,
        content_length: int | None,
        malformed: str | None,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.headers = headers  # as decoded (a TLS proxy's forwarded headers are read)
        self.method = method
        self.target = target
        self.content_length = content_length
        self.malformed = malformed


class CompressionError(Exception):
    """The header block cannot be decoded: the connection's HPACK state is lost."""


class HeaderListTooLarge(CompressionError):
    """The block decodes to more than MAX_HEADER_LIST_SIZE (e.g. an HPACK bomb)."""


class RequestDecoder:
    """One per connection (HPACK state is per connection and direction)."""

    def __init__(self) -> None:
        self._decoder = Decoder(max_header_list_size=MAX_HEADER_LIST_SIZE)
        self._table = _CountingTable()
        self._decoder.header_table = self._table
        self._cache: dict[bytes, tuple[int, RequestHead]] = {}
        self.hits = 0

    def decode(self, block: bytes) -> RequestHead:
        hit = self._cache.get(block)
        table = self._table
        if hit is not None and hit[0] == table.generation:
            self.hits += 1
            return hit[1]
        before = table.generation
        headers = self.decode_raw(block)
        head = parse_request(headers)
        cacheable = len(block) <= _CACHE_BLOCK_LIMIT and len(headers) <= _CACHE_FIELDS_LIMIT
        if table.generation == before and cacheable:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[block] = (before, head)
        return head

    def decode_raw(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """Decode (for trailers and for the table's sake); raises CompressionError."""
        try:
            return self._decoder.decode(block, raw=True)  # type: ignore[return-value]
        except OversizedHeaderListError as err:
            raise HeaderListTooLarge(str(err)) from None
        except HPACKError as err:
            raise CompressionError(str(err)) from None
        except (IndexError, ValueError) as err:  # defensive: malformed integers
            raise CompressionError(str(err)) from None


def parse_request(headers: list[tuple[bytes, bytes]]) -> RequestHead:
    """Pseudo-headers and the few fields the server reads; malformed requests (§8.3)
    get a reason instead."""
    method = path = scheme = None
    content_length: int | None = None
    seen_regular = False
    seen: set[bytes] = set()
    for name, value in headers:
        if name[:1] == b":":
            if seen_regular:
                return _bad("pseudo-header after a regular header", headers)
            if name not in _REQUEST_PSEUDO or name in seen:
                return _bad("unknown or repeated pseudo-header", headers)
            seen.add(name)
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":scheme":
                scheme = value
            continue
        seen_regular = True
        if name != name.lower():
            return _bad("upper-case header name", headers)
        if name in _CONNECTION_HEADERS or (name == b"te" and value != b"trailers"):
            return _bad("connection-specific header", headers)
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1  # one int() per request
            if length < 0 or (content_length is not None and length != content_length):
                return _bad("invalid content-length", headers)
            content_length = length
    if not method or scheme is None or not path:
        return _bad("missing pseudo-header", headers)
    # A path is UTF-8 (Go takes its bytes as they are; escaped ones unquote to UTF-8)
    return RequestHead(
        method.decode("ascii", "replace"),
        path.decode("utf-8", "replace"),
        content_length,
        None,
        headers,
    )


def _bad(reason: str, headers: list[tuple[bytes, bytes]]) -> RequestHead:
    return RequestHead("", "", None, reason, headers)


# --------------------------------------------------------------------- response side
_STATUS_INDEX = {200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14}
_CONTENT_TYPE = 31
_CONTENT_LENGTH = 28
_DATE = 33

#: Sent before the first response header block of a connection: our encoder's dynamic
#: table is size 0, so any HEADER_TABLE_SIZE the client sets is respected (RFC 7541 §6.3).
TABLE_SIZE_ZERO = b"\x20"


def _integer(value: int, prefix_bits: int, flags: int) -> bytes:
    out = encode_integer(value, prefix_bits)
    out[0] |= flags
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0) + value  # no Huffman coding


def literal(name: int | bytes, value: bytes) -> bytes:
    """A literal header field without indexing (RFC 7541 §6.2.2)."""
    if isinstance(name, int):
        return _integer(name, 4, 0) + _string(value)
    return b"\x00" + _string(name) + _string(value)


def status_field(status: int) -> bytes:
    index = _STATUS_INDEX.get(status)
    if index is not None:
        return _integer(index, 7, 0x80)
    return literal(8, str(status).encode())


class ResponseEncoder:
    """Header blocks for responses, from cached pieces (shared by all connections)."""

    def __init__(self) -> None:
        self._prefix: dict[tuple[object, ...], bytes] = {}
        self._lengths: dict[int, bytes] = {}
        self._date_key: bytes = b""
        self._date_field = b""

    def block(
        self,
        status: int,
        content_type: str | None,
        headers: tuple[tuple[str, str], ...],
        length: int | None,
        date: bytes,
    ) -> bytes:
        """``date`` is the HTTP/1.1 ``Date: …\\r\\n`` line the server caches per second."""
        key = (status, content_type, headers)
        prefix = self._prefix.get(key)
        if prefix is None:
            prefix = status_field(status)
            if content_type is not None:
                prefix += literal(_CONTENT_TYPE, content_type.encode("latin-1"))
            for name, value in headers:
                prefix += literal(name.lower().encode("latin-1"), value.encode("latin-1"))
            if len(self._prefix) > 1024:
                self._prefix.clear()
            self._prefix[key] = prefix
        if date is not self._date_key:
            self._date_key = date
            self._date_field = literal(_DATE, date[6:-2])
        if length is None:
            return prefix + self._date_field
        field = self._lengths.get(length)
        if field is None:
            field = literal(_CONTENT_LENGTH, str(length).encode())
            if len(self._lengths) > 4096:
                self._lengths.clear()
            self._lengths[length] = field
        return prefix + field + self._date_field


RESPONSES = ResponseEncoder()
