"""The KMS API (docs/kms-api.md): ``POST /v1/kms/<enclave>`` and ``POST /v1/kms``, a body
of frames of one command (pykes.kms.frames) answered by one frame each, on the store
and enclaves of the KES API. Also ``/v1/health/live`` and ``/v1/health/ready``.

A command runs in the enclave of the path (``/v1/kms``: ``default``); its handler is
in ``COMMANDS``, one per command: the cluster's in ``kms_cluster``, enclaves in
``kms_enclaves``, keys in ``kms_keys``, policies and identities in ``kms_policies`` and
``kms_identities``. Each frame is
authorized before it runs (pykes.api.kms_access: privileges and KMS policies).
Commands run in order and the first error answers the request (earlier writes of the
batch stay done). Errors are the kms-go client's (status, text): ``translate`` maps the
store's KES texts onto them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from pykes.api.handlers import (
    kms_cluster,
    kms_enclaves,
    kms_identities,
    kms_keys,
    kms_policies,
)
from pykes.api.messages import EMPTY_OK, JSON, Request, Response
from pykes.errors import ERR_NOT_ALLOWED, APIError, DecryptError, KeyExistsError
from pykes.goformat.json import error_body
from pykes.kms import errors as kms
from pykes.kms.commands import LISTS, Command
from pykes.kms.frames import body_too_large, decode_request, encode
from pykes.store.errors import EnclaveExistsError, KeyVersionNotFoundError

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.auth.authorizer import Authorizer

BINARY = "application/octet-stream"

CommandHandler = Callable[["Context", Request, Message], Awaitable["Message | None"]]

COMMANDS: dict[Command, CommandHandler] = {
    Command.CLUSTER_ADD_NODE: kms_cluster.change_membership,
    Command.CLUSTER_REMOVE_NODE: kms_cluster.change_membership,
    Command.CLUSTER_STATUS: kms_cluster.status,
    Command.CLUSTER_EDIT: kms_cluster.change_membership,
    Command.CLUSTER_ADD_HSM: kms_cluster.change_hsm,
    Command.CLUSTER_REMOVE_HSM: kms_cluster.change_hsm,
    Command.ENCLAVE_CREATE: kms_enclaves.create,
    Command.ENCLAVE_DELETE: kms_enclaves.delete,
    Command.ENCLAVE_STATUS: kms_enclaves.status,
    Command.ENCLAVE_LIST: kms_enclaves.list_,
    Command.KEY_CREATE: kms_keys.create,
    Command.KEY_DELETE: kms_keys.delete,
    Command.KEY_IMPORT: kms_keys.import_,
    Command.KEY_STATUS: kms_keys.status,
    Command.KEY_ENCRYPT: kms_keys.encrypt,
    Command.KEY_DECRYPT: kms_keys.decrypt,
    Command.KEY_GENERATE: kms_keys.generate,
    Command.KEY_LIST: kms_keys.list_,
    Command.KEY_LIST_VERSIONS: kms_keys.list_versions,
    Command.KEY_MAC: kms_keys.mac,
    Command.POLICY_CREATE: kms_policies.create,
    Command.POLICY_DELETE: kms_policies.delete,
    Command.POLICY_ASSIGN: kms_policies.assign,
    Command.POLICY_GET: kms_policies.get,
    Command.POLICY_STATUS: kms_policies.status,
    Command.POLICY_LIST: kms_policies.list_,
    Command.IDENTITY_CREATE: kms_identities.create,
    Command.IDENTITY_DELETE: kms_identities.delete,
    Command.IDENTITY_GET: kms_identities.get,
    Command.IDENTITY_LIST: kms_identities.list_,
}
"""Every command, by number: cluster (kms_cluster), enclave, key, policy, identity."""

_SUBJECTS = {
    **{c: "Name" for c in Command if c // 100 in (1, 2, 3)},
    Command.POLICY_ASSIGN: "Policy",
    **{c: "Identity" for c in Command if c // 100 == 4},
    **{c: "Prefix" for c in LISTS},
}
"""The field of each command's request that names what it acts on (a key, policy or
identity; a list's prefix), which a User's policy patterns are matched against."""


async def serve(ctx: Context, req: Request) -> Response:
    """``POST /v1/kms[/<enclave>]``: every frame's command, one answer frame each."""
    try:
        if req.body_too_large:
            raise body_too_large()
        command, messages = decode_request(req.body)
        run = COMMANDS[command]
        access, subject = ctx.kms, _SUBJECTS.get(command, "")
        if access is None:  # (stateful mode always has one)
            raise APIError(kms.ERR_PERMISSION.status, kms.ERR_PERMISSION.message)
        check_name = access.name_check(req.identity, command)
        answers = []
        for message in messages:  # each name checked: a batch may name several keys
            if check_name is not None:
                check_name(getattr(message, subject) if subject else "")
            answers.append(await run(ctx, req, message))
    except APIError as err:
        return answer_error(err)
    return Response(200, encode(command, answers), BINARY)


def authorize(authorizer: Authorizer, req: Request) -> None:
    """The KMS API's authorization step (``Route.authorize``): none before the body is
    read — every command of it is checked by ``serve`` against the enclave's KMS
    identities and policies (pykes.api.kms_access), never the KES API's."""


def translate(err: APIError) -> APIError:
    """``err`` as the KMS API says it: the kms-go client's status and text where the
    KES API's differ (409 for what exists, ``invalid ciphertext``, ``access denied``)."""
    if isinstance(err, KeyExistsError):
        return kms.ERR_KEY_EXISTS
    if isinstance(err, EnclaveExistsError):
        return kms.ERR_ENCLAVE_EXISTS
    if isinstance(err, DecryptError):
        return kms.ERR_DECRYPT
    if isinstance(err, KeyVersionNotFoundError):
        return kms.ERR_KEY_NOT_FOUND
    if err == ERR_NOT_ALLOWED:
        return kms.ERR_PERMISSION
    return err


def answer_error(err: APIError) -> Response:
    """An error answer: JSON ``{"message": …}``, which the client reads as an ErrResponse."""
    err = translate(err)
    return Response(err.status, error_body(err.message), JSON)


async def live(ctx: Context, req: Request) -> Response:
    """``GET /v1/health/live``: the server answers."""
    return EMPTY_OK


async def ready(ctx: Context, req: Request) -> Response:
    """``GET /v1/health/ready[?write]``: the store answers a read (SQLite: a node that
    reads can write, so ``?write`` asks the same)."""
    try:
        await ctx.keys.status()
    except Exception as err:
        ctx.log.warn(f"store is unavailable: {type(err).__name__}", req)
        return Response(503, error_body("store is unavailable"), JSON)
    return EMPTY_OK
