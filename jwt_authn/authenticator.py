"""The core contract: authorization metadata + method name -> Principal, or an AuthnError.

Transport adapters (``grpc_aio``, ``grpc_sync``) are thin glue around this class; every rule
lives here or below. Order of checks, cheapest first, so junk never costs a key fetch:
policy (public?) -> extract -> size -> cache -> parse -> issuer -> header -> keys -> signature
-> claims -> scopes/roles.

Usage:
    authenticator = Authenticator(config)
    await authenticator.start()
    principal = await authenticator.authenticate(["Bearer eyJ..."], "/pkg.Service/Method")
    ...
    await authenticator.close()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import aiohttp

from jwt_authn.config import MAX_REMEMBERED_METHODS, AuthnConfig, IssuerConfig, Requirement
from jwt_authn.errors import AuthnError, KeySetUnavailable, PermissionDenied, Unauthenticated
from jwt_authn.extractor import extract_bearer, max_authorization_length
from jwt_authn.jwks import KeySetCache
from jwt_authn.observer import MAX_VERDICT_KID_CHARS, OUTCOME_OK, AuthnObserver, AuthnVerdict, TracingObserver
from jwt_authn.principal import Principal
from jwt_authn.sources import key_source_for, slash_hint
from jwt_authn.token_cache import TokenCache, VerifiedToken
from jwt_authn.verifier import check_claims, check_header, parse_token, verify_signature

__all__ = ["Authenticator", "challenge"]

log = logging.getLogger(__name__)


_NO_STRINGS: frozenset[str] = frozenset()
#: Most unknown ``iss`` values logged at WARNING (each once): the value is the caller's to choose.
_MAX_MISMATCHED_ISSUERS = 16


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return _NO_STRINGS  # most tokens carry no roles: one shared empty set, not one per token


def _claim_at_path(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _principal(claims: dict[str, Any], config: IssuerConfig) -> Principal:
    """The principal of verified ``claims``: a dict decoded for this token alone (see
    ``UnverifiedToken.claims``), wrapped read-only rather than copied."""
    # RFC 8693 §4.2 / RFC 9068 §2.2.3: "scope" is a space-separated string; Azure AD uses "scp".
    scopes = _strings(claims.get("scope"))
    if "scp" in claims:
        scopes |= _strings(claims["scp"])
    exp = claims.get("exp")
    return Principal(
        subject=str(claims.get("sub", "")),
        issuer=config.issuer,
        claims=MappingProxyType(claims),
        scopes=scopes,
        roles=_strings(_claim_at_path(claims, config.roles_claim)),
        expires_at=float(exp) if exp is not None else None,
    )


def _check_requirement(principal: Principal, method: str, requirement: Requirement | None) -> None:
    """Raise PermissionDenied unless ``principal`` has every scope and role of ``requirement``."""
    if requirement is None:
        return
    if not requirement.scopes <= principal.scopes:
        raise PermissionDenied(
            "insufficient_scope", f"{method} needs scopes", required_scopes=tuple(requirement.scopes)
        )
    if not requirement.roles <= principal.roles:
        raise PermissionDenied("insufficient_role", f"{method} needs roles")


def _verdict(error: AuthnError, entry: VerifiedToken | None) -> AuthnVerdict:
    """What a trace may say about ``error``; ``entry`` is the verified token a policy refused."""
    if isinstance(error, PermissionDenied):
        result = "permission_denied"
    elif isinstance(error, KeySetUnavailable):
        result = "key_set_unavailable"
    else:
        result = "unauthenticated"
    if entry is not None:
        return AuthnVerdict(result, error.reason, entry.issuer, entry.key_id, entry.principal.subject)
    kid = error.key_id[:MAX_VERDICT_KID_CHARS] if error.key_id is not None else None
    return AuthnVerdict(result, error.reason, error.issuer, kid)


def challenge(error: AuthnError | None, realm: str = "") -> str:
    """The RFC 6750 §3 ``WWW-Authenticate`` value for ``error`` (or a bare challenge)."""
    params = [f'realm="{realm}"'] if realm else []
    if error is not None and error.bearer_error:
        params.append(f'error="{error.bearer_error}"')
        params.append(f'error_description="{error.description}"')
        if isinstance(error, PermissionDenied) and error.required_scopes:
            params.append(f'scope="{" ".join(sorted(error.required_scopes))}"')
    return "Bearer " + ", ".join(params) if params else "Bearer"


class Authenticator:
    """Validates bearer tokens for one service; share one instance across interceptors."""

    def __init__(
        self,
        config: AuthnConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        observer: AuthnObserver | None = None,
    ) -> None:
        self.config = config
        #: Told every outcome of ``authenticate`` (for metrics); None tells nobody.
        self.observer = observer
        # Decided once: a TracingObserver is also told verdicts and key fetches (observer.py).
        tracing = observer if isinstance(observer, TracingObserver) else None
        self._on_verdict = tracing.on_verdict if tracing is not None else None
        self._session = session
        self._owns_session = session is None
        self.key_sets: dict[str, KeySetCache] = {
            issuer.issuer: KeySetCache(
                issuer,
                key_source_for(issuer, self._get_session, tracing),
                negative_cache_size=config.negative_kid_cache_size,
                observer=tracing,
            )
            for issuer in config.issuers
        }
        self.token_cache = TokenCache(config.token_cache_size)
        self._unlisted_logged: set[str] = set()
        self._mismatched_issuers: set[str] = set()
        self._ready = asyncio.Event()
        #: Whether the key sets' background lifecycle was started (by start() or the first use).
        self._started = False
        self._ready_callbacks: list[Callable[[], None]] = []
        for issuer, cache in self.key_sets.items():
            cache.on_keys_removed(lambda key_ids, issuer=issuer: self._forget_tokens(issuer, key_ids))  # type: ignore[misc]

    # Lifecycle --------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookies, no proxies from the environment: only the configured URLs are fetched.
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, connector=aiohttp.TCPConnector(limit=8)
            )
        return self._session

    async def start(self) -> None:
        """Start loading key sets in the background; returns at once, even if issuers are down.

        Call it at startup, so the keys load before the first call. The first ``authenticate`` or
        ``verify`` starts it too when it was forgotten (the keys would never be refreshed else)."""
        self._start_key_sets()

    def _start_by_first_use(self) -> None:
        log.warning(
            "jwt_authn: the Authenticator was not started; its first authenticate() starts the key sets'"
            " background loading and refresh now. Call `await authenticator.start()` at startup"
            " (aiohttp: in on_startup) so the keys load before the first call."
        )
        self._start_key_sets()

    def _start_key_sets(self) -> None:
        if self._started:
            return
        self._started = True
        pending = set(self.key_sets)
        for issuer, cache in self.key_sets.items():
            cache.on_ready(lambda issuer=issuer: self._one_ready(pending, issuer))  # type: ignore[misc]
            cache.start()

    def _one_ready(self, pending: set[str], issuer: str) -> None:
        pending.discard(issuer)
        if not pending and not self._ready.is_set():
            self._ready.set()
            callbacks, self._ready_callbacks = self._ready_callbacks, []
            for callback in callbacks:
                callback()

    async def close(self) -> None:
        for cache in self.key_sets.values():
            await cache.close()
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    @property
    def ready(self) -> bool:
        """True once every issuer's first key set has loaded."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    def add_ready_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every issuer has a key set (at once if that is already so)."""
        if self.ready:
            callback()
        else:
            self._ready_callbacks.append(callback)

    def _forget_tokens(self, issuer: str, key_ids: frozenset[str]) -> None:
        dropped = self.token_cache.drop_keys(issuer, key_ids)
        if dropped:
            log.info("forgot %d cached tokens signed by removed keys", dropped)

    # The request path -------------------------------------------------------------------

    def is_public(self, method: str) -> bool:
        return self.config.policy.is_public(method)

    async def authenticate(self, authorization_values: Sequence[str], method: str) -> Principal | None:
        """The principal allowed to call ``method``; None for a public method, or an allow-missing
        one called without a token. Raises AuthnError."""
        access = self.config.policy.access(method)
        if access.public:
            return None
        if not self._started:
            self._start_by_first_use()
        if access.optional and not authorization_values:
            return None  # allow_missing: no token is fine; a token sent is checked below
        entry: VerifiedToken | None = None
        try:
            if not access.listed and self.config.policy.require_listed:
                raise self._not_listed(method)
            entry = await self._verify_authorization(authorization_values)
            _check_requirement(entry.principal, method, access.requirement)
        except AuthnError as error:
            if self.observer is not None:
                self.observer.on_outcome(error.reason)
                if self._on_verdict is not None:
                    self._on_verdict(_verdict(error, entry))
            raise
        principal = entry.principal
        if self.observer is not None:
            self.observer.on_outcome(OUTCOME_OK)
            if self._on_verdict is not None:
                self._on_verdict(
                    AuthnVerdict(OUTCOME_OK, OUTCOME_OK, entry.issuer, entry.key_id, principal.subject)
                )
        return principal

    def _not_listed(self, method: str) -> PermissionDenied:
        """The refusal of a method no policy entry names, under ``require_listed``: no token can
        help (403 without a challenge), and the operator hears of each such method once."""
        if method not in self._unlisted_logged and len(self._unlisted_logged) < MAX_REMEMBERED_METHODS:
            self._unlisted_logged.add(method)
            log.error(
                "refused %s: no policy entry names it and the policy requires one (require_listed)", method
            )
        error = PermissionDenied("method_not_listed", f"{method} is named by no policy entry")
        error.bearer_error = ""  # no token would help: nothing to challenge for
        return error

    async def verify(self, token: str) -> Principal:
        """Validate one token (signature and claims) and return whom it speaks for."""
        if not self._started:
            self._start_by_first_use()
        return (await self._verify_token(token)).principal

    async def _verify_token(self, token: str) -> VerifiedToken:
        if len(token) > self.config.max_token_bytes:
            raise Unauthenticated("token_too_large", f"token of {len(token)} bytes")
        now, key = self.config.clock(), self.token_cache.digest(token)
        entry = self._remembered(key, now)
        if entry is None:
            entry = await self._verify_new(token, key, now)
        return entry

    async def _verify_authorization(self, authorization_values: Sequence[str]) -> VerifiedToken:
        """``verify`` for a call's ``authorization`` values, its cache keyed by the value as sent.

        A value met before (``Bearer <token>``, spelled as the caller spells it) was extracted
        and its token verified then, and extraction gives the same token every time: so a hit
        skips extraction too (a measurable share of a cached call, see docs/benchmarks.md). The time
        window and the key set's staleness are checked on every hit, as in ``verify``.
        """
        max_token_bytes = self.config.max_token_bytes
        if len(authorization_values) == 1:
            value = authorization_values[0]
            # ASCII only: a bearer value is, and anything else is extract_bearer's to refuse.
            if len(value) <= max_authorization_length(max_token_bytes) and value.isascii():
                now, key = self.config.clock(), self.token_cache.digest(value)
                entry = self._remembered(key, now)
                if entry is None:
                    token = extract_bearer(authorization_values, max_token_bytes=max_token_bytes)
                    entry = await self._verify_new(token, key, now)
                return entry
        # None, several, or an oversized value: extract_bearer raises the matching error.
        return await self._verify_token(extract_bearer(authorization_values, max_token_bytes=max_token_bytes))

    def _warn_issuer_mismatch(self, issuer: object) -> None:
        """Log the first token of each unknown ``iss`` at WARNING, with the configured issuers
        (a trailing-slash mismatch refuses every token, and INFO lines hide it). Bounded: the
        value is the caller's, so a flood of made-up issuers costs at most a few lines."""
        seen = str(issuer)[:200]
        if seen in self._mismatched_issuers or len(self._mismatched_issuers) >= _MAX_MISMATCHED_ISSUERS:
            return
        self._mismatched_issuers.add(seen)
        configured = tuple(self.key_sets)
        hints = "".join(slash_hint(seen, name) for name in configured)
        log.warning(
            "a token names the issuer %r, which is not configured (configured: %s)%s",
            seen,
            ", ".join(repr(name) for name in configured),
            hints,
        )

    def _remembered(self, key: bytes, now: float) -> VerifiedToken | None:
        """The verified token in the cache under ``key``, still valid at ``now``."""
        cached = self.token_cache.get(key)
        if cached is None:
            return None
        error: AuthnError
        if now > cached.valid_until:
            error = Unauthenticated("token_expired", "exp is in the past")
        elif now < cached.valid_from:
            error = Unauthenticated("token_not_yet_valid", "nbf is in the future")
        elif self.key_sets[cached.issuer].key_set is None:
            # The key set went staler than max_staleness_s: a cached token is no better.
            error = KeySetUnavailable("key_set_unavailable", f"key set for {cached.issuer} is too stale")
        else:
            return cached
        error.issuer, error.key_id = cached.issuer, cached.key_id
        raise error

    async def _verify_new(self, token: str, key: bytes, now: float) -> VerifiedToken:
        """The full check of a token the cache does not hold; remembered under ``key`` if it passes."""
        unverified = parse_token(token, max_claims_depth=self.config.max_claims_depth)
        issuer = unverified.claims.get("iss")
        key_set = self.key_sets.get(issuer) if isinstance(issuer, str) else None
        if key_set is None:
            # Decided before any key lookup: an unknown issuer never causes a fetch.
            self._warn_issuer_mismatch(issuer)
            raise Unauthenticated("issuer_mismatch", "iss is not a configured issuer")
        config = key_set.config
        kid, alg, limit = unverified.kid, unverified.alg, self.config.max_keys_without_kid
        try:
            check_header(unverified, config)
            # The fast lane first: a known kid costs no coroutine; anything else gets the full decision.
            keys = key_set.known_candidates(kid, alg, limit=limit) or await key_set.candidates(
                kid, alg, limit=limit
            )
            key_id = verify_signature(unverified, keys)
            claims = unverified.claims
            window = check_claims(claims, config, now=now)
        except AuthnError as error:
            # For observers (traces): the issuer is a configured one; the kid is the caller's text.
            error.issuer, error.key_id = config.issuer, kid
            raise
        entry = VerifiedToken(
            _principal(claims, config), config.issuer, key_id, window.valid_from, window.valid_until
        )
        self.token_cache.put(key, entry)
        return entry
