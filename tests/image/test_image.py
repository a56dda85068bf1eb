"""The container image, run: its default command (the one program), then the split programs (the
service and the facade), the dev issuer on the host.

Run by ``make image-test`` (which builds the image first and names it in ``SECUREROUTE_TEST_IMAGE``);
skipped otherwise, because building needs podman, buildah and a base image. There is no Docker
daemon and ``podman run`` is refused here (the sandbox forbids ``setrlimit``), so each program runs
with ``buildah run --isolation chroot --network host``: the image's file system, user, environment
and entry points, on the host's loopback. buildah does not forward SIGTERM to the program (it
kills it instead), so the stop is sent to the program's own process, as a container runtime sends
it to PID 1.

What it checks: the image's ``CMD`` is the one program, and run as the image runs it (that
command, settings from ``SECUREROUTE_*`` variables, as ``deploy/configmap.yaml`` gives them) it
serves gRPC and HTTP; the split programs start from the image too. Each runs as uid 10001; grpcurl
and curl get health, the secure route with a dev token, and a refusal without one; on SIGTERM each
drains (gRPC health turns NOT_SERVING first) and exits 0. It prints a short report.

Usage:
    make image-test
    SECUREROUTE_TEST_IMAGE=localhost/secureroute:dev .venv/bin/pytest tests/image -s
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev_issuer.token_client import fetch_token
from dev_stack.config import free_loopback_port

IMAGE = os.environ.get("SECUREROUTE_TEST_IMAGE", "")
ROOT = Path(__file__).resolve().parents[2]
GRPCURL = str(Path(sys.executable).parent / "grpcurl")
WAIT_S = 30.0
#: The user the Dockerfile names; anything else (root above all) fails the test.
IMAGE_UID = 10001

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="builds and runs the container image: run `make image-test` (needs podman, buildah)"
)


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
    #: Found in the program's command line or environment, and in no other process's.
    marker: str
    runner: subprocess.Popen[str]
    container: str
    log_path: Path

    def program_pid(self) -> int:
        """The program's own process (the Python below buildah's chroot helper, which runs in the
        host's PID namespace), found by its command line and environment: the program's entry point
        and its marker."""
        entry_point = f"/bin/{self.name}".encode()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for proc in Path("/proc").iterdir():
                try:
                    argv = (proc / "cmdline").read_bytes().split(b"\0")
                    environ = (proc / "environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if (
                    argv[0].endswith(b"/python")
                    and any(a.endswith(entry_point) for a in argv)
                    and any(self.marker.encode() in a for a in argv + environ)
                ):
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


def _default_command() -> list[str]:
    """The image's ``CMD``, from its configuration."""
    inspected = _run("podman", "image", "inspect", "--format", "{{json .Config.Cmd}}", IMAGE)
    assert inspected.returncode == 0, inspected.stderr
    command: list[str] = json.loads(inspected.stdout)
    return command


def _start(
    containers: list[Program],
    tmp_path: Path,
    command: list[str],
    *,
    marker: str,
    env: dict[str, str] | None = None,
) -> Program:
    """``command`` in a new container of the image, with ``env`` set, as ``buildah run`` allows."""
    made = _run("buildah", "from", "--pull=never", IMAGE)
    assert made.returncode == 0, made.stderr
    container = made.stdout.strip()
    name = command[0]
    log_path = tmp_path / f"{name}.log"
    env_flags = [flag for key, value in (env or {}).items() for flag in ("--env", f"{key}={value}")]
    with log_path.open("w") as log:
        runner = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", "--network", "host", *env_flags, container,
             *command],
            stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    program = Program(name=name, marker=marker, runner=runner, container=container, log_path=log_path)
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
    port = free_loopback_port()
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


HEALTH = "secureroute.v1.SecureRouteService/Health"
SECURE = "secureroute.v1.SecureRouteService/SecureRoute"


def _ready(grpc_target: str, http_url: str) -> None:
    answer = _until("gRPC health", lambda: _run(GRPCURL, "-plaintext", grpc_target, HEALTH))
    assert json.loads(answer.stdout) == {"message": "Healthy"}
    _until("HTTP health", lambda: _run("curl", "-sf", f"{http_url}/health"))


def _guarded(issuer_url: str, grpc_target: str, http_url: str) -> None:
    """grpcurl and curl: the secure route with a dev token, and a refusal without one."""
    token = fetch_token(issuer_url, sub="alice", roles=("admin",), scope="read write")
    bearer = f"authorization: Bearer {token}"
    answer = _until(
        "service accepts a dev token", lambda: _run(GRPCURL, "-plaintext", "-H", bearer, grpc_target, SECURE)
    )
    assert json.loads(answer.stdout)["subject"] == "alice"
    refused = _run(GRPCURL, "-plaintext", grpc_target, SECURE)
    assert refused.returncode != 0 and "Code: Unauthenticated" in refused.stderr, refused.stderr

    status = "%{http_code}"
    ok = _run("curl", "-s", "-o", "/dev/null", "-w", status, "-H", f"Authorization: Bearer {token}",
              f"{http_url}/secure-route")  # fmt: skip
    assert ok.stdout == "200"
    without = _run("curl", "-s", "-D", "-", "-o", "/dev/null", f"{http_url}/secure-route")
    assert without.stdout.startswith("HTTP/1.1 401"), without.stdout
    assert "www-authenticate: bearer" in without.stdout.lower()


