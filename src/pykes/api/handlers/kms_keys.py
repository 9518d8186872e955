"""The KMS API's key commands (201–210) on the key rings of the path's enclave: the
keys the KES API serves in that enclave (docs/kms-api.md).

``Version`` 0 means the latest version (status, encrypt, generate, MAC); decrypt needs
the version the ciphertext was made with. Every version encrypts in the ciphertext
format of Go KES, with the associated data as the KES API's ``context``, so a data key
generated through either API decrypts through the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.api.handlers.common import require_name
from pykes.api.handlers.keys import load_error
from pykes.api.handlers.kms_listing import PAGE_SIZE, can_match, page
from pykes.api.handlers.kms_stamps import stamped
from pykes.api.handlers.rings import write_ring
from pykes.crypto import KeyType, KeyVersion, new_data_key, new_secret, parse_cipher_name, wipe
from pykes.errors import APIError, KeyNotFoundError
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.store.errors import KeyVersionNotFoundError

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.messages import Request
    from pykes.store import KeyRing

DATA_KEY_SIZE = 32  # a generate's Length 0
MAX_DATA_KEY_SIZE = 1024  # bytes (8192 bits): the client's documented maximum
IMPORT_KEY_SIZE = 32
_VERSION_ZERO = "key version must be 1 or greater"


def _key_type(text: str, default: KeyType) -> KeyType:
    if not text:
        return default
    try:
        return parse_cipher_name(text)
    except ValueError:
        raise APIError(400, f"key type '{text}' is not supported") from None


async def _ring(ctx: Context, req: Request, name: str) -> KeyRing:
    name = require_name("key name", name)
    try:  # (ctx.keys.get itself, not load_key: one coroutine less per command of a batch)
        return await ctx.keys.get(name)  # type: ignore[return-value]
    except Exception as err:
        raise load_error(ctx, req, name, err) from None


def _use(ring: KeyRing, number: int) -> tuple[int, KeyVersion]:
    """Version ``number`` of ``ring`` to make something with (0: the latest); 404 if it
    does not exist, 400 if it is below the minimum decryption version."""
    if number == 0:
        latest = ring.latest
        return latest, ring.versions[latest]
    return number, ring.version(number)


def _status(name: str, number: int, key: KeyVersion) -> rs.KeyStatusResponse:
    status = rs.KeyStatusResponse(Name=name, Version=number, Type=key.key_type.text)
    return stamped(status, key.created_at_ns, key.created_by)


async def create(ctx: Context, req: Request, m: rq.CreateKeyRequest) -> None:
    """A new key (409 ``key already exists``), or with ``AddVersion`` a new latest
    version of an existing one (of the latest version's type; 404 if none)."""
    name = require_name("key name", m.Name)
    keys = ctx.keys
    if m.AddVersion:
        await write_ring(ctx, req, name, "rotate", keys.rotate(name, req.identity))
        return
    key_type = _key_type(m.Type, ctx.facts.default_key_type)
    await write_ring(ctx, req, name, "create", keys.create(name, key_type, req.identity))


async def import_(ctx: Context, req: Request, m: rq.ImportKeyRequest) -> None:
    """A new key whose version 1 is ``Key`` (32 bytes)."""
    name = require_name("key name", m.Name)
    key_type = _key_type(m.Type, KeyType.AES256)
    if len(m.Key) != IMPORT_KEY_SIZE:
        raise APIError(400, f"invalid key length: a key has {IMPORT_KEY_SIZE} bytes")
    imported = ctx.keys.import_(name, m.Key, key_type, req.identity)
    await write_ring(ctx, req, name, "create", imported)


async def delete(ctx: Context, req: Request, m: rq.DeleteKeyRequest) -> None:
    """``AllVersions``: the key. Else one version (0: the latest; the version before it
    is the latest then, and its number is never given again): a key's only version
    takes the key with it."""
    name = require_name("key name", m.Name)
    if m.AllVersions and m.Version:
        raise APIError(400, "a version and all versions cannot both be deleted")
    keys = ctx.keys
    if not m.AllVersions:
        ring = await _ring(ctx, req, name)
        number = m.Version or ring.latest
        if number not in ring.versions:
            raise KeyVersionNotFoundError()
        if len(ring.versions) > 1:
            await write_ring(ctx, req, name, "delete a version of",
                             keys.delete_version(name, number))  # fmt: skip
            return
    try:
        await keys.delete(name)
    except APIError:
        raise
    except Exception as err:
        ctx.log.error(f"failed to delete key '{name}': {type(err).__name__}", req)
        raise APIError(502, "failed to delete key") from None


async def status(ctx: Context, req: Request, m: rq.KeyStatusRequest) -> rs.KeyStatusResponse:
    ring = await _ring(ctx, req, m.Name)
    number = m.Version or ring.latest
    if number not in ring.versions:
        raise KeyVersionNotFoundError()
    return _status(ring.name, number, ring.versions[number])


async def encrypt(ctx: Context, req: Request, m: rq.EncryptRequest) -> rs.EncryptResponse:
    ring = await _ring(ctx, req, m.Name)
    number, key = _use(ring, m.Version)
    return rs.EncryptResponse(Version=number, Ciphertext=key.encrypt(m.Plaintext, m.AssociatedData))


async def decrypt(ctx: Context, req: Request, m: rq.DecryptRequest) -> rs.DecryptResponse:
    """400 ``invalid ciphertext`` when version ``Version`` does not authenticate it."""
    if m.Version == 0:
        raise APIError(400, _VERSION_ZERO)
    ring = await _ring(ctx, req, m.Name)
    plaintext = ring.version(m.Version).decrypt(m.Ciphertext, m.AssociatedData)
    try:
        return rs.DecryptResponse(Plaintext=bytes(plaintext))
    finally:
        wipe(plaintext)


async def generate(ctx: Context, req: Request, m: rq.GenerateKeyRequest) -> rs.GenerateKeyResponse:
    """A data key of ``Length`` bytes (0: 32; at most 1024), with its ciphertext."""
    size = m.Length or DATA_KEY_SIZE
    if size > MAX_DATA_KEY_SIZE:
        raise APIError(400, f"data key length {size} is too large: at most {MAX_DATA_KEY_SIZE}")
    ring = await _ring(ctx, req, m.Name)
    number, key = _use(ring, m.Version)
    dek = new_data_key() if size == DATA_KEY_SIZE else new_secret(size)
    try:
        ciphertext = key.encrypt(dek, m.AssociatedData)
        return rs.GenerateKeyResponse(Version=number, Plaintext=bytes(dek), Ciphertext=ciphertext)
    finally:
        wipe(dek)


async def mac(ctx: Context, req: Request, m: rq.MACRequest) -> rs.MACResponse:
    ring = await _ring(ctx, req, m.Name)
    number, key = _use(ring, m.Version)
    return rs.MACResponse(Version=number, MAC=key.hmac(m.Message))


async def list_(ctx: Context, req: Request, m: rq.ListRequest) -> rs.ListKeysResponse:
    """The keys whose names start with ``Prefix``, each as its latest version's status."""
    answer = rs.ListKeysResponse()
    if not can_match(m.Prefix):
        return answer
    all_names = (await ctx.keys.list(m.Prefix, 0))[0]
    names, answer.ContinueAt = page(all_names, m.Prefix, m.ContinueAt, m.Limit)
    for name in names:
        try:
            ring = await ctx.keys.get(name)
        except KeyNotFoundError:  # deleted meanwhile
            continue
        answer.Keys.append(_status(name, ring.latest, ring.current))
    return answer


async def list_versions(ctx: Context, req: Request, m: rq.ListRequest) -> rs.ListKeysResponse:
    """The versions of the key ``Prefix`` names (exactly), ascending, from the version
    ``ContinueAt`` (a decimal number; ``""``: the first)."""
    ring = await _ring(ctx, req, m.Prefix)
    start = 0
    if m.ContinueAt:
        if not (m.ContinueAt.isascii() and m.ContinueAt.isdigit() and len(m.ContinueAt) < 10):
            raise APIError(400, "key version is not a number")
        start = int(m.ContinueAt)
    numbers = [n for n in ring.versions if n >= start]
    size = min(m.Limit if m.Limit > 0 else PAGE_SIZE, PAGE_SIZE, len(numbers))
    return rs.ListKeysResponse(
        Keys=[_status(ring.name, n, ring.versions[n]) for n in numbers[:size]],
        ContinueAt=str(numbers[size]) if size < len(numbers) else "",
    )
