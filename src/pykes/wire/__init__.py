"""The wire: TLS, HTTP/1.1, HTTP/2, connections and the acceptor. It knows bytes and
requests, never keys or policies; a parsed request goes to the API (pykes.api.pipeline)."""
