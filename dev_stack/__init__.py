"""``make run``: the development issuer and the one program (gRPC and HTTP), wired together; with
``--split``, the gRPC service and the HTTP facade as two processes.

Usage:
    python -m dev_stack                                   # issuer :8080, gRPC :50051, HTTP :3000
    python -m dev_stack --split                           # the same ports, service and facade apart
    python -m dev_stack --issuer-port 18080 --grpc-port 15051 --http-port 13000
"""

from dev_stack.config import StackConfig
from dev_stack.stack import run_stack

__all__ = ["StackConfig", "run_stack"]
