"""gateway: grpc-gateway-style JSON/HTTP front for the gRPC services, built from google.api.http annotations."""
