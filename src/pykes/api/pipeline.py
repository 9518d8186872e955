"""The request pipeline shared by HTTP/1.1 and HTTP/2 (docs/compat/api.md §3).

Order matters for status codes: ServeMux routing (404 / 301) → method check (405) →
resource extraction → body limit (applied while reading) → write deadline → auth
(400 / 403) → handler.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from pykes.api.messages import JSON, Request, Response, StreamResponse
from pykes.api.selector import query_enclave
from pykes.auth.proxy import TLSProxy, client_ip
from pykes.errors import APIError, NoClientCertificateError
from pykes.goformat.json import error_body
from pykes.names import valid_name

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.routes import RouteTable
    from pykes.api.state import ServerState

MAX_NOTED = 1024  # query strings and enclave names a stateless server notes, at most

_NOT_FOUND = Response(
    404,
    b"404 page not found\n",
    "text/plain; charset=utf-8",
    (("X-Content-Type-Options", "nosniff"),),
)


def error_response(status: int, message: str) -> Response:
    return Response(status, error_body(message), JSON)


def api_error_response(err: APIError) -> Response:
    return Response(err.status, error_body(err.message), JSON)


def clean_path(path: str) -> str:
    """Go's ``net/http`` cleanPath: ``path.Clean`` keeping a trailing slash."""
    if path == "":
        return "/"
    if path[0] != "/":
        path = "/" + path
    if "//" not in path and "/." not in path:
        return path
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    cleaned = "/" + "/".join(out)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _redirect(target: str, query: str, method: str) -> Response:
    location = quote(target, safe="/:@!$&'()*+,;=-._~")
    if query:
        location += "?" + query
    body = b""
    if method in ("GET", "HEAD"):
        body = f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()
    return Response(301, body, "text/html; charset=utf-8", (("Location", location),))


def route_request(routes: RouteTable, req: Request, query: str) -> Response | None:
    """Attach the route to ``req`` (at header time, for its body limit).

    Returns an immediate response for requests that never reach a route: unknown paths
    (404), unclean paths and slash-less subtree roots (301), wrong methods (405).
    """
    cleaned = clean_path(req.path)
    if cleaned != req.path and req.method != "CONNECT":  # Go cleans no CONNECT path
        return _redirect(cleaned, query, req.method)
    route = routes.lookup(req.path)
    if route is None:
        target = routes.redirect_target(req.path)
        if target is not None:
            return _redirect(target, query, req.method)
        return _NOT_FOUND
    if req.method != route.method and not (req.method == "POST" and route.method == "PUT"):
        return Response(
            405,
            error_body(f"received method '{req.method}' expected '{route.method}'"),
            JSON,
            (("Accept", route.method),),
        )
    req.route = route
    req.resource = req.path[len(route.path) :] if route.subtree else ""
    req.query = query
    return None


async def respond(
    state: ServerState, req: Request, early: Response | None
) -> Response | StreamResponse:
    """The response to a request (``early`` from ``route_request``, or the handler's),
    with its audit event: every request is audited, whatever its status.

    Who and where are resolved here, once: the identity (a TLS proxy's forwarded one),
    then the tenant context the request acts in, against whose authorizer it is checked
    and which its handler receives. They run in this one coroutine (no nested
    ``handle``/``_run`` coroutines): per request CPU, docs/performance.md. Only
    stateful mode (an enclave's context: one call, a coroutine only when this worker
    does not hold it yet) and a new query string cost a call more."""
    if early is not None:
        state.log.audit(req, early.status)
        return early
    route = req.route
    assert route is not None
    ctx = state.context  # stateless mode: the one tenant
    try:
        tenants = state.tenants
        if tenants is not None:  # stateful mode: the enclave's context (held: no await)
            if route.auth != "none":
                ctx = tenants.selected(req) or await tenants.request_context(req, state.proxy)
        elif req.query and req.query not in state.queries_seen:  # stateless: ?enclave=
            _note_enclave(state, req)
        auth = route.auth
        if auth == "policy" and req.has_cert and req.identity not in state.proxy.identities:
            ctx.authorizer.authorize(req.identity, req.path)  # authenticate(), inline
        elif auth != "none":
            authenticate(state, ctx, req)
    except APIError as err:
        response = _denied(state, req, err)
        state.log.audit(req, response.status)
        return response
    # Counted routes: only requests that passed authentication (docs/compat/observability.md §3).
    requests = state.metrics.requests if route.counted else None
    if requests is not None:
        requests.begin()
    status = 0  # a cancelled request (client gone) is timed but has no status
    try:
        try:
            response = await route.handler(ctx, req)
        except APIError as err:
            response = api_error_response(err)
        except Exception as err:  # a bug: never crash the connection, never leak details
            state.log.error(f"internal error: {type(err).__name__}", req)
            response = error_response(500, "internal server error")
        status = response.status
    finally:
        elapsed = time.perf_counter() - req.started  # one clock reading: metrics and audit
        if requests is not None:
            requests.end(status, elapsed)
    state.log.audit(req, status, elapsed)
    return response


def _note_enclave(state: ServerState, req: Request) -> None:
    """Stateless mode: a warning the first time a ``?enclave=`` names an enclave (its
    requests carry no headers to look at). Each query string is looked at once."""
    queries = state.queries_seen
    if len(queries) < MAX_NOTED:
        queries.add(req.query)
    name = query_enclave(req.query)
    seen = state.enclaves_seen
    if name and name not in seen and len(seen) < MAX_NOTED and valid_name(name):
        seen.add(name)
        state.log.warn(
            f"enclave '{name}' ignored: a stateless server has one key space for every "
            "enclave (a 'store' in the config file enables enclaves, docs/stateful.md)",
            req,
        )


def authenticate(state: ServerState, ctx: Context, req: Request) -> None:
    """The identity and authorization steps of a routed request: ``APIError`` (400 /
    403) when it may not go on to its handler in ``ctx``."""
    route = req.route
    assert route is not None
    if route.auth == "none":
        return
    if req.identity in state.proxy.identities:
        _forwarded_identity(state.proxy, req, route.auth != "identify")
    if route.auth == "identify":
        return
    if not req.has_cert:
        raise NoClientCertificateError()
    if route.authorize is None:  # "policy"
        ctx.authorizer.authorize(req.identity, req.path)
    else:  # "legacy": the route's own rules
        route.authorize(ctx.authorizer, req)


def refusal(state: ServerState, req: Request) -> Response | None:
    """The answer of ``authenticate`` when it refuses ``req`` (None: the request may go
    on), before the body is read (``Expect: 100-continue``, wire/http1.py). Stateful
    mode decides after the body (the enclave's context may have to be read first)."""
    if state.tenants is not None:
        return None
    try:
        authenticate(state, state.context, req)
    except APIError as err:
        return _denied(state, req, err)
    return None


def _denied(state: ServerState, req: Request, err: APIError) -> Response:
    state.log.debug(f"access denied: {err.message}", req)
    route = req.route
    if route is not None and route.answer_error is not None:  # the KMS API's errors
        return route.answer_error(err)
    return api_error_response(err)


def _forwarded_identity(proxy: TLSProxy, req: Request, required: bool) -> None:
    """The identity step for a TLS proxy's request: the forwarded client's identity and
    address replace the proxy's. Without a usable certificate a policy route fails
    (``required``, Go's 400/403); an identify-only route serves it anonymously."""
    ip = client_ip(req.headers)
    if ip is not None:
        req.ip = ip
    try:
        req.identity = proxy.client_identity(req.headers)
    except APIError:
        if required:
            raise
        req.identity, req.has_cert = "", False
