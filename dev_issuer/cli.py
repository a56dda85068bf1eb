"""Command line: ``serve`` the issuer, print a ``token``, ``rotate`` the keys; for DPoP (RFC 9449),
make a client key (``dpop-key``), a token bound to it (``token --dpop-key``) and a ``proof``.

``serve`` takes its settings from flags, else from the TOML file named by ``--config`` (keys named
like the flags: ``listen``, ``scopes = ["greeter.farewell"]``, ...), else the defaults.

Usage:
    python -m dev_issuer serve --listen 127.0.0.1:8080 --state-dir .dev-state/issuer --scope greeter.farewell
    grpcurl -H "authorization: Bearer $(python -m dev_issuer token --sub alice --role admin)" ...
    python -m dev_issuer rotate --url http://127.0.0.1:8080
    python -m dev_issuer dpop-key --out .dev-state/dpop-key.json     # prints its thumbprint (jkt)
    TOKEN=$(python -m dev_issuer token --dpop-key .dev-state/dpop-key.json --sub alice)
    PROOF=$(python -m dev_issuer proof --dpop-key .dev-state/dpop-key.json --token "$TOKEN" \\
            --htm GET --htu http://127.0.0.1:8081/v1/hello)
    curl -H "Authorization: DPoP $TOKEN" -H "DPoP: $PROOF" http://127.0.0.1:8081/v1/hello
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dev_issuer.app import bind_socket, create_app, start_site, url_for
from dev_issuer.config import (
    DEFAULT_SCOPES,
    SIGNING_ALGORITHMS,
    IssuerConfig,
    check_bind_host,
    parse_listen,
)
from dev_issuer.keys import KeyStoreError
from dev_issuer.token_client import (
    DEV_CLIENT_ID,
    DEV_CLIENT_SECRET,
    IssuerRequestError,
    fetch_token,
    rotate_keys,
)
from jwt_authn.dpop_client import DPOP_ALGORITHMS, DPoPKey

__all__ = ["main"]

_DEFAULT_URL = "http://127.0.0.1:8080"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_log = logging.getLogger("dev_issuer")


@dataclass(frozen=True, kw_only=True, slots=True)
class _ServeSettings:
    """``serve``'s settings; each is a flag (``--rotation-grace``) and a TOML key (``rotation_grace``)."""

    listen: str = "127.0.0.1:8080"
    issuer_url: str | None = None
    state_dir: Path = Path(".dev-state/issuer")
    audience: str = "secureroute"
    ttl: int = 3600
    rotation_grace: float = 600.0
    #: Scopes supported on top of DEFAULT_SCOPES (the flag is --scope, repeated).
    scopes: tuple[str, ...] = ()
    allow_non_loopback: bool = False
    log_level: str = "INFO"


_FILE_TYPES: dict[str, tuple[type, ...]] = {
    "listen": (str,),
    "issuer_url": (str,),
    "state_dir": (str,),
    "audience": (str,),
    "ttl": (int,),
    "rotation_grace": (int, float),
    "scopes": (list,),
    "allow_non_loopback": (bool,),
    "log_level": (str,),
}


