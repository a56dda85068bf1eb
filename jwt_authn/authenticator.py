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
from jwt_authn.dpop import check_proof, same_text
from jwt_authn.errors import AuthnError, KeySetUnavailable, PermissionDenied, Unauthenticated
from jwt_authn.extractor import extract_credentials, max_authorization_length
from jwt_authn.jwks import KeySetCache
from jwt_authn.nonce import NonceSource
from jwt_authn.observer import MAX_VERDICT_KID_CHARS, OUTCOME_OK, AuthnObserver, AuthnVerdict, TracingObserver
from jwt_authn.principal import Principal
from jwt_authn.replay import MemoryReplayStore, ReplayStore, ReplayStoreUnavailable
from jwt_authn.sender import CallContextNeeded, ProofTarget, SenderContext, is_trusted_peer
from jwt_authn.sources import key_source_for, slash_hint
from jwt_authn.token_cache import TokenCache, VerifiedToken
from jwt_authn.verifier import check_claims, check_header, parse_token, verify_signature

__all__ = ["Authenticator", "challenge", "dpop_challenge"]

log = logging.getLogger(__name__)


_NO_STRINGS: frozenset[str] = frozenset()
#: The sender of a call whose adapter says nothing about it: no proof, no certificate.
_NO_SENDER = SenderContext()
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


def _sender_constraint_required(entry: VerifiedToken) -> Unauthenticated:
    error = Unauthenticated(
        "sender_constraint_required", "this issuer's tokens must be DPoP- or certificate-bound"
    )
    error.issuer, error.key_id = entry.issuer, entry.key_id
    return error


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


def _challenge_params(error: AuthnError | None, realm: str) -> list[str]:
    """The auth-params both schemes share (RFC 6750 §3, RFC 9449 §7.1): realm, error, scope."""
    params = [f'realm="{realm}"'] if realm else []
    if error is not None and error.bearer_error:
        params.append(f'error="{error.bearer_error}"')
        params.append(f'error_description="{error.description}"')
        if isinstance(error, PermissionDenied) and error.required_scopes:
            params.append(f'scope="{" ".join(sorted(error.required_scopes))}"')
    return params


def challenge(error: AuthnError | None, realm: str = "") -> str:
    """The RFC 6750 §3 ``WWW-Authenticate`` value for ``error`` (or a bare challenge)."""
    params = _challenge_params(error, realm)
    return "Bearer " + ", ".join(params) if params else "Bearer"


def dpop_challenge(error: AuthnError | None, realm: str = "", algorithms: tuple[str, ...] = ()) -> str:
    """The RFC 9449 §7.1 ``WWW-Authenticate`` value of the DPoP scheme: the error (when the
    request used DPoP) and the accepted proof algorithms."""
    params = _challenge_params(error, realm)
    if algorithms:
        params.append(f'algs="{" ".join(algorithms)}"')
    return "DPoP " + ", ".join(params) if params else "DPoP"


