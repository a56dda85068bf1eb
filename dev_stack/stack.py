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
from pathlib import Path
from typing import TypeVar

import grpc

from dev_issuer.token_client import IssuerRequestError, fetch_token
from dev_stack.banner import BANNER_ROLES, BANNER_SCOPE, BANNER_SUB, ready_banner
from dev_stack.children import Child
from dev_stack.config import AUDIENCE, HOST, ROOT, StackConfig
from dev_stack.readiness import (
    ChildExited,
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


def _plan(config: StackConfig) -> list[tuple[str, list[str], Probe]]:
    """Each child, how to start it, and how to tell it is ready, in start order."""
    py = config.python
    issuer = (
        "issuer",
        [py, "-m", "dev_issuer", "serve", "--listen", f"{HOST}:{config.issuer_port}",
         "--state-dir", str(config.state_dir), "--audience", AUDIENCE],
        issuer_ready(config.issuer_url),
    )  # fmt: skip
    # No drain delay: nothing balances over a dev stack.
    authn = ["--issuer", config.issuer_url, "--audiences", AUDIENCE, "--drain-delay-s", "0"]
    metrics = f"{HOST}:{config.metrics_port}"
    facade_metrics = f"{HOST}:{config.metrics_port + 1 if config.metrics_port else 0}"
    if not config.split:
        return [
            issuer,
            (
                "secureroute",
                [py, "-m", "secureroute", "--grpc-listen", config.grpc_address,
                 "--http-listen", f"{HOST}:{config.http_port}", "--metrics-listen", metrics, *authn],
                all_ready(service_ready(config.grpc_address), facade_ready(config.http_url)),
            ),
        ]  # fmt: skip
    return [
        issuer,
        (
            "service",
            # The facade calls from loopback: the service trusts it (and only it, everything here
            # being on 127.0.0.1) to forward a DPoP request's method and URL.
            [py, "-m", "service", "--listen", config.grpc_address, "--metrics-listen", metrics, *authn,
             "--trusted-proxies", HOST],
            service_ready(config.grpc_address),
        ),
        (
            "facade",
            [py, "-m", "http_facade", "--listen", f"{HOST}:{config.http_port}",
             "--metrics-listen", facade_metrics, "--backend", config.grpc_address],
            facade_ready(config.http_url),
        ),
    ]  # fmt: skip


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREROUTE_")}
    dropped = sorted(set(os.environ) - set(env))
    if dropped:
        # The children are configured by flags for each other; a stray SECUREROUTE_JWKS_URI or the
        # like from the shell would point them elsewhere.
        _say(f"ignoring {', '.join(dropped)} from the environment")
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach us as they happen
    if sys.stderr.isatty():
        # The children write to our pipe, so their "auto" log format would pick JSON lines; a
        # person is reading this terminal, so ask for text.
        env["SECUREROUTE_LOG_FORMAT"] = "text"
    return env


def _busy_ports(config: StackConfig) -> list[int]:
    busy = []
    for port in (config.issuer_port, config.grpc_port, config.http_port):
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


async def _start_all(config: StackConfig, children: list[Child], stop: asyncio.Event) -> str:
    env = _child_env()
    for name, argv, probe in _plan(config):
        _say(f"starting {name}: {' '.join(argv[1:])}")
        # Not interruptible: a spawn cancelled half-way could leave a child we no longer track.
        children.append(await Child.start(name, argv, cwd=ROOT, env=env))
        await _unless_stopped(wait_ready(name, probe, children, deadline_s=config.ready_timeout_s), stop)
        _say(f"{name} is ready")
    return await _unless_stopped(
        asyncio.to_thread(
            fetch_token, config.issuer_url, sub=BANNER_SUB, roles=BANNER_ROLES, scope=BANNER_SCOPE
        ),
        stop,
    )


async def _supervise(config: StackConfig, stop: asyncio.Event) -> int:
    children: list[Child] = []
    try:
        token = await _start_all(config, children, stop)
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
        exits = [asyncio.ensure_future(asyncio.shield(c.exited)) for c in children]
        await _unless_stopped(asyncio.wait(exits, return_when=asyncio.FIRST_COMPLETED), stop)
        dead = next(c for c in children if c.exited.done())
        raise ChildExited(dead.name, dead.exited.result())
    except _Stopped:
        _say("stopping (signal received)")
        return 0
    except ChildExited as err:
        _say(f"{err.name} exited unexpectedly with code {err.code}; stopping the others")
        return 1
    except (NotReady, IssuerRequestError) as err:
        _say(f"{err}; stopping")
        return 1
    finally:
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
