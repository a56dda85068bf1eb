"""What the one-command stack runs where: ports, state, time limits, one program or split.
Frozen, validated.

Usage:
    config = StackConfig(issuer_port=18080, grpc_port=15051, http_port=13000)
    config.issuer_url      # "http://127.0.0.1:18080"
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AUDIENCE", "HOST", "ROOT", "StackConfig", "free_loopback_port"]

#: Everything stays on loopback: the issuer signs tokens for anyone who asks.
HOST = "127.0.0.1"


def free_loopback_port() -> int:
    """A port nobody listens on at ``HOST`` right now: for a program that cannot bind port 0 and say
    which port it got (redis-server, a container started with its port given), or for an address
    that must refuse connections (a backend or issuer that is down). Our own programs bind port 0."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


#: The programs' ``--audiences`` and the issuer's default ``aud``.
AUDIENCE = "secureroute"
#: The repository root: the children run ``python -m <package>`` from here.
ROOT = Path(__file__).resolve().parents[1]


def _require(condition: bool, setting: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{setting}: {problem}")


@dataclass(frozen=True, kw_only=True, slots=True)
class StackConfig:
    """Ports, limits and mode of ``python -m dev_stack``; the defaults are the README's."""

    #: The development issuer (also its identifier: ``http://127.0.0.1:<port>``). For each port, 0:
    #: the child binds a free one and reports it (tests and scripts); the stack then uses that one.
    issuer_port: int = 8080
    #: The gRPC service (50051: gRPC's customary port, the one the README's grpcurl examples use).
    grpc_port: int = 50051
    #: The HTTP facade (3000: the port of the article's Express app, so Postman setups keep working).
    http_port: int = 3000
    #: The admin listener (/metrics, /health, /ready) on loopback: the programs' own default, 9464
    #: (the split facade's is the next port); 0: each child binds a free port and logs it.
    metrics_port: int = 9464
    #: The issuer's key directory; absolute, because the children run from the repository root.
    state_dir: Path = Path(".dev-state/issuer")
    #: Longest wait for each child to become ready, seconds (first start generates an RSA key).
    ready_timeout_s: float = 60.0
    #: Grace between SIGTERM and SIGKILL when stopping a child, seconds.
    stop_timeout_s: float = 10.0
    #: Where to write a JSON summary (URLs, token, pids) once everything is ready; None: nowhere.
    ready_file: Path | None = None
    #: The interpreter the children run on (the venv's, when started by ``make run``).
    python: str = sys.executable
    #: False: the one program (``python -m secureroute``) serves gRPC and HTTP; True: the split
    #: deployment, the service and a facade calling it over gRPC, as two processes.
    split: bool = False

    def __post_init__(self) -> None:
        ports = {"issuer_port": self.issuer_port, "grpc_port": self.grpc_port, "http_port": self.http_port}
        for name, port in ports.items():
            _require(0 <= port <= 65535, name, f"must be 0..65535 (0: a free one), got {port}")
        fixed = [port for port in ports.values() if port]
        _require(len(set(fixed)) == len(fixed), "ports", "issuer, gRPC and HTTP ports must differ")
        _require(
            0 <= self.metrics_port <= 65534, "metrics_port", f"must be 0..65534, got {self.metrics_port}"
        )
        _require(self.ready_timeout_s > 0, "ready_timeout", "must be positive")
        _require(self.stop_timeout_s > 0, "stop_timeout", "must be positive")
        object.__setattr__(self, "state_dir", Path(self.state_dir).absolute())

    @property
    def issuer_url(self) -> str:
        return f"http://{HOST}:{self.issuer_port}"

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"
