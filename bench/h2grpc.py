"""``bench/loadgen/h2grpc.js``: gRPC load with a fresh bearer token on every call (Node's http2).

h2load cannot change a header per request, so cold tokens (each used once) go through this
generator, which sends the same frames and headers as h2load. It prints one JSON object.

Usage:
    result = run(ctx, port, "SecureRoute", pids=[pid], tokens=pool)   # or token=warm_token
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import BenchContext
from bench.h2load import SERVICE
from bench.measure import LoadResult, run_generators

__all__ = ["parse", "run"]

_SCRIPT = Path(__file__).resolve().parent / "loadgen" / "h2grpc.js"


def parse(output: str) -> LoadResult:
    data = json.loads(output.strip().splitlines()[-1])
    return LoadResult(
        requests=int(data["requests"]),
        rps=float(data["rps"]),
        p50_us=float(data["p50_us"] or "nan"),
        p99_us=float(data["p99_us"] or "nan"),
        errors=sum(int(v) for v in data["errors"].values()),
        tokens_exhausted=bool(data["tokens_exhausted"]),
    )


def run(
    ctx: BenchContext, port: int, method: str, *, pids: list[int], tokens: Path | None = None, token: str = ""
) -> LoadResult:
    """A fresh token per call from the file ``tokens``, or ``token`` reused."""
    assert ctx.tools.node is not None
    options = ctx.options
    source = ["--tokens", str(tokens)] if tokens is not None else ["--token", token]
    argv = [
        ctx.tools.node, str(_SCRIPT), "--url", f"http://127.0.0.1:{port}", "--path", f"{SERVICE}{method}",
        *source, "--duration", f"{options.load_duration_s:g}", "--warmup", f"{options.warmup_s:g}",
        "--connections", str(options.h2_connections), "--streams", str(options.h2_streams),
    ]  # fmt: skip
    (result,) = run_generators(
        [(argv, parse)], pids=pids, warmup_s=options.warmup_s, duration_s=options.load_duration_s
    )
    return result
