"""Command line: ``serve`` the issuer, print a ``token``, ``rotate`` the keys.

Usage:
    python -m dev_issuer serve --listen 127.0.0.1:8080 --state-dir .dev-state/issuer
    grpcurl -H "authorization: Bearer $(python -m dev_issuer token --sub alice --role admin)" ...
    python -m dev_issuer rotate --url http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from dev_issuer.app import bind_socket, create_app, start_site, url_for
from dev_issuer.config import SIGNING_ALGORITHMS, IssuerConfig, check_bind_host, parse_listen
from dev_issuer.keys import KeyStoreError
from dev_issuer.token_client import (
    DEV_CLIENT_ID,
    DEV_CLIENT_SECRET,
    IssuerRequestError,
    fetch_token,
    rotate_keys,
)

__all__ = ["main"]

_DEFAULT_URL = "http://127.0.0.1:8080"
_log = logging.getLogger("dev_issuer")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dev_issuer",
        description="A development-only OpenID Connect issuer. Never use it in production.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the issuer")
    serve.add_argument(
        "--listen", default="127.0.0.1:8080", help="host:port to bind (default 127.0.0.1:8080)"
    )
    serve.add_argument("--issuer-url", help="the issuer identifier (default http://<listen address>)")
    serve.add_argument("--state-dir", type=Path, default=Path(".dev-state/issuer"), help="where keys persist")
    serve.add_argument("--audience", default="secureroute", help="aud when a request names none")
    serve.add_argument("--ttl", type=int, default=3600, help="access-token lifetime, seconds (1..86400)")
    serve.add_argument(
        "--rotation-grace", type=float, default=600.0, help="seconds a rotated-out key stays published"
    )
    serve.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow binding beyond loopback (anyone could mint tokens)",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    token = commands.add_parser("token", help="print a fresh access token from a running issuer")
    token.add_argument("--issuer-url", default=_DEFAULT_URL, help=f"default {_DEFAULT_URL}")
    token.add_argument("--client-id", default=DEV_CLIENT_ID)
    token.add_argument("--client-secret", default=DEV_CLIENT_SECRET)
    token.add_argument("--sub", help="subject (dev-only; default: the client id)")
    token.add_argument("--scope", help='space-separated scopes, e.g. "read write"')
    token.add_argument("--role", action="append", default=[], help="a role; repeat for more (dev-only)")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (dev-only)")
    token.add_argument("--audience", help="aud (default: the issuer's default audience)")
    token.add_argument("--alg", choices=SIGNING_ALGORITHMS, help="signing algorithm (dev-only)")

    rotate = commands.add_parser(
        "rotate", help="publish new signing keys; old ones leave after the grace period"
    )
    rotate.add_argument("--url", default=_DEFAULT_URL, help=f"the issuer's base URL (default {_DEFAULT_URL})")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    check_bind_host(host, allow_non_loopback=args.allow_non_loopback)
    if args.issuer_url is None and host in ("0.0.0.0", "::"):  # noqa: S104 - we are rejecting it
        raise ValueError("issuer_url: set --issuer-url when listening on a wildcard address")
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise ValueError(f"listen: cannot bind {args.listen}: {exc.strerror}") from None
    issuer_url = args.issuer_url or url_for(host, sock.getsockname()[1])
    try:
        config = IssuerConfig(
            issuer_url=issuer_url,
            state_dir=args.state_dir,
            default_audience=args.audience,
            token_ttl_s=args.ttl,
            rotation_grace_s=args.rotation_grace,
        )
        runner = await start_site(create_app(config), sock)
    except BaseException:
        sock.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    _log.info("listening on %s", issuer_url)
    try:
        await stop.wait()
    finally:
        _log.info("stopping")
        await runner.cleanup()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 when the issuer refused, 2 on a bad setting."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            logging.basicConfig(
                level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
            return asyncio.run(_serve(args))
        if args.command == "token":
            token = fetch_token(
                args.issuer_url,
                client_id=args.client_id,
                client_secret=args.client_secret,
                sub=args.sub,
                scope=args.scope,
                roles=tuple(args.role),
                ttl_s=args.ttl,
                audience=args.audience,
                alg=args.alg,
            )
            print(token)  # stdout carries only the token, for $(...)
            return 0
        print(json.dumps(rotate_keys(args.url), indent=2))
        return 0
    except (ValueError, KeyStoreError) as exc:
        print(f"dev_issuer: error: {exc}", file=sys.stderr)
        return 2
    except IssuerRequestError as exc:
        print(f"dev_issuer: {exc}", file=sys.stderr)
        return 1
