"""The system under test as real processes on loopback: the gRPC service, the HTTP facade, the Express peer.

Each server is started the way an operator starts it (``python -m service``, ``python -m
http_facade``, ``node server.js``) on a free 127.0.0.1 port, and is only handed out once it
answers: the service once its Health reports SERVING (its key set is loaded), the HTTP
servers once ``/health`` answers 200. Logs go to files, never to a pipe that could fill.
A second facade can reach the service over its Unix socket (``--listen-unix``) instead.

Usage:
    with Stack(workdir) as stack:
        socket_path = stack.unix_socket_path("grpc.sock")   # short enough for sockaddr_un
        service = stack.start_service(issuer.url, "--listen-unix", str(socket_path))
        facade = stack.start_facade(service.port)
        facade_unix = stack.start_facade(f"unix:{socket_path}", name="facade-unix")
        express = stack.start_express(issuer.url)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.tools import EXPRESS_DIR
from secureroute.unix_socket import parse_unix_socket_path

__all__ = ["AUDIENCE", "REPO_ROOT", "Server", "Stack", "free_port", "http_get", "supports_flag"]

AUDIENCE = "secureroute"
REPO_ROOT = Path(__file__).resolve().parent.parent
_SERVICE_NAME = "secureroute.v1.SecureRouteService"
_START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_get(url: str, token: str | None = None, timeout_s: float = 5.0) -> tuple[int, str]:
    """(status, body) of one GET, errors included."""
    request = urllib.request.Request(url)  # noqa: S310 - our own loopback URLs
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def supports_flag(module: str, flag: str) -> bool:
    """Whether ``python -m module --help`` lists ``flag`` (e.g. ``--workers``)."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    return flag in result.stdout


@dataclass(slots=True)
class Server:
    """One started server process."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


class Stack:
    """Starts servers, and stops every one of them on exit."""

    def __init__(self, workdir: Path, *, log_level: str = "WARNING") -> None:
        self._workdir = workdir
        self._log_level = log_level
        self.servers: list[Server] = []
        #: Directories made for socket paths the workdir could not hold; removed on exit.
        self._socket_dirs: list[Path] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        for directory in self._socket_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self._socket_dirs.clear()

    def unix_socket_path(self, name: str) -> Path:
        """``workdir/name``, or ``name`` in a fresh short directory under /tmp when that path is too
        long for a Unix socket address (sockaddr_un holds 107 bytes; ``--workdir`` may be deep)."""
        candidate = (self._workdir / name).absolute()
        try:
            return Path(parse_unix_socket_path(str(candidate)))
        except ValueError:
            # /tmp itself, not $TMPDIR: that may be as deep as the workdir.
            directory = Path(tempfile.mkdtemp(prefix="srb-", dir="/tmp"))
            self._socket_dirs.append(directory)
            return Path(parse_unix_socket_path(str(directory / name)))

    def _spawn(self, name: str, argv: Sequence[str], port: int, cwd: Path = REPO_ROOT) -> Server:
        log_path = self._workdir / f"{name}-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(  # noqa: S603
                list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        server = Server(name, process, port, log_path)
        self.servers.append(server)
        return server

    def start_service(
        self, issuer_url: str, *extra: str, launcher: Sequence[str] = ("service",), name: str = "service"
    ) -> Server:
        """The service; ``launcher`` is the module to run and its own arguments before the service's
        (``bench.timed_service`` runs the same service with timers)."""
        port = free_port()
        argv = [sys.executable, "-m", *launcher, "--listen", f"127.0.0.1:{port}", "--issuer", issuer_url]
        argv += ["--audience", AUDIENCE, "--grace-period", "1", "--log-level", self._log_level, *extra]
        server = self._spawn(name, argv, port)
        _wait_serving(server)
        return server

    def start_facade(self, backend: int | str, *extra: str, name: str = "facade") -> Server:
        """A facade whose backend is the service's loopback port, or a gRPC target (``unix:PATH``)."""
        port = free_port()
        target = f"127.0.0.1:{backend}" if isinstance(backend, int) else backend
        argv = [sys.executable, "-m", "http_facade", "--listen", f"127.0.0.1:{port}"]
        argv += ["--backend", target, "--log-level", self._log_level, *extra]
        server = self._spawn(name, argv, port)
        _wait_http(server)
        return server

    def start_express(self, node: str, issuer_url: str) -> Server:
        port = free_port()
        argv = [node, "server.js", "--listen", f"127.0.0.1:{port}", "--issuer", issuer_url]
        argv += ["--audience", AUDIENCE]
        server = self._spawn("express", argv, port, cwd=EXPRESS_DIR)
        _wait_http(server)
        return server


def _wait_serving(server: Server) -> None:
    """Until the service's Health says SERVING for SecureRouteService (its keys are loaded)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            server.check_alive()
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=_SERVICE_NAME), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not become ready:\n{server.log_tail()}")


def _wait_http(server: Server) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            status, _ = http_get(f"http://127.0.0.1:{server.port}/health", timeout_s=1)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer /health:\n{server.log_tail()}")
