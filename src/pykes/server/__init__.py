"""The pykes HTTPS server: TLS listener, HTTP/1.1 + HTTP/2, one route table, handlers."""
