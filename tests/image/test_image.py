"""The container image, run: the service and the facade from the image, the dev issuer on the host.

Run by ``make image-test`` (which builds the image first and names it in ``SECUREROUTE_TEST_IMAGE``);
skipped otherwise, because building needs podman, buildah and a base image. There is no Docker
daemon and ``podman run`` is refused here (the sandbox forbids ``setrlimit``), so each program runs
with ``buildah run --isolation chroot --network host``: the image's file system, user, environment
and entry points, on the host's loopback. buildah does not forward SIGTERM to the program (it
kills it instead), so the stop is sent to the program's own process, as a container runtime sends
it to PID 1.

What it checks: both programs start from the image as uid 10001; grpcurl and curl get health, the
secure route with a dev token, and a refusal without one; on SIGTERM each drains (the service's
health turns NOT_SERVING first) and exits 0. It prints a short report.

Usage:
    make image-test
    SECUREROUTE_TEST_IMAGE=localhost/secureroute:dev .venv/bin/pytest tests/image -s
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev_issuer.token_client import fetch_token

IMAGE = os.environ.get("SECUREROUTE_TEST_IMAGE", "")
ROOT = Path(__file__).resolve().parents[2]
GRPCURL = str(Path(sys.executable).parent / "grpcurl")
WAIT_S = 30.0
#: The user the Dockerfile names; anything else (root above all) fails the test.
IMAGE_UID = 10001

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="builds and runs the container image: run `make image-test` (needs podman, buildah)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(*argv: str, timeout_s: float = WAIT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


@dataclass
class Program:
    """One program from the image, under ``buildah run``."""

    name: str
    listen: str
    runner: subprocess.Popen[str]
    container: str
    log_path: Path

    def program_pid(self) -> int:
        """The program's own process (the Python below buildah's chroot helper, which runs in the
        host's PID namespace), found by its command line: the program's name and listen address."""
        wanted = [self.name.encode(), self.listen.encode()]
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for proc in Path("/proc").iterdir():
                try:
                    argv = (proc / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if argv[0].endswith(b"/python") and all(any(w in a for a in argv) for w in wanted):
                    return int(proc.name)
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def containers(tmp_path: Path) -> Iterator[list[Program]]:
    started: list[Program] = []
    yield started
    for program in started:
        if program.runner.poll() is None:
            program.runner.kill()
            program.runner.wait(timeout=WAIT_S)
        _run("buildah", "rm", program.container)


def _start(containers: list[Program], tmp_path: Path, name: str, listen: str, *args: str) -> Program:
    made = _run("buildah", "from", "--pull=never", IMAGE)
    assert made.returncode == 0, made.stderr
    container = made.stdout.strip()
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log:
        runner = subprocess.Popen(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                "--network",
                "host",
                container,
                name,
                "--listen",
                listen,
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    program = Program(name=name, listen=listen, runner=runner, container=container, log_path=log_path)
    containers.append(program)
    return program


def _until(
    what: str, call: Callable[[], subprocess.CompletedProcess[str]]
) -> subprocess.CompletedProcess[str]:
    """``call()`` again until it exits 0, within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        done = call()
        if done.returncode == 0:
            return done
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {done.stdout} {done.stderr}")
        time.sleep(0.2)


@pytest.fixture
def issuer_url(tmp_path: Path) -> Iterator[str]:
    """The development issuer on the host (it is never in the image)."""
    port = _free_port()
    log = (tmp_path / "issuer.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dev_issuer", "serve", "--listen", f"127.0.0.1:{port}",
         "--state-dir", str(tmp_path / "issuer")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _until("issuer ready", lambda: _run("curl", "-sf", f"{url}/.well-known/openid-configuration"))
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=WAIT_S)
    log.close()


def test_the_image_serves_guards_and_drains(
    containers: list[Program], issuer_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    grpc_port, http_port = _free_port(), _free_port()
    grpc_target = f"127.0.0.1:{grpc_port}"
    http_url = f"http://127.0.0.1:{http_port}"
    service = _start(
        containers, tmp_path, "secureroute-service",
        grpc_target, "--issuer", issuer_url, "--audience", "secureroute",
    )  # fmt: skip
    facade = _start(
        containers, tmp_path, "secureroute-facade", f"127.0.0.1:{http_port}", "--backend", grpc_target
    )
    for program in (service, facade):
        assert _uid(program.program_pid()) == IMAGE_UID, f"{program.name} does not run as {IMAGE_UID}"

    health = "secureroute.v1.SecureRouteService/Health"
    secure = "secureroute.v1.SecureRouteService/SecureRoute"
    answer = _until("gRPC health", lambda: _run(GRPCURL, "-plaintext", grpc_target, health))
    assert json.loads(answer.stdout) == {"message": "Healthy"}
    _until("facade health", lambda: _run("curl", "-sf", f"{http_url}/health"))
    ready_s = time.monotonic() - started

    token = fetch_token(issuer_url, sub="alice", roles=("admin",), scope="read write")
    bearer = f"authorization: Bearer {token}"
    answer = _until(
        "service accepts a dev token", lambda: _run(GRPCURL, "-plaintext", "-H", bearer, grpc_target, secure)
    )
    assert json.loads(answer.stdout)["subject"] == "alice"
    refused = _run(GRPCURL, "-plaintext", grpc_target, secure)
    assert refused.returncode != 0 and "Code: Unauthenticated" in refused.stderr, refused.stderr

    status = "%{http_code}"
    ok = _run("curl", "-s", "-o", "/dev/null", "-w", status, "-H", f"Authorization: Bearer {token}",
              f"{http_url}/secure-route")  # fmt: skip
    assert ok.stdout == "200"
    without = _run("curl", "-s", "-D", "-", "-o", "/dev/null", f"{http_url}/secure-route")
    assert without.stdout.startswith("HTTP/1.1 401"), without.stdout
    assert "www-authenticate: bearer" in without.stdout.lower()

    # SIGTERM to each program, as a runtime sends it to PID 1: the facade first (as Kubernetes
    # would stop a pod), then the service, whose health turns NOT_SERVING while it drains.
    stops: dict[str, float] = {}
    for program in (facade, service):
        pid = program.program_pid()
        sent = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if program is service:
            draining = _run(GRPCURL, "-plaintext", grpc_target, "grpc.health.v1.Health/Check")
            assert '"status": "NOT_SERVING"' in draining.stdout, draining.stdout + draining.stderr
        assert program.runner.wait(timeout=WAIT_S) == 0, program.log()
        stops[program.name] = time.monotonic() - sent
    assert "health NOT_SERVING" in service.log() and '"stopped"' in service.log()
    assert "Bearer " not in service.log() + facade.log(), "a token reached a log"

    print(
        f"\nimage-test report ({IMAGE}):\n"
        f"  both programs ready in {ready_s:.1f} s (uid {IMAGE_UID}); grpcurl: health OK, "
        "SecureRoute with a dev token OK, without one Unauthenticated; curl: /health 200, "
        "/secure-route 200 with the token, 401 + WWW-Authenticate without\n"
        f"  SIGTERM: facade exited 0 in {stops['secureroute-facade']:.1f} s, service drained "
        f"(NOT_SERVING) and exited 0 in {stops['secureroute-service']:.1f} s"
    )
