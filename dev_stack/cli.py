"""Command line of ``python -m dev_stack`` (what ``make run`` runs).

Usage:
    python -m dev_stack
    python -m dev_stack --split          # the service and the facade as two processes
    python -m dev_stack --issuer-port 18080 --grpc-port 15051 --http-port 13000 --ready-file /tmp/ready.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from dev_stack.config import StackConfig
from dev_stack.stack import run_stack

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    defaults = StackConfig()
    parser = argparse.ArgumentParser(
        prog="python -m dev_stack",
        description="Start the development issuer and the one program (gRPC and HTTP in one process) on "
        "127.0.0.1, configured for each other; with --split, the gRPC service and the HTTP facade as two "
        "processes instead. Ctrl-C stops them all.",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the split deployment: python -m service plus python -m http_facade calling it over gRPC",
    )
    for name in ("issuer", "grpc", "http"):
        default = getattr(defaults, f"{name}_port")
        help_text = f"default {default}; 0: a free one"
        parser.add_argument(f"--{name}-port", type=int, default=default, help=help_text)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="admin listener on loopback (the split facade's: the next port); 0 picks free ports "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".dev-state/issuer"), help="issuer keys (default %(default)s)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=defaults.ready_timeout_s,
        help="seconds per child (default %(default)s)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=defaults.stop_timeout_s,
        help="SIGTERM to SIGKILL, s (default %(default)s)",
    )
    parser.add_argument(
        "--ready-file", type=Path, help="write a JSON summary (URLs, token, pids) here when ready"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = StackConfig(
            issuer_port=args.issuer_port,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            metrics_port=args.metrics_port,
            state_dir=args.state_dir,
            ready_timeout_s=args.ready_timeout,
            stop_timeout_s=args.stop_timeout,
            ready_file=args.ready_file,
            split=args.split,
        )
    except ValueError as err:
        print(f"dev_stack: error: {err}", file=sys.stderr)
        return 2
    return asyncio.run(run_stack(config))
