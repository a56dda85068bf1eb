"""Token validation per core, in-process: jwt_authn cold and warm next to a raw ``cryptography`` verify.

For each algorithm (RS256, PS256, ES256, EdDSA) a key and N distinct tokens are made, then each
round measures, back to back on the same tokens:

- raw: ``cryptography``'s verify of each token's signature with the same public key (the
  floor: padding and hash objects built once, ES256 signatures converted to DER beforehand);
- cold: ``Authenticator.verify`` of each token once (a fresh authenticator, so every token is
  new to its cache): parse, header rules, key lookup, signature, claims, principal, cache put;
- warm: ``Authenticator.verify`` of one cached token, again and again (the verified-token
  cache hit), and the same through ``authenticate()`` (extract + policy + verify + authorize),
  which is what the gRPC interceptor calls;
- jwcrypto: its documented high-level path, ``JWT(jwt=..., key=JWKSet, expected_type="JWS",
  algs=[alg], check_claims=...)``, for the record.

Times are this process's CPU time (``time.process_time``), so time lost to other processes
on a shared machine is not counted; every figure is per core.

Usage:
    figures = run_validation(BenchOptions.quick())
    figures["RS256"]["cold"]        # per-round microseconds per token
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto import jwk, jwt

from bench.options import BenchOptions
from jwt_authn import Authenticator, AuthnConfig, IssuerConfig
from jwt_authn.testing import TokenFactory

__all__ = ["ALGORITHMS", "METRICS", "make_case", "run_validation"]

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
#: What each round measures, microseconds per token (or per call for the warm ones).
METRICS = ("raw", "cold", "warm", "warm_authenticate", "jwcrypto")
_ISSUER = "https://issuer.bench.invalid/"
_AUDIENCE = "secureroute"
_METHOD = "/secureroute.v1.SecureRouteService/SecureRoute"
#: CPU time of this process, not wall time: on a shared machine, time spent descheduled while
#: another process runs is not ours to count ("per core" figures).
_clock = time.process_time


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _raw_verifier(alg: str, key: jwk.JWK) -> tuple[Callable[[bytes, bytes], None], Callable[[bytes], bytes]]:
    """(verify(signature, data), prepare(signature)): cryptography's own check, and the
    conversion of a JWS signature to the form it takes (done before timing)."""
    public = serialization.load_pem_public_key(key.export_to_pem())
    if alg in ("RS256", "PS256"):
        assert isinstance(public, rsa.RSAPublicKey)
        sha256 = hashes.SHA256()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
        )
        rsa_key = public
        return (lambda sig, data: rsa_key.verify(sig, data, pad, sha256)), (lambda sig: sig)
    if alg == "ES256":
        assert isinstance(public, ec.EllipticCurvePublicKey)
        ecdsa = ec.ECDSA(hashes.SHA256())
        ec_key = public

        def to_der(sig: bytes) -> bytes:
            half = len(sig) // 2
            return encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))

        return (lambda sig, data: ec_key.verify(sig, data, ecdsa)), to_der
    assert isinstance(public, ed25519.Ed25519PublicKey)
    ed_key = public
    return ed_key.verify, (lambda sig: sig)


class _Case:
    """One algorithm: a key, its public JWKS, N distinct tokens, and the raw verifier."""

    def __init__(self, alg: str, count: int) -> None:
        self.alg = alg
        factory = TokenFactory(issuer=_ISSUER, algorithms=(alg,))
        key = factory.keys[alg]
        self.jwks: dict[str, Any] = {"keys": [key.export_public(as_dict=True)]}
        self.tokens = [
            factory.issue(sub=f"bench-user-{i}", aud=_AUDIENCE, scope="read", alg=alg, ttl_s=4 * 3600)
            for i in range(count)
        ]
        self.verify_raw, prepare = _raw_verifier(alg, key)
        self.raw_inputs = []
        for token in self.tokens:
            head, payload, signature = token.split(".")
            self.raw_inputs.append((prepare(_b64(signature)), f"{head}.{payload}".encode()))
        self.key_set = jwk.JWKSet()
        self.key_set.add(jwk.JWK(**self.jwks["keys"][0]))

    def config(self) -> AuthnConfig:
        issuer = IssuerConfig(issuer=_ISSUER, audiences=(_AUDIENCE,), jwks=self.jwks)
        return AuthnConfig(issuers=(issuer,), token_cache_size=max(10_000, len(self.tokens)))


def make_case(alg: str, count: int) -> _Case:
    """A key of ``alg``, its JWKS, ``count`` distinct tokens and the raw verifier."""
    return _Case(alg, count)


def _time_raw(case: _Case) -> float:
    verify = case.verify_raw
    started = _clock()
    for signature, data in case.raw_inputs:
        verify(signature, data)
    return (_clock() - started) / len(case.raw_inputs) * 1e6


def _time_jwcrypto(case: _Case) -> float:
    claims = {"iss": _ISSUER, "aud": _AUDIENCE, "exp": None}
    started = _clock()
    for token in case.tokens:
        jwt.JWT(jwt=token, key=case.key_set, algs=[case.alg], expected_type="JWS", check_claims=claims)
    return (_clock() - started) / len(case.tokens) * 1e6


async def _time_ours(case: _Case, warm_iterations: int) -> tuple[float, float, float]:
    """(cold, warm verify, warm authenticate) microseconds, with a fresh authenticator."""
    authenticator = Authenticator(case.config())
    await authenticator.start()
    if not await authenticator.wait_ready(10):
        raise RuntimeError("the static key set did not load")
    verify = authenticator.verify
    try:
        started = _clock()
        for token in case.tokens:
            await verify(token)
        cold = (_clock() - started) / len(case.tokens) * 1e6
        token = case.tokens[0]
        started = _clock()
        for _ in range(warm_iterations):
            await verify(token)
        warm = (_clock() - started) / warm_iterations * 1e6
        authenticate, values = authenticator.authenticate, [f"Bearer {token}"]
        started = _clock()
        for _ in range(warm_iterations):
            await authenticate(values, _METHOD)
        warm_authenticate = (_clock() - started) / warm_iterations * 1e6
    finally:
        await authenticator.close()
    return cold, warm, warm_authenticate


async def _run(options: BenchOptions) -> dict[str, dict[str, list[float]]]:
    cases = [make_case(alg, options.validation_tokens) for alg in ALGORITHMS]
    figures: dict[str, dict[str, list[float]]] = {alg: {m: [] for m in METRICS} for alg in ALGORITHMS}
    for case in cases:  # unmeasured: first-call costs (engines, key objects, code paths) are paid here
        _time_raw(case)
        await _time_ours(case, 10)
    for _ in range(options.rounds):
        for case in cases:
            row = figures[case.alg]
            row["raw"].append(_time_raw(case))
            cold, warm, warm_authenticate = await _time_ours(case, options.warm_iterations)
            row["cold"].append(cold)
            row["warm"].append(warm)
            row["warm_authenticate"].append(warm_authenticate)
            row["jwcrypto"].append(_time_jwcrypto(case))
    return figures


def run_validation(options: BenchOptions) -> dict[str, dict[str, list[float]]]:
    """Per algorithm, per metric: microseconds per token (or call), one value per round."""
    return asyncio.run(_run(options))
