"""Authorization on the server: policies and the per-request authorizer (``policy``), the
legacy API's run-time policies shared by the workers (``ephemeral``), and identities
forwarded by a TLS proxy (``proxy``). Who a peer is lives in :mod:`pykes.pki`."""