def _read_settings_file(path: Path) -> dict[str, Any]:
    """The TOML file's keys, checked: an unknown key or a wrong type is a bad setting (exit 2)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"config: cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"config: {path} is not valid TOML: {exc}") from None
    for key, value in document.items():
        if key not in _FILE_TYPES:
            raise ValueError(f"config: unknown key {key!r} in {path}; known: {', '.join(_FILE_TYPES)}")
        wrong_bool = isinstance(value, bool) and bool not in _FILE_TYPES[key]
        if wrong_bool or not isinstance(value, _FILE_TYPES[key]):
            raise ValueError(f"{key}: wrong type in {path}: {type(value).__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ValueError(f"scopes: must be a list of strings in {path}")
    return document


def _serve_settings(args: argparse.Namespace) -> _ServeSettings:
    """Flags first, then the TOML file, then the defaults."""
    from_file = _read_settings_file(args.config) if args.config is not None else {}
    chosen: dict[str, Any] = {}
    for field in fields(_ServeSettings):
        flag_value = getattr(args, field.name)
        if flag_value is not None and flag_value is not False and flag_value != []:
            chosen[field.name] = flag_value
        elif field.name in from_file:
            chosen[field.name] = from_file[field.name]
    if "scopes" in chosen:
        chosen["scopes"] = tuple(chosen["scopes"])
    if "state_dir" in chosen:
        chosen["state_dir"] = Path(chosen["state_dir"])
    settings = _ServeSettings(**chosen)
    if settings.log_level not in _LOG_LEVELS:
        raise ValueError(f"log_level: one of {', '.join(_LOG_LEVELS)}, got {settings.log_level!r}")
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dev_issuer",
        description="A development-only OpenID Connect issuer. Never use it in production.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the issuer",
        description="Flags win over the TOML file (--config), which wins over the defaults.",
    )
    serve.add_argument(
        "--config", type=Path, help="a TOML file whose keys are the flags' names with underscores"
    )
    serve.add_argument("--listen", help="host:port to bind (default 127.0.0.1:8080)")
    serve.add_argument("--issuer-url", help="the issuer identifier (default http://<listen address>)")
    serve.add_argument("--state-dir", type=Path, help="where keys persist (default .dev-state/issuer)")
    serve.add_argument("--audience", help="aud when a request names none (default secureroute)")
    serve.add_argument("--ttl", type=int, help="access-token lifetime, seconds (1..86400; default 3600)")
    serve.add_argument(
        "--rotation-grace",
        type=float,
        help="seconds a rotated-out key stays published after it stopped signing (default 600)",
    )
    serve.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        metavar="NAME",
        help=f"also support this scope; repeat for more (always supported: {' '.join(DEFAULT_SCOPES)})",
    )
    serve.add_argument(
        "--allow-non-loopback",
        action="store_true",
        default=None,
        help="allow binding beyond loopback (anyone could mint tokens)",
    )
    serve.add_argument("--log-level", choices=_LOG_LEVELS, help="default INFO")

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
    token.add_argument(
        "--dpop-key",
        type=Path,
        metavar="FILE",
        help="bind the token to this DPoP key (from dpop-key): a DPoP-bound token (RFC 9449 §5)",
    )

    key = commands.add_parser(
        "dpop-key",
        help="make a DPoP client key (a private JWK file, mode 0600); prints its thumbprint (jkt)",
    )
    key.add_argument("--out", type=Path, required=True, metavar="FILE", help="a new file (never overwritten)")
    key.add_argument("--alg", choices=DPOP_ALGORITHMS, default="ES256", help="default ES256")

    proof = commands.add_parser(
        "proof",
        help="print a fresh DPoP proof for one request",
        description="gRPC calls: --htm POST --htu <http|https>://<host:port>/<package.Service>/<Method>.",
    )
    proof.add_argument("--dpop-key", type=Path, required=True, metavar="FILE", help="the key from dpop-key")
    proof.add_argument("--htm", default="POST", help="the request's method (default POST, as for gRPC)")
    proof.add_argument("--htu", required=True, help="the request's URL, without query and fragment")
    proof.add_argument(
        "--token", help="the access token the request carries (its hash goes into ath); none at /token"
    )
    proof.add_argument("--nonce", help="the server's DPoP-Nonce, when it asked for one")

    rotate = commands.add_parser(
        "rotate",
        help="publish new signing keys; they sign after the JWKS max-age, the old ones leave after the grace",
    )
    rotate.add_argument("--url", default=_DEFAULT_URL, help=f"the issuer's base URL (default {_DEFAULT_URL})")
    rotate.add_argument(
        "--immediate",
        action="store_true",
        help="sign with the new keys at once (verifiers that cached the JWKS refuse them until they refresh)",
    )
    return parser


def _write_key(path: Path, alg: str) -> str:
    """A new private JWK file only its owner may read; returns the key's thumbprint."""
    key = DPoPKey.generate(alg)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ValueError(f"out: {path} exists; a key file is never overwritten") from None
    except OSError as exc:
        raise ValueError(f"out: cannot create {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key.private_jwk_json() + "\n")
    return key.jkt


def _read_key(path: Path) -> DPoPKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"dpop_key: cannot read {path}: {exc.strerror}") from None
    try:
        return DPoPKey.from_jwk(text)
    except ValueError as exc:
        raise ValueError(f"dpop_key: {path}: {exc}") from None


async def _serve(settings: _ServeSettings) -> int:
    host, port = parse_listen(settings.listen)
    check_bind_host(host, allow_non_loopback=settings.allow_non_loopback)
    if settings.issuer_url is None and host in ("0.0.0.0", "::"):  # noqa: S104 - we are rejecting it
        raise ValueError("issuer_url: set --issuer-url when listening on a wildcard address")
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise ValueError(f"listen: cannot bind {settings.listen}: {exc.strerror}") from None
    issuer_url = settings.issuer_url or url_for(host, sock.getsockname()[1])
    try:
        config = IssuerConfig(
            issuer_url=issuer_url,
            state_dir=settings.state_dir,
            default_audience=settings.audience,
            token_ttl_s=settings.ttl,
            rotation_grace_s=settings.rotation_grace,
            scopes_supported=tuple(dict.fromkeys((*DEFAULT_SCOPES, *settings.scopes))),
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
            settings = _serve_settings(args)
            logging.basicConfig(
                level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
            return asyncio.run(_serve(settings))
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
                dpop_key=None if args.dpop_key is None else _read_key(args.dpop_key),
            )
            print(token)  # stdout carries only the token, for $(...)
            return 0
        if args.command == "dpop-key":
            print(_write_key(args.out, args.alg))
            return 0
        if args.command == "proof":
            made = _read_key(args.dpop_key).proof(
                args.htm, args.htu, access_token=args.token, nonce=args.nonce
            )
            print(made)  # stdout carries only the proof, for $(...)
            return 0
        print(json.dumps(rotate_keys(args.url, immediate=args.immediate), indent=2))
        return 0
    except (ValueError, KeyStoreError) as exc:
        print(f"dev_issuer: error: {exc}", file=sys.stderr)
        return 2
    except IssuerRequestError as exc:
        print(f"dev_issuer: {exc}", file=sys.stderr)
        return 1
