"""Key APIs: /v1/key/{create,import,describe,list,delete,generate,encrypt,decrypt,hmac}/.

Spec: docs/compat/api.md §5.6–§5.14. The hot path (generate/decrypt) is: name check → body →
cache hit → AEAD → hand-built JSON.
"""

from __future__ import annotations

from binascii import b2a_base64
from typing import TYPE_CHECKING

from pykes.api.handlers.common import INVALID_BODY, listing_prefix, read_body, require_name
from pykes.api.messages import EMPTY_OK, JSON, Request, Response
from pykes.crypto import (
    KeyType,
    KeyVersion,
    encode_key_version,
    generate_key_version,
    import_key_version,
    new_data_key,
    parse_cipher_name,
    wipe,
)
from pykes.errors import APIError
from pykes.goformat.json import BodyError, bytes_field, go_json, simple_bytes_fields, string_field
from pykes.goformat.timestamp import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.api.context import Context

_IMPORT_BODY = "invalid import key request body"
_PAGE_SIZE = 1024
_MAX_LIST_BODY = 1 << 20  # the Go SDK reads at most 1 MiB of a JSON response
# Every name costs at least 4 body bytes (`"x",`), so more names than this never fit into
# one response: asking the keystore for more would only cost memory (issue 7).
_LIST_ALL = _MAX_LIST_BODY // 4


def key_name(req: Request) -> str:
    return require_name("key name", req.resource)


async def load_key(ctx: Context, req: Request, name: str) -> KeyVersion:
    try:
        return await ctx.keys.get(name)
    except Exception as err:
        raise load_error(ctx, req, name, err) from None


def load_error(ctx: Context, req: Request, name: str, err: Exception) -> APIError:
    """What a failed key read answers: its own APIError (404 …), else a logged 502.
    The hot handlers await ``ctx.keys.get`` themselves (one coroutine less than
    ``load_key``) and raise this."""
    if isinstance(err, APIError):
        return err
    ctx.log.error(f"failed to read key '{name}': {error_text(err)}", req)
    return APIError(502, "failed to read key")


def error_text(err: Exception) -> str:
    """An error's text for the error log. Keystore errors never carry key values;
    decode errors are generic by construction (pykes.crypto)."""
    return str(err) or type(err).__name__


async def _store(ctx: Context, req: Request, name: str, key: KeyVersion) -> None:
    try:
        await ctx.keys.create(name, encode_key_version(key))
    except APIError:
        raise
    except Exception as err:
        ctx.log.error(f"failed to create key '{name}': {error_text(err)}", req)
        raise APIError(502, "failed to create key") from None


