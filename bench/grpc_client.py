"""The JWKS storm's burst, in its own process: every token of a file sent at once, concurrently.

Each call is SecureRoute (or Health) with its own bearer token; requests are raw bytes (an
empty message), so no protobuf work is spent here. It fires at ``--start-at`` (epoch seconds),
so the driver can aim it into the middle of a running h2load stream, and prints one JSON
object: when the burst started and ended (epoch seconds) and how many calls ended with each
status code.

Usage:
    python -m bench.grpc_client --target 127.0.0.1:50051 --tokens storm.txt --start-at 1767000000.5
    report = fire(port, Path("storm.txt"), start_at=time.time() + 2)    # from the driver
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

__all__ = ["fire", "main"]

_SERVICE = "/secureroute.v1.SecureRouteService/"
_EMPTY_MESSAGE = b""
_CALL_TIMEOUT_S = 30.0
_LOCAL_POOL = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel


async def _burst(args: argparse.Namespace, tokens: Sequence[str]) -> dict[str, Any]:
    channels = [grpc.aio.insecure_channel(args.target, options=_LOCAL_POOL) for _ in range(args.channels)]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), 10)
    calls = [
        channel.unary_unary(_SERVICE + args.method, request_serializer=None, response_deserializer=None)
        for channel in channels
    ]
    codes: collections.Counter[str] = collections.Counter()

    async def one(index: int, token: str) -> None:
        try:
            await calls[index % len(calls)](
                _EMPTY_MESSAGE, metadata=(("authorization", f"Bearer {token}"),), timeout=_CALL_TIMEOUT_S
            )
            codes["OK"] += 1
        except grpc.aio.AioRpcError as err:
            codes[err.code().name] += 1

    if args.start_at:
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    began = time.time()
    await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
    ended = time.time()
    for channel in channels:
        await channel.close(grace=None)
    return {"requests": len(tokens), "started_at": began, "ended_at": ended, "codes": dict(codes)}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_client", description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--method", choices=("Health", "SecureRoute"), default="SecureRoute")
    parser.add_argument("--tokens", required=True, help="file of tokens, one a line, each sent once")
    parser.add_argument("--channels", type=int, default=4, help="connections to spread the calls over")
    parser.add_argument("--start-at", type=float, default=0.0, help="epoch time to fire at (0: at once)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    with open(args.tokens, encoding="ascii") as lines:
        tokens = [line.strip() for line in lines if line.strip()]
    print(json.dumps(asyncio.run(_burst(args, tokens))))


def fire(port: int, tokens: Path, *, start_at: float | None = None) -> dict[str, Any]:
    """One burst in a child process: every token of ``tokens`` at once (at ``start_at``); its report."""
    argv = [
        sys.executable,
        "-m",
        "bench.grpc_client",
        "--target",
        f"127.0.0.1:{port}",
        "--tokens",
        str(tokens),
    ]
    if start_at is not None:
        argv += ["--start-at", f"{start_at:.6f}"]
    burst = subprocess.run(  # noqa: S603
        argv,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(burst.stdout.strip().splitlines()[-1])
    return report


if __name__ == "__main__":
    main()