class Authenticator:
    """Validates bearer tokens for one service; share one instance across interceptors."""

    def __init__(
        self,
        config: AuthnConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        observer: AuthnObserver | None = None,
        replay_store: ReplayStore | None = None,
    ) -> None:
        self.config = config
        dpop = config.dpop
        #: Where accepted DPoP proofs are remembered (``MemoryReplayStore`` unless one is given,
        #: e.g. ``RedisReplayStore`` shared by replicas). ``replay_store.available`` is for readiness.
        self.replay_store: ReplayStore = replay_store or MemoryReplayStore(
            max_entries=dpop.replay_store_size, max_entries_per_key=dpop.replay_store_size_per_key
        )
        self._owns_replay_store = replay_store is None
        #: Server nonces (RFC 9449 §8), when ``DPoPConfig.require_nonce``.
        self.nonces = (
            NonceSource(dpop.nonce_secret, rotation_s=dpop.nonce_rotation_s) if dpop.require_nonce else None
        )
        self._issuers = {issuer.issuer: issuer for issuer in config.issuers}
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
        if self._owns_replay_store:
            await self.replay_store.close()

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

    async def authenticate(
        self, authorization_values: Sequence[str], method: str, *, sender: SenderContext | None = None
    ) -> Principal | None:
        """The principal allowed to call ``method``; None for a public method, or an allow-missing
        one called without a token. Raises AuthnError.

        ``sender`` describes the request for sender-constrained tokens (DPoP proofs, target URI,
        peer, client certificate); without it only unbound bearer tokens pass. Raises
        ``CallContextNeeded`` (not an AuthnError, never observed) when ``sender`` says the call's
        context is unknown and a check needs it: the gRPC adapters then ask again from the handler.
        """
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
            entry = await self._verify_authorization(authorization_values, sender or _NO_SENDER)
            _check_requirement(entry.principal, method, access.requirement)
        except AuthnError as error:
            if len(authorization_values) == 1 and authorization_values[0][:5].lower() == "dpop ":
                error.scheme = "DPoP"  # its challenge carries the error (RFC 9449 §7.1)
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
        """Validate one token (signature and claims) and return whom it speaks for. A bound token
        (``cnf``) is refused: without its proof or certificate it proves nothing."""
        if not self._started:
            self._start_by_first_use()
        entry = await self._verify_token(token)
        if entry.binding is not None:
            raise Unauthenticated("bound_token_as_bearer", "cnf binds the token; it needs its proof")
        return entry.principal

    async def _verify_token(self, token: str) -> VerifiedToken:
        if len(token) > self.config.max_token_bytes:
            raise Unauthenticated("token_too_large", f"token of {len(token)} bytes")
        now, key = self.config.clock(), self.token_cache.digest(token)
        entry = self._remembered(key, now)
        if entry is None:
            entry = await self._verify_new(token, key, now)
        return entry

    async def _verify_authorization(
        self, authorization_values: Sequence[str], sender: SenderContext
    ) -> VerifiedToken:
        """``verify`` for a call's ``authorization`` values, its cache keyed by the value as sent,
        then the sender checks of a bound token (or a DPoP request).

        A value met before (``Bearer <token>``, spelled as the caller spells it) was extracted
        and its token verified then, and extraction gives the same token every time: so a hit
        skips extraction too (a measurable share of a cached call, timed in a running server). The time
        window and the key set's staleness are checked on every hit, as in ``verify``.
        """
        max_token_bytes = self.config.max_token_bytes
        if len(authorization_values) == 1:
            value = authorization_values[0]
            # ASCII only: a bearer value is, and anything else is extract_credentials' to refuse.
            if len(value) <= max_authorization_length(max_token_bytes) and value.isascii():
                now, key = self.config.clock(), self.token_cache.digest(value)
                entry = self._remembered(key, now)
                if entry is None:
                    scheme, token = extract_credentials(authorization_values, max_token_bytes=max_token_bytes)
                    entry = await self._verify_new(token, key, now)
                else:
                    # Cached values were extracted before: "<scheme> <token>", one or more spaces.
                    scheme, _, token = value.partition(" ")
                    scheme, token = ("DPoP" if scheme.lower() == "dpop" else "Bearer"), token.lstrip(" ")
                if entry.binding is not None or scheme == "DPoP" or sender.proofs:
                    await self._check_sender(entry, scheme, token, sender, now)
                elif self._issuers[entry.issuer].require_sender_constrained:
                    raise _sender_constraint_required(entry)
                return entry
        # None, several, or an oversized value: extract_credentials raises the matching error.
        extract_credentials(authorization_values, max_token_bytes=max_token_bytes)
        # Unreachable (extraction refuses all of these); refused all the same, never waved through.
        raise Unauthenticated("malformed_authorization", "authorization value not accepted")

    async def _check_sender(
        self, entry: VerifiedToken, scheme: str, token: str, sender: SenderContext, now: float
    ) -> None:
        """The binding rules of a verified token (RFC 9449 §7, RFC 8705 §3) and the DPoP proof.

        Only the token's verification is cached: the proof is checked afresh on every call."""
        binding = entry.binding
        try:
            if scheme == "Bearer":
                if binding is not None and binding.jkt is not None:
                    # RFC 9449 §7.2: accepted as a plain bearer token, the binding protects nothing.
                    raise Unauthenticated("bound_token_as_bearer", "a DPoP-bound token needs its proof")
                if binding is None:
                    if self._issuers[entry.issuer].require_sender_constrained:
                        raise _sender_constraint_required(entry)
                    return  # a bearer token: any DPoP header beside it is not ours to check
            elif binding is None or binding.jkt is None:
                raise Unauthenticated(
                    "token_not_dpop_bound", "the DPoP scheme needs a token bound by cnf.jkt"
                )
            if binding.x5t_s256 is not None:
                if not sender.call_context_known:
                    raise CallContextNeeded
                if sender.certificate_thumbprint is None:
                    raise Unauthenticated("certificate_missing", "the token is bound to a client certificate")
                if not same_text(sender.certificate_thumbprint, binding.x5t_s256):
                    raise Unauthenticated("certificate_mismatch", "the client certificate is not the token's")
            if binding.jkt is None:
                return  # a certificate-bound bearer token, its certificate presented
            await self._check_proof(binding.jkt, token, sender, now)
        except AuthnError as error:
            error.issuer, error.key_id = entry.issuer, entry.key_id
            raise

    async def _check_proof(self, jkt: str, token: str, sender: SenderContext, now: float) -> None:
        dpop = self.config.dpop
        forwarded = bool(sender.forwarded_htm or sender.forwarded_htu)
        if (forwarded or sender.target is None) and not sender.call_context_known:
            raise CallContextNeeded
        proofs = sender.proofs
        if not proofs:
            raise Unauthenticated("dpop_proof_missing", "the DPoP scheme needs exactly one DPoP proof")
        if len(proofs) > 1:
            raise Unauthenticated("dpop_proof_multiple", "more than one DPoP proof")
        target = sender.target
        if forwarded:
            # The split deployment: a proxy passes the original method and URL. Only a configured
            # proxy may: from anyone else these would let a proof made for another URL pass.
            if not is_trusted_peer(sender.peer_address, dpop.trusted_proxies):
                raise Unauthenticated(
                    "dpop_forwarding_untrusted", "dpop-htm/dpop-htu from a peer not trusted"
                )
            if len(sender.forwarded_htm) != 1 or len(sender.forwarded_htu) != 1:
                raise Unauthenticated("dpop_forwarding_malformed", "need one dpop-htm and one dpop-htu")
            target = ProofTarget(sender.forwarded_htm[0], uris=(sender.forwarded_htu[0],))
        if target is None:
            raise Unauthenticated("dpop_htu_mismatch", "the request's URI is unknown")
        proof = check_proof(
            proofs[0], token=token, expected_jkt=jkt, target=target, config=dpop, now=now, nonces=self.nonces
        )
        # Last: a proof is remembered only once every other check passed.
        try:
            await self.replay_store.remember(proof.replay_key, proof.jkt, proof.expires_at, now)
        except AuthnError:
            raise
        except Exception as err:
            # A store that breaks (a bug, a client library's surprise) refuses: fail closed, and
            # never a 500 for the caller.
            log.warning("DPoP replay store failed, refusing the proof: %s", type(err).__name__)
            raise ReplayStoreUnavailable(f"replay store: {type(err).__name__}") from None

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
            _principal(claims, config),
            config.issuer,
            key_id,
            window.valid_from,
            window.valid_until,
            window.binding,
        )
        self.token_cache.put(key, entry)
        return entry
