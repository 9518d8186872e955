"""The Vault/OpenBao client pykes stands on: HTTP requests and TLS (``http``), login and
token renewal (``auth``), and a logged-in client that watches the seal (``client``) —
shared by the Vault keystore and the stateful store's K/V v2 engine."""
