"""The exam's rules as plain typed Python: no SQL, no gRPC, no protobuf (an import contract says so)."""
