"""Key APIs in stateful mode: the key rings of the request's enclave (docs/stateful.md).

A key is a ring of versions; create and import make version 1, ``rotate`` adds one.
Generate, encrypt and hmac use the latest version and name it (``"version":"<n>"``,
a decimal string: docs/compat/api.md §6). Decrypt uses the ``version`` sent, or else
tries the versions that may decrypt, newest first: AEAD authentication makes a wrong
version fail, never answer (at most ``MAX_VERSIONS`` attempts of ~10 µs). Every
version encrypts in the ciphertext format of Go KES (crypto.md §3).
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from pykes.api.handlers.common import require_name
from pykes.api.handlers.keys import (
    crypto_body,
    error_text,
    import_body,
    key_name,
    load_error,
    load_key,
    plaintext_answer,
    versioned_body,
)
from pykes.api.messages import EMPTY_OK, JSON, Request, Response
from pykes.crypto import new_data_key, wipe
from pykes.errors import APIError, DecryptError
from pykes.goformat.json import go_json, simple_bytes_fields
from pykes.goformat.timestamp import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.store import KeyRing

_MAX_DIGITS = 19  # a version number is an int64 at most
NOT_A_NUMBER = "key version is not a number"


def parse_version(text: str) -> int:
    """A version number as sent: decimal digits only (400 otherwise)."""
    if not 0 < len(text) <= _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        raise APIError(400, NOT_A_NUMBER)
    return int(text)


#: ``","version":"<n>"}\n``, the end of an answer naming version n, for the first ones.
_VERSION_ENDS = tuple(b'","version":"%d"}\n' % n for n in range(256))


def _version_end(number: int) -> bytes:
    """The end of an answer that names the version used: ``,"version":"<n>"}\\n``."""
    if number < len(_VERSION_ENDS):
        return _VERSION_ENDS[number]
    return b'","version":"%d"}\n' % number


def decrypt_with(ring: KeyRing, ciphertext: bytes, context: bytes, version: str) -> bytearray:
    """The plaintext (a ``bytearray``: wipe it) of ``ciphertext`` under version
    ``version`` of ``ring``, or, with ``version`` empty, under the newest version that
    authenticates it (``DecryptError`` if none does)."""
    if version:
        return ring.version(parse_version(version)).decrypt(ciphertext, context)
    versions = ring.versions
    latest = versions.latest  # never below the minimum: tried first, without a generator
    try:
        return versions[latest].decrypt(ciphertext, context)
    except DecryptError:
        if len(versions) == 1:
            raise
    for number, key in ring.decryption_candidates():
        if number == latest:
            continue
        try:
            return key.decrypt(ciphertext, context)
        except DecryptError:
            continue
    raise DecryptError()


async def write_ring(ctx: Context, req: Request, name: str, what: str, write: Awaitable[KeyRing]):
    """Await a write of ring ``name``; a store failure (not the client's) is a logged 502."""
    try:
        return await write
    except APIError:
        raise
    except Exception as err:
        ctx.log.error(f"failed to {what} key '{name}': {error_text(err)}", req)
        raise APIError(502, f"failed to {what} key") from None


def _name_and_version(req: Request) -> tuple[str, int]:
    """``<name>/<version>`` of the version routes."""
    name, _, version = req.resource.partition("/")
    return require_name("key name", name), parse_version(version)


async def create(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    keys = ctx.keys
    await write_ring(ctx, req, name, "create", keys.create(name, ctx.facts.default_key_type,
                                                          req.identity))  # fmt: skip
    return EMPTY_OK


async def import_(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    material, key_type = import_body(req)
    await write_ring(ctx, req, name, "create", ctx.keys.import_(name, material, key_type,
                                                              req.identity))  # fmt: skip
    return EMPTY_OK


async def describe(ctx: Context, req: Request) -> Response:
    """Go's fields (the latest version's algorithm, the ring's creation), the latest
    ``version``, the ``min_version`` that may decrypt and every stored version number."""
    name = key_name(req)
    ring = await load_key(ctx, req, name)
    info: dict[str, object] = {
        "name": name,
        "algorithm": ring.current.key_type.text,
        "created_at": format_rfc3339_nano(ring.created_at_ns),
    }
    if ring.created_by:
        info["created_by"] = ring.created_by
    info["version"] = str(ring.latest)
    info["min_version"] = str(ring.min_version)
    info["versions"] = [str(number) for number in ring.versions]
    return Response(200, go_json(info))


async def generate(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    context = b""
    if req.content_length != 0 and req.body != b"{}":
        context = crypto_body(req, ("context",))["context"]
    try:  # the cache's coroutine awaited here: one frame less than load_key
        ring = await ctx.keys.get(name)
    except Exception as err:
        raise load_error(ctx, req, name, err) from None
    versions = ring.versions
    number = versions.latest
    dek = new_data_key()
    try:
        ciphertext = b2a_base64(versions[number].encrypt(dek, context), newline=False)
        plain = b2a_base64(dek, newline=False)
    except Exception:
        raise APIError(500, "failed to generate encryption key") from None
    finally:
        wipe(dek)
    parts = (b'{"plaintext":"', plain, b'","ciphertext":"', ciphertext, _version_end(number))
    return Response(200, b"".join(parts), JSON)


async def encrypt(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    body = crypto_body(req, ("plaintext", "context"))
    ring = await load_key(ctx, req, name)
    number = ring.latest
    try:
        ciphertext = ring.versions[number].encrypt(body["plaintext"], body["context"])
    except Exception:
        raise APIError(500, "failed to encrypt plaintext") from None
    encoded = b2a_base64(ciphertext, newline=False)
    return Response(200, b'{"ciphertext":"' + encoded + _version_end(number), JSON)


async def decrypt(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    fields = ("ciphertext", "context")
    simple = simple_bytes_fields(req.body, fields)  # no version: the usual body
    body, version = (simple, "") if simple is not None else versioned_body(req, fields)
    if version:
        parse_version(version)  # a bad one is a 400 whether or not the key exists
    try:
        ring = await ctx.keys.get(name)
    except Exception as err:
        raise load_error(ctx, req, name, err) from None
    return plaintext_answer(decrypt_with(ring, body["ciphertext"], body["context"], version))


async def hmac(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    body = crypto_body(req, ("message",))
    ring = await load_key(ctx, req, name)
    number = ring.latest
    mac = ring.versions[number].hmac(body["message"])  # 409 for legacy keys
    return Response(200, b'{"hmac":"' + b2a_base64(mac, newline=False) + _version_end(number), JSON)


async def rotate(ctx: Context, req: Request) -> Response:
    """``PUT /v1/key/rotate/<name>``: a new latest version → ``{"version":"<n>"}``."""
    name = key_name(req)
    ring = await write_ring(ctx, req, name, "rotate", ctx.keys.rotate(name, req.identity))
    return Response(200, go_json({"version": str(ring.latest)}))


async def delete_version(ctx: Context, req: Request) -> Response:
    """``DELETE /v1/key/version/delete/<name>/<version>``: what it encrypted no longer
    decrypts; never the latest version."""
    name, version = _name_and_version(req)
    await write_ring(ctx, req, name, "delete a version of", ctx.keys.delete_version(name, version))
    return EMPTY_OK


async def set_minimum(ctx: Context, req: Request) -> Response:
    """``PUT /v1/key/version/minimum/<name>/<version>``: versions below it no longer
    decrypt (they stay stored: a lower minimum brings them back)."""
    name, version = _name_and_version(req)
    await write_ring(ctx, req, name, "set the minimum version of",
                   ctx.keys.set_min_version(name, version))  # fmt: skip
    return EMPTY_OK
