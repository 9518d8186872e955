"""Route handlers, grouped by API family: keys, policies, identities, system, logs.

Each handler is ``async def handler(ctx, req) -> Response | StreamResponse`` and
raises ``APIError`` for anything the client should see as an error.
"""
