"""secureroute's side-by-side benchmark: token validation, gRPC and HTTP load, JWKS storm, memory.

Every figure is measured next to its reference in the same run (raw ``cryptography`` verify,
the Health RPC, ``/health``, the original Express system), repeated over a few rounds, and
reported as the median of the per-round ratios, so a shared, noisy machine still gives
comparable numbers. The report lands in ``docs/benchmarks.md``.

Usage:
    python -m bench               # the full run (make bench), about 10 minutes on 2 cores
    python -m bench --quick       # one short round of everything
    python -m bench --only validation --rounds 5
"""
