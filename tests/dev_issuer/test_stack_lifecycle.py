"""``python -m dev_stack`` (what ``make run`` runs): ready banner, clean stop, a dying child, busy ports;
the one program (the default) and the split deployment (``--split``)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from dev_issuer.token_client import fetch_token
from dev_stack.testing import LiveStack, wait_gone

RunCommand = Callable[..., subprocess.CompletedProcess[str]]

#: Mode -> its children, in start order.
MODES = {"one": ("issuer", "secureroute"), "split": ("issuer", "service", "facade")}
#: Mode -> the child that serves gRPC.
GRPC_CHILD = {"one": "secureroute", "split": "service"}


@pytest.mark.parametrize("mode", MODES)
def test_ready_banner_then_sigterm_stops_everything_with_exit_0(tmp_path: Path, mode: str) -> None:
    stack = LiveStack(tmp_path, split=mode == "split")
    stack.start()
    try:
        assert stack.summary["secure_route_status"] == "OK"
        banner = stack.banner()
        grpc_port = stack.grpc_address.rsplit(":", 1)[1]
        assert f"export TOKEN={stack.token}" in banner
        assert f"grpcurl -plaintext {stack.grpc_address} list" in banner
        secure_route = (
            f'-H "authorization: Bearer $TOKEN" 127.0.0.1:{grpc_port} secureroute.v1.SecureRouteService/'
        )
        assert secure_route + "SecureRoute" in banner
        assert f'curl -i -H "Authorization: Bearer $TOKEN" {stack.http_url}/secure-route' in banner
        assert f"-m dev_issuer token --issuer-url {stack.issuer_url}" in banner
        assert f"python -m {GRPC_CHILD[mode]}: secureroute.v1.SecureRouteService" in banner
        assert tuple(stack.pids) == MODES[mode]
        pids = list(stack.pids.values())
    finally:
        code = stack.stop()
    assert code == 0, stack.log()
    assert wait_gone(pids) == []
    log = stack.log()
    stopped = [log.index(f"{name} stopped (exit code 0)") for name in reversed(MODES[mode])]
    assert stopped == sorted(stopped), "not stopped in reverse start order"
    assert "eyJ" not in log, "a token reached the logs"


@pytest.mark.parametrize("mode", MODES)
def test_a_dying_child_stops_the_rest_and_exits_non_zero(tmp_path: Path, mode: str) -> None:
    stack = LiveStack(tmp_path, split=mode == "split")
    stack.start()
    try:
        pids = stack.pids
        os.kill(pids[GRPC_CHILD[mode]], signal.SIGKILL)
        assert stack.process is not None
        code = stack.process.wait(timeout=30)
    finally:
        stack.stop()
    assert code == 1
    assert f"{GRPC_CHILD[mode]} exited unexpectedly" in stack.log()
    assert wait_gone(list(pids.values())) == []


def test_a_busy_port_is_reported_before_anything_starts(tmp_path: Path, run_command: RunCommand) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        started = time.monotonic()
        argv = [
            sys.executable, "-m", "dev_stack",
            "--issuer-port", "0", "--grpc-port", str(busy), "--http-port", "0",
            "--state-dir", str(tmp_path / "state"),
        ]  # fmt: skip
        completed = run_command(argv, timeout_s=60)
    assert completed.returncode == 2
    assert f"{busy}" in completed.stderr and "in use" in completed.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "state").exists(), "nothing should have started"


def test_bad_settings_exit_2(run_command: RunCommand) -> None:
    argv = [sys.executable, "-m", "dev_stack", "--grpc-port", "3000", "--http-port", "3000"]
    completed = run_command(argv, timeout_s=60)
    assert completed.returncode == 2
    assert "ports" in completed.stderr


def _secure_route_status(http_url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(f"{http_url}/secure-route", headers=headers)  # noqa: S310 - our http URL
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.timeout(180)  # waits up to 90 s for the service's next key-set refresh
def test_key_rotation_against_the_running_service(tmp_path: Path, run_command: RunCommand) -> None:
    """Rotate while the stack runs: old tokens keep working (grace period) and the service accepts
    the new key by itself, without a restart. It refreshes its key set on an unknown kid at most
    once per cooldown (30 s) and routinely every JWKS max-age (60 s, clamped): so within ~60 s.
    --immediate signs with the new key at once, so the service meets a kid it has not fetched yet
    (a plain rotate waits the max-age first; tests/dev_issuer/test_issuer_rotation.py)."""
    with LiveStack(tmp_path) as stack:
        old_token = stack.token
        rotate = [sys.executable, "-m", "dev_issuer", "rotate", "--url", stack.issuer_url, "--immediate"]
        completed = run_command(rotate, timeout_s=60, check=True)
        new_kids = {k["kid"] for k in json.loads(completed.stdout)["added"]}
        new_token = fetch_token(stack.issuer_url, sub="bob")
        assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] in new_kids
        give_up_at = time.monotonic() + 90
        while _secure_route_status(stack.http_url, new_token) != 200:
            assert time.monotonic() < give_up_at, "the service never accepted the rotated key"
            time.sleep(1)
        assert _secure_route_status(stack.http_url, old_token) == 200  # still in its grace period


def test_no_orphans_even_when_the_stack_itself_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives dev_stack no chance to clean up; the kernel's parent-death signal does it."""
    stack = LiveStack(tmp_path)
    stack.start()
    pids = list(stack.pids.values())
    assert stack.process is not None
    stack.process.kill()
    stack.process.wait(timeout=10)
    assert wait_gone(pids) == [], "children outlived a killed dev_stack"
