"""The KMS API's protocol, for its server and its clients: the command numbers, the
protobuf messages (``pykes.kms.pb``, generated) and the frames (docs/kms-api.md)."""
