"""The API: route tables, the request pipeline (identity, policy, handler, audit), the
per-request context and the handlers. It never sees a socket."""
