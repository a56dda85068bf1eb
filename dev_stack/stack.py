"""Start the issuer, then the one program (or, split, the service and the facade), in order; wait
for each, supervise, stop cleanly (in reverse order).

Exit codes: 0 after Ctrl-C/SIGTERM (all children stopped), 1 when a child dies or never
becomes ready (the others are stopped first), 2 for a bad setting or a busy port.

Usage:
    exit_code = asyncio.run(run_stack(StackConfig()))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import grpc

from dev_issuer.token_client import IssuerRequestError, fetch_token
from dev_stack.banner import BANNER_ROLES, BANNER_SCOPE, BANNER_SUB, ready_banner
from dev_stack.children import Child, ChildExited, child_env
from dev_stack.config import AUDIENCE, HOST, StackConfig
from dev_stack.readiness import (
    NotReady,
    Probe,
    all_ready,
    facade_ready,
    issuer_ready,
    service_ready,
    wait_ready,
)
from secureroute.v1 import secureroute_pb2

__all__ = ["run_stack"]

T = TypeVar("T")


class _Stopped(Exception):
    """Ctrl-C or SIGTERM arrived."""


def _say(message: str) -> None:
    print(f"dev_stack: {message}", file=sys.stderr, flush=True)


#: Each child's listeners: the kind its start-up line names, and the setting its port fills (a port
#: of 0 becomes the one the child bound).
_LISTENERS = {
    "issuer": {"http": "issuer_port"},
    "secureroute": {"grpc": "grpc_port", "http": "http_port"},
    "service": {"grpc": "grpc_port"},
    "facade": {"http": "http_port"},
}


def _children(config: StackConfig) -> tuple[str, ...]:
    """The children, in start order."""
    return ("issuer", "service", "facade") if config.split else ("issuer", "secureroute")


def _argv(name: str, config: StackConfig) -> list[str]:
    """How to start ``name``, given the ports of the children started before it."""
    py = config.python
    if name == "issuer":
        return [py, "-m", "dev_issuer", "serve", "--listen", f"{HOST}:{config.issuer_port}",
                "--state-dir", str(config.state_dir), "--audience", AUDIENCE]  # fmt: skip
    # No drain delay: nothing balances over a dev stack.
    authn = ["--issuer", config.issuer_url, "--audiences", AUDIENCE, "--drain-delay-s", "0"]
    metrics = f"{HOST}:{config.metrics_port}"
    if name == "secureroute":
        return [py, "-m", "secureroute", "--grpc-listen", config.grpc_address,
                "--http-listen", f"{HOST}:{config.http_port}",
                "--metrics-listen", metrics, *authn]  # fmt: skip
    if name == "service":
        # The facade calls from loopback: the service trusts it (and only it, everything here
        # being on 127.0.0.1) to forward a DPoP request's method and URL.
        return [py, "-m", "service", "--listen", config.grpc_address, "--metrics-listen", metrics, *authn,
                "--trusted-proxies", HOST]  # fmt: skip
    facade_metrics = f"{HOST}:{config.metrics_port + 1 if config.metrics_port else 0}"
    return [py, "-m", "http_facade", "--listen", f"{HOST}:{config.http_port}",
            "--metrics-listen", facade_metrics, "--backend", config.grpc_address]  # fmt: skip


def _probe(name: str, config: StackConfig) -> Probe:
    """How to tell ``name`` is ready, once its ports are known."""
    return {
        "issuer": lambda: issuer_ready(config.issuer_url),
        "secureroute": lambda: all_ready(service_ready(config.grpc_address), facade_ready(config.http_url)),
        "service": lambda: service_ready(config.grpc_address),
        "facade": lambda: facade_ready(config.http_url),
    }[name]()


def _child_env() -> dict[str, str]:
    env = child_env()
    dropped = sorted(k for k in os.environ if k.startswith("SECUREROUTE_"))
    if dropped:
        # The children are configured by flags for each other; a stray SECUREROUTE_JWKS_URI or the
        # like from the shell would point them elsewhere.
        _say(f"ignoring {', '.join(dropped)} from the environment")
    if sys.stderr.isatty():
        # The children write to a file, so their "auto" log format would pick JSON lines; a
        # person is reading their relayed lines in this terminal, so ask for text.
        env["SECUREROUTE_LOG_FORMAT"] = "text"
    return env


def _busy_ports(config: StackConfig) -> list[int]:
    busy = []
    for port in filter(None, (config.issuer_port, config.grpc_port, config.http_port)):
        try:
            socket.create_server((HOST, port)).close()
        except OSError:
            busy.append(port)
    return busy


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """``await work``, unless a stop signal comes first (then raise _Stopped)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise _Stopped
    return task.result()


