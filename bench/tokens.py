"""Pools of access tokens for load runs, signed by jwt_authn's ``TokenFactory`` (the guard's test helper).

Distinct tokens are signed in a small process pool, in chunks, because an RSA-2048 signature is
the slow part of making a pool. Every token carries its own ``sub`` and ``jti``, so no two are
alike and none can hit a verified-token cache.

Usage:
    with TokenMint(issuer.url, "secureroute", issuer.keys) as mint:
        warm = mint.one("RS256")
        cold = mint.distinct("RS256", 10_000)
        storm = mint.distinct("ES256", 1_000, unknown_kids=True)
        foreign = mint.distinct("ES256", 1_000, issuer="https://issuer.invalid/")  # not trusted
        path = write_token_file(workdir / "cold.tokens", cold)
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from jwcrypto import jwk

from jwt_authn.testing import TokenFactory

__all__ = ["TOKEN_TTL_S", "TokenMint", "write_token_file"]

#: Long enough to outlive a whole benchmark run.
TOKEN_TTL_S = 4 * 3600
_CHUNK = 500


def _sign_chunk(key_json: str, alg: str, first: int, count: int, options: dict[str, Any]) -> list[str]:
    """Runs in a pool worker: ``count`` distinct tokens signed with one key."""
    factory = TokenFactory(
        issuer=options["mint_issuer"], algorithms=(alg,), keys={alg: jwk.JWK.from_json(key_json)}
    )
    claims = {"iss": options["issuer"]} if options["issuer"] else {}
    return [
        factory.issue(
            sub=f"bench-user-{index}",
            aud=options["audience"],
            scope="read",
            alg=alg,
            ttl_s=TOKEN_TTL_S,
            claims=claims,
            headers={"kid": f"unknown-{uuid.uuid4().hex}"} if options["unknown_kids"] else None,
        )
        for index in range(first, first + count)
    ]


class TokenMint:
    """Signs tokens for one issuer and audience with its private keys (one per algorithm)."""

    def __init__(self, issuer: str, audience: str, keys: Mapping[str, jwk.JWK], *, workers: int = 2) -> None:
        self._issuer, self._audience = issuer, audience
        self._keys = {alg: key.export(private_key=True) for alg, key in keys.items()}
        self._next_index = 0
        # spawn: the driver runs an issuer thread, and forking a threaded process is unsafe.
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def __enter__(self) -> TokenMint:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._pool.shutdown(cancel_futures=True)

    def one(self, alg: str) -> str:
        return self.distinct(alg, 1)[0]

    def distinct(
        self, alg: str, count: int, *, unknown_kids: bool = False, issuer: str | None = None
    ) -> list[str]:
        """``count`` tokens never issued before by this mint (``unknown_kids``: each names a random
        kid; ``issuer``: an ``iss`` other than this mint's, still signed with its key)."""
        first, self._next_index = self._next_index, self._next_index + count
        options = {"unknown_kids": unknown_kids, "issuer": issuer, "mint_issuer": self._issuer}
        options["audience"] = self._audience
        futures = [
            self._pool.submit(
                _sign_chunk, self._keys[alg], alg, start,
                min(_CHUNK, first + count - start), options,
            )
            for start in range(first, first + count, _CHUNK)
        ]  # fmt: skip
        return [token for future in futures for token in future.result()]


def write_token_file(path: Path, tokens: list[str]) -> Path:
    """One token a line, for wrk's Lua script and the gRPC load generators."""
    path.write_text("\n".join(tokens) + "\n", encoding="ascii")
    return path