def _drains(program: Program, grpc_target: str | None) -> float:
    """SIGTERM to the program, as a runtime sends it to PID 1; exit 0 (with gRPC health NOT_SERVING
    while it drains, if it serves gRPC). Returns the seconds it took."""
    pid = program.program_pid()
    sent = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    if grpc_target is not None:
        draining = _run(GRPCURL, "-plaintext", grpc_target, "grpc.health.v1.Health/Check")
        assert '"status": "NOT_SERVING"' in draining.stdout, draining.stdout + draining.stderr
    assert program.runner.wait(timeout=WAIT_S) == 0, program.log()
    if grpc_target is not None:
        assert "health NOT_SERVING" in program.log() and '"stopped"' in program.log()
    assert "Bearer " not in program.log(), "a token reached a log"
    return time.monotonic() - sent


def test_the_default_command_is_the_one_program_and_serves_guards_and_drains(
    containers: list[Program], issuer_url: str, tmp_path: Path
) -> None:
    command = _default_command()
    assert command == ["secureroute"]
    started = time.monotonic()
    grpc_target, http_target = f"127.0.0.1:{free_loopback_port()}", f"127.0.0.1:{free_loopback_port()}"
    http_url = f"http://{http_target}"
    env = {
        "SECUREROUTE_GRPC_LISTEN": grpc_target,
        "SECUREROUTE_HTTP_LISTEN": http_target,
        "SECUREROUTE_METRICS_LISTEN": "off",  # the default loopback port may be taken on the host
        "SECUREROUTE_ISSUER": issuer_url,
        "SECUREROUTE_AUDIENCES": "secureroute",
    }
    one = _start(containers, tmp_path, command, marker=f"SECUREROUTE_GRPC_LISTEN={grpc_target}", env=env)
    assert _uid(one.program_pid()) == IMAGE_UID, f"{one.name} does not run as {IMAGE_UID}"
    _ready(grpc_target, http_url)
    ready_s = time.monotonic() - started
    _guarded(issuer_url, grpc_target, http_url)
    stop_s = _drains(one, grpc_target)
    print(
        f"\nimage-test report ({IMAGE}), the default command {command}:\n"
        f"  gRPC and HTTP from one process ready in {ready_s:.1f} s (uid {IMAGE_UID}); grpcurl: health OK, "
        "SecureRoute with a dev token OK, without one Unauthenticated; curl: /health 200, "
        "/secure-route 200 with the token, 401 + WWW-Authenticate without\n"
        f"  SIGTERM: drained (NOT_SERVING) and exited 0 in {stop_s:.1f} s"
    )


def test_the_split_programs_serve_guard_and_drain(
    containers: list[Program], issuer_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    grpc_target, http_target = f"127.0.0.1:{free_loopback_port()}", f"127.0.0.1:{free_loopback_port()}"
    http_url = f"http://{http_target}"
    no_metrics = {"SECUREROUTE_METRICS_LISTEN": "off", "SECUREROUTE_HTTP_METRICS_LISTEN": "off"}
    service = _start(
        containers, tmp_path,
        ["secureroute-service", "--listen", grpc_target,
         "--issuer", issuer_url, "--audiences", "secureroute"],
        marker=grpc_target, env=no_metrics,
    )  # fmt: skip
    facade = _start(
        containers, tmp_path, ["secureroute-facade", "--listen", http_target, "--backend", grpc_target],
        marker=http_target, env=no_metrics,
    )  # fmt: skip
    for program in (service, facade):
        assert _uid(program.program_pid()) == IMAGE_UID, f"{program.name} does not run as {IMAGE_UID}"
    _ready(grpc_target, http_url)
    ready_s = time.monotonic() - started
    _guarded(issuer_url, grpc_target, http_url)
    # The facade first (as Kubernetes would stop a pod), then the service.
    facade_s = _drains(facade, None)
    service_s = _drains(service, grpc_target)
    print(
        f"\nimage-test report ({IMAGE}), the split programs:\n"
        f"  both ready in {ready_s:.1f} s (uid {IMAGE_UID}); the same grpcurl and curl checks pass\n"
        f"  SIGTERM: facade exited 0 in {facade_s:.1f} s, service drained (NOT_SERVING) and exited 0 "
        f"in {service_s:.1f} s"
    )
