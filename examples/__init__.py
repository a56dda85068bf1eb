"""Runnable examples of embedding jwt_authn in a gRPC service (see jwt_authn/README.md)."""
