"""The KMS API's protobuf messages, generated from proto/pykes/kms/pb by `make proto`
(never edit the ``_pb2`` modules by hand)."""
