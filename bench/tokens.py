"""Pools of signed access tokens for load runs: one reused token (warm) or many distinct ones (cold).

Signing is the slow part (an RSA-2048 signature costs about 0.4 ms), so distinct tokens are
signed in a small process pool, in chunks. Every token carries a fresh ``jti`` and ``sub``,
so no two are alike and none can hit a verified-token cache.

Usage:
    with TokenMint(issuer.url, "secureroute", issuer.keys) as mint:
        warm = mint.one("RS256")
        cold = mint.distinct("RS256", 10_000)
        storm = mint.distinct("ES256", 1_000, unknown_kids=True)
        foreign = mint.distinct("ES256", 1_000, issuer="https://issuer.invalid/")  # not trusted
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from jwcrypto import jwk

from jwt_authn.testing import sign_compact

__all__ = ["TOKEN_TTL_S", "TokenMint", "write_token_file"]

#: Long enough to outlive a whole benchmark run.
TOKEN_TTL_S = 4 * 3600
_CHUNK = 500


def _sign_chunk(
    private_key_json: str, alg: str, *, issuer: str, audience: str, first: int, count: int, unknown_kids: bool
) -> list[str]:
    """Runs in a pool worker: ``count`` distinct tokens signed with one key."""
    key = jwk.JWK.from_json(private_key_json)
    now = int(time.time())
    tokens = []
    for index in range(first, first + count):
        kid = f"unknown-{uuid.uuid4().hex}" if unknown_kids else key.get("kid")
        header = {"alg": alg, "typ": "at+jwt", "kid": kid}
        payload: dict[str, Any] = {
            "iss": issuer,
            "sub": f"bench-user-{index}",
            "aud": audience,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            "jti": uuid.uuid4().hex,
            "client_id": "bench",
            "scope": "read",
        }
        tokens.append(sign_compact(header, payload, key))
    return tokens


class TokenMint:
    """Signs tokens for one issuer with its private keys (one per algorithm)."""

    def __init__(self, issuer: str, audience: str, keys: Mapping[str, jwk.JWK], *, workers: int = 2) -> None:
        self._issuer = issuer
        self._audience = audience
        self._keys = {alg: key.export(private_key=True) for alg, key in keys.items()}
        self._next_index = 0
        # spawn: the driver runs an issuer thread, and forking a threaded process is unsafe.
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def __enter__(self) -> TokenMint:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def one(self, alg: str) -> str:
        return self.distinct(alg, 1)[0]

    def distinct(
        self, alg: str, count: int, *, unknown_kids: bool = False, issuer: str | None = None
    ) -> list[str]:
        """``count`` tokens never issued before by this mint (``unknown_kids``: each names a random
        kid; ``issuer``: an ``iss`` other than this mint's, still signed with its key)."""
        first, self._next_index = self._next_index, self._next_index + count
        futures = [
            self._pool.submit(
                _sign_chunk,
                self._keys[alg],
                alg,
                issuer=self._issuer if issuer is None else issuer,
                audience=self._audience,
                first=start,
                count=min(_CHUNK, first + count - start),
                unknown_kids=unknown_kids,
            )
            for start in range(first, first + count, _CHUNK)
        ]
        return [token for future in futures for token in future.result()]


def write_token_file(path: Path, tokens: list[str]) -> Path:
    """One token a line, for wrk's Lua script and the gRPC load generator."""
    path.write_text("\n".join(tokens) + "\n", encoding="ascii")
    return path