async def _secure_route_status(config: StackConfig, token: str) -> str:
    """Call SecureRoute with the fresh token, so the banner never advertises a broken setup."""
    async with grpc.aio.insecure_channel(config.grpc_address) as channel:
        # The generated stub is untyped; a typed handle on the one method does the same.
        secure_route = channel.unary_unary(
            "/secureroute.v1.SecureRouteService/SecureRoute",
            request_serializer=secureroute_pb2.SecureRouteRequest.SerializeToString,
            response_deserializer=secureroute_pb2.SecureRouteResponse.FromString,
        )
        try:
            await secure_route(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as err:
            return f"{err.code().name} ({err.details()})"
    return "OK"


def _write_ready_file(path: Path, summary: dict[str, object]) -> None:
    """Owner-only, written whole (it holds a token): tests and scripts poll for it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(summary, f)
    os.replace(tmp, path)


async def _start_all(
    config: StackConfig, children: list[Child], stop: asyncio.Event
) -> tuple[StackConfig, str]:
    """Start each child and wait until it is ready; returns the config with the bound ports, and a token."""
    env = _child_env()
    for name in _children(config):
        argv = _argv(name, config)
        _say(f"starting {name}: {' '.join(argv[1:])}")
        child = Child.start(name, argv, env=env, relay=True)
        children.append(child)
        await _unless_stopped(child.listening(*_LISTENERS[name], timeout_s=config.ready_timeout_s), stop)
        bound: dict[str, Any] = {field: child.ports[kind] for kind, field in _LISTENERS[name].items()}
        config = replace(config, **bound)
        await _unless_stopped(
            wait_ready(name, _probe(name, config), children, deadline_s=config.ready_timeout_s), stop
        )
        _say(f"{name} is ready")
    token = await _unless_stopped(
        asyncio.to_thread(
            fetch_token, config.issuer_url, sub=BANNER_SUB, roles=BANNER_ROLES, scope=BANNER_SCOPE
        ),
        stop,
    )
    return config, token


async def _supervise(config: StackConfig, stop: asyncio.Event) -> int:
    children: list[Child] = []
    exits: list[asyncio.Task[int]] = []
    try:
        config, token = await _start_all(config, children, stop)
        status = await _unless_stopped(_secure_route_status(config, token), stop)
        print(ready_banner(config, token=token, secure_route_status=status), flush=True)
        if config.ready_file is not None:
            pids = {c.name: c.pid for c in children}
            _write_ready_file(
                config.ready_file,
                {
                    "issuer_url": config.issuer_url,
                    "grpc_address": config.grpc_address,
                    "http_url": config.http_url,
                    "token": token,
                    "secure_route_status": status,
                    "pids": pids,
                },
            )
        exits = [asyncio.create_task(c.wait()) for c in children]
        await _unless_stopped(asyncio.wait(exits, return_when=asyncio.FIRST_COMPLETED), stop)
        dead = next(c for c in children if c.returncode is not None)
        raise ChildExited(dead.name, dead.returncode or 0)
    except _Stopped:
        _say("stopping (signal received)")
        return 0
    except ChildExited as err:
        _say(f"{err.name} exited unexpectedly with code {err.code}; stopping the others")
        return 1
    except (NotReady, TimeoutError, IssuerRequestError) as err:
        _say(f"{err}; stopping")
        return 1
    finally:
        for task in exits:
            task.cancel()
        for child in reversed(children):  # split: the facade first, nobody calls a stopped backend
            code = await child.stop(timeout_s=config.stop_timeout_s)
            _say(f"{child.name} stopped (exit code {code})")
        if config.ready_file is not None:
            config.ready_file.unlink(missing_ok=True)


async def run_stack(config: StackConfig) -> int:
    """Run until Ctrl-C/SIGTERM (exit 0) or until a child fails (exit 1); see the module docstring."""
    busy = _busy_ports(config)
    if busy:
        _say(f"port(s) {', '.join(map(str, busy))} on {HOST} are in use (another `make run`?); "
             "pick others with --issuer-port, --grpc-port, --http-port")  # fmt: skip
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await _supervise(config, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