async def create(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    try:
        key = generate_key_version(ctx.facts.default_key_type, req.identity)
    except Exception:
        raise APIError(500, "failed to generate encryption key") from None
    await _store(ctx, req, name, key)
    return EMPTY_OK


async def import_(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    material, key_type = import_body(req)
    try:
        key = import_key_version(material, key_type, req.identity)
    except Exception:
        raise APIError(500, "failed to create key") from None
    await _store(ctx, req, name, key)
    return EMPTY_OK


def import_body(req: Request) -> tuple[bytes, KeyType]:
    """The key bytes and type of an import request (400 / 406 as Go, api.md §5.7)."""
    body = read_body(req, ("key", "cipher", "bytes", "algorithm"), _IMPORT_BODY)
    try:
        if "key" in body or "cipher" in body:
            material = bytes_field(body, "key")
            cipher = string_field(body, "cipher")
        else:  # legacy v0.18–v0.22 import body (docs/compat/api.md §7.1 recommendation)
            material = bytes_field(body, "bytes")
            cipher = string_field(body, "algorithm") or "AES256"
    except BodyError:
        raise APIError(400, _IMPORT_BODY) from None
    try:
        key_type = parse_cipher_name(cipher)
    except ValueError:
        raise APIError(406, f"algorithm '{cipher}' is not supported") from None
    if len(material) != 32:
        raise APIError(406, f"invalid key size for '{cipher}'")
    return material, key_type


async def describe(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    key = await load_key(ctx, req, name)
    info = {
        "name": name,
        "algorithm": key.key_type.text,
        "created_at": format_rfc3339_nano(key.created_at_ns),
    }
    if key.created_by:
        info["created_by"] = key.created_by
    return Response(200, go_json(info))


async def list_(ctx: Context, req: Request) -> Response:
    prefix = listing_prefix(req.resource)
    try:
        names, continue_at = await ctx.keys.list(prefix, _LIST_ALL)
    except APIError:
        raise
    except Exception as err:
        ctx.log.error(f"failed to list keys: {error_text(err)}", req)
        raise APIError(502, "failed to list keys") from None
    # One page with every name (docs/compat/api.md §5.9 recommendation): the SDK sends
    # `continue_at` back as the next *prefix*, so Go-style pages lose names. Only when
    # one page would exceed what the SDK reads do we fall back to Go's 1024-name pages.
    body = go_json(
        {"names": names, "continue_at": continue_at} if continue_at else {"names": names}
    )
    if len(body) > _MAX_LIST_BODY and len(names) > _PAGE_SIZE:
        body = go_json({"names": names[:_PAGE_SIZE], "continue_at": names[_PAGE_SIZE]})
    return Response(200, body)


async def delete(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    try:
        await ctx.keys.delete(name)
    except APIError:
        raise
    except Exception as err:
        ctx.log.error(f"failed to delete key '{name}': {error_text(err)}", req)
        raise APIError(502, "failed to delete key") from None
    return EMPTY_OK


def crypto_body(req: Request, fields: tuple[str, ...]) -> dict[str, bytes]:
    """The ``[]byte`` ``fields`` of a crypto request body (absent: ``b""``); a
    ``version`` field is accepted and ignored (docs/compat/api.md §6) but must be a string."""
    decoded = simple_bytes_fields(req.body, fields)  # the usual body, decoded directly
    if decoded is not None:
        return decoded
    return versioned_body(req, fields)[0]


def versioned_body(req: Request, fields: tuple[str, ...]) -> tuple[dict[str, bytes], str]:
    """The ``[]byte`` ``fields`` of a crypto request body and its ``version`` string
    (absent: ``""``), decoded in full."""
    body = read_body(req, (*fields, "version"))
    try:
        return {field: bytes_field(body, field) for field in fields}, string_field(body, "version")
    except BodyError:
        raise APIError(400, INVALID_BODY) from None


async def generate(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    context = b""
    # No body (Content-Length: 0) or {} (what the SDK sends): no context.
    if req.content_length != 0 and req.body != b"{}":
        context = crypto_body(req, ("context",))["context"]
    try:
        key = await ctx.keys.get(name)
    except Exception as err:
        raise load_error(ctx, req, name, err) from None
    # The data key is a bytearray wiped here; its base64 form (immutable bytes) must go
    # out, and one join makes one copy of it where chained `+` would make four.
    dek = new_data_key()
    try:
        ciphertext = b2a_base64(key.encrypt(dek, context), newline=False)
        plain = b2a_base64(dek, newline=False)
    except Exception:
        raise APIError(500, "failed to generate encryption key") from None
    finally:
        wipe(dek)
    body = b"".join((b'{"plaintext":"', plain, b'","ciphertext":"', ciphertext, b'"}\n'))
    return Response(200, body, JSON)


async def encrypt(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    body = crypto_body(req, ("plaintext", "context"))
    try:
        key = await ctx.keys.get(name)
    except Exception as err:
        raise load_error(ctx, req, name, err) from None
    try:
        ciphertext = key.encrypt(body["plaintext"], body["context"])
    except Exception:
        raise APIError(500, "failed to encrypt plaintext") from None
    return Response(200, b'{"ciphertext":"' + b2a_base64(ciphertext, newline=False) + b'"}\n', JSON)


async def decrypt(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    body = crypto_body(req, ("ciphertext", "context"))
    try:
        key = await ctx.keys.get(name)
    except Exception as err:
        raise load_error(ctx, req, name, err) from None
    plaintext = key.decrypt(body["ciphertext"], body["context"])  # DecryptError → 400
    return plaintext_answer(plaintext)


def plaintext_answer(plaintext: bytearray) -> Response:
    """Decrypt's 200: ``plaintext`` goes out in base64 and is wiped here."""
    try:
        plain = b2a_base64(plaintext, newline=False)
        return Response(200, b"".join((b'{"plaintext":"', plain, b'"}\n')), JSON)
    finally:
        wipe(plaintext)


async def hmac(ctx: Context, req: Request) -> Response:
    name = key_name(req)
    body = crypto_body(req, ("message",))
    key = await load_key(ctx, req, name)
    mac = key.hmac(body["message"])  # 409 for legacy keys without an HMAC key
    return Response(200, b'{"hmac":"' + b2a_base64(mac, newline=False) + b'"}\n', JSON)
