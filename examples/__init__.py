"""Runnable examples of embedding jwt_authn in a gRPC service (see docs/embedding.md)."""
