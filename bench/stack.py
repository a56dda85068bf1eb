"""The system under test as real processes on loopback, beside the issuer they all trust.

A jwt_authn ``LoopbackIssuer`` serves discovery and JWKS from a thread of the driver (so the storm
can read its fetch counters). Each server is started the way an operator starts it (``python -m
service``, ``python -m http_facade``, ``node server.js``, ``python -m bench.peers.pyjwt_grpc``) by
``dev_stack.children.Child``: on 127.0.0.1 port 0, the port it got read from its start-up line, and
handed out once it answers: a gRPC server once SecureRoute answers OK to ``ready_token`` (its keys
are loaded), an HTTP server once ``/health`` answers 200. Logs go to files, never to a pipe that
could fill. Every server is stopped on exit.

Usage:
    with Stack(workdir) as stack:
        stack.ready_token = mint.one("RS256")          # signed with stack.keys
        service = stack.start_grpc("service", stack.service_argv())
        facade = stack.start_http("facade", [sys.executable, "-m", "http_facade", "--backend", ...])
        print(stack.issuer_url, stack.fetches())
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import grpc
from jwcrypto import jwk

from dev_stack.children import Child, ChildExited
from jwt_authn.testing import LoopbackIssuer
from service.unix_socket import parse_unix_socket_path

__all__ = ["ANY_PORT", "AUDIENCE", "REPO_ROOT", "Stack", "check_alive", "http_get"]

#: The audience every server expects and every token carries.
AUDIENCE = "secureroute"
REPO_ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S = 60.0
#: Where every server listens: a loopback port of its own, reported in its start-up line.
ANY_PORT = "127.0.0.1:0"


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


#: Metrics stay on, as by default (they are part of what a request costs), on a port of their own:
#: servers that run side by side would all want the default one.
_METRICS_ON_A_FREE_PORT = ("--metrics-listen", ANY_PORT)


class Stack:
    """The issuer (on a thread), and every server started through it."""

    def __init__(self, workdir: Path, *, log_level: str = "INFO", algorithms: tuple[str, ...] = ("RS256",)):
        self._workdir = workdir
        self._log_level = log_level
        self._issuer = LoopbackIssuer(algorithms=algorithms, audience=AUDIENCE)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-issuer", daemon=True)
        self._servers: list[Child] = []
        self._socket_dirs: list[Path] = []
        #: A valid token: a gRPC server is ready once SecureRoute answers OK to it.
        self.ready_token = ""

    def __enter__(self) -> Stack:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._issuer.start(), self._loop).result(timeout=120)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for server in reversed(self._servers):
            asyncio.run(server.stop())
        for directory in self._socket_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        asyncio.run_coroutine_threadsafe(self._issuer.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    @property
    def issuer_url(self) -> str:
        return self._issuer.url

    @property
    def keys(self) -> dict[str, jwk.JWK]:
        """The issuer's current private signing key of each algorithm."""
        return dict(self._issuer.tokens.keys)

    def fetches(self) -> tuple[int, int]:
        """(discovery documents served, JWKS documents served) so far."""
        return self._issuer.discovery_fetches, self._issuer.jwks_fetches

    def unix_socket_path(self, name: str) -> Path:
        """``workdir/name``, or ``name`` in a fresh short directory under /tmp when that path is too
        long for a Unix socket address (sockaddr_un holds 107 bytes; ``--workdir`` may be deep)."""
        try:
            return Path(parse_unix_socket_path(str((self._workdir / name).absolute())))
        except ValueError:
            directory = Path(
                tempfile.mkdtemp(prefix="srb-", dir="/tmp")
            )  # /tmp, not $TMPDIR: that may be as deep
            self._socket_dirs.append(directory)
            return Path(parse_unix_socket_path(str(directory / name)))

    def service_argv(self, *extra: str, launcher: Sequence[str] = ("service",)) -> list[str]:
        """``python -m service`` (or a bench variant of it, ``launcher``) trusting the issuer."""
        return [
            sys.executable, "-m", *launcher, "--listen", ANY_PORT, "--issuer", self.issuer_url,
            "--audiences", AUDIENCE, "--grace-period-s", "1", "--log-level", self._log_level,
            *_METRICS_ON_A_FREE_PORT, *extra,
        ]  # fmt: skip

    def facade_argv(self, backend: str, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "http_facade", "--listen", ANY_PORT, "--backend", backend,
            "--log-level", self._log_level, *_METRICS_ON_A_FREE_PORT, *extra,
        ]  # fmt: skip

    def one_program_argv(self, *extra: str) -> list[str]:
        """``python -m secureroute``: HTTP on the benchmark's port, gRPC on a free one (not loaded
        here: section 2 measures the same gRPC server)."""
        return [
            sys.executable, "-m", "secureroute", "--http-listen", ANY_PORT,
            "--grpc-listen", ANY_PORT, "--issuer", self.issuer_url, "--audiences", AUDIENCE,
            "--grace-period-s", "1", "--log-level", self._log_level, *_METRICS_ON_A_FREE_PORT, *extra,
        ]  # fmt: skip

    def _spawn(self, name: str, argv: Sequence[str], cwd: Path, kind: str) -> Child:
        """Start a server; return it once it has reported its ``kind`` listener (its ``port``)."""
        log = self._workdir / f"{name}-{len(self._servers)}.log"
        server = Child.start(name, argv, log=log, cwd=cwd)
        self._servers.append(server)
        asyncio.run(server.listening(kind, timeout_s=_START_TIMEOUT_S))
        return server

    def start_grpc(self, name: str, argv: Sequence[str], cwd: Path = REPO_ROOT) -> Child:
        """Start a gRPC server; return it once SecureRoute answers OK to ``ready_token``."""
        server = self._spawn(name, argv, cwd, "grpc")
        call = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        secure_route = call.unary_unary(
            "/secureroute.v1.SecureRouteService/SecureRoute",
            request_serializer=None,
            response_deserializer=None,
        )
        metadata = (("authorization", f"Bearer {self.ready_token}"),)
        try:
            deadline = time.monotonic() + _START_TIMEOUT_S
            while time.monotonic() < deadline:
                check_alive(server)
                try:
                    secure_route(b"", metadata=metadata, timeout=2)
                    return server
                except grpc.RpcError:
                    time.sleep(0.1)
        finally:
            call.close()
        raise RuntimeError(f"{name} did not answer SecureRoute:\n{server.tail()}")

    def start_http(self, name: str, argv: Sequence[str], cwd: Path = REPO_ROOT) -> Child:
        """Start an HTTP server; return it once ``/health`` answers 200."""
        server = self._spawn(name, argv, cwd, "http")
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            check_alive(server)
            try:
                if http_get(f"http://127.0.0.1:{server.port}/health", timeout_s=1)[0] == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer /health:\n{server.tail()}")


def check_alive(server: Child) -> None:
    """Raise ChildExited, with its last lines, if ``server`` has exited."""
    if (code := server.returncode) is not None:
        raise ChildExited(server.name, code, server.tail())
