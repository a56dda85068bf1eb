"""Typed, frozen, validated configuration for jwt_authn.

A bad value fails here, at construction, with a message naming the setting: never on a
request. jwt_authn never reads environment variables or configuration files itself; the
embedding service builds these objects from its own settings.

Usage:
    config = AuthnConfig(
        issuers=(IssuerConfig(issuer="https://idp.example.com", audiences=("api://orders",)),),
        policy=Policy(public_methods=("/shop.v1.Orders/Ping",)),  # health and reflection stay public
    )
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "MAX_REMEMBERED_METHODS",
    "PUBLIC_GRPC_INFRA_METHODS",
    "AuthnConfig",
    "DPoPConfig",
    "IssuerConfig",
    "MethodAccess",
    "Policy",
    "Requirement",
]

#: Every algorithm jwt_authn can verify. HMAC and "none" are absent on purpose: keys come
#: from a public JWKS, so a symmetric algorithm would be the RFC 8725 §2.1 key-confusion hole.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: The default allowlist (RFC 8725 §3.1: an explicit list; all of the above).
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip

#: Standard gRPC infrastructure that probes and tools call without credentials.
PUBLIC_GRPC_INFRA_METHODS: tuple[str, ...] = (
    "/grpc.health.v1.Health/*",
    "/grpc.reflection.v1.ServerReflection/*",
    "/grpc.reflection.v1alpha.ServerReflection/*",
)

_METHOD_PATTERN = re.compile(r"/[A-Za-z_][\w.]*/(\*|[A-Za-z_]\w*)")
_CLAIM_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


def _require(condition: bool, setting: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{setting}: {problem}")


def _names(value: object, setting: str) -> tuple[str, ...]:
    """A collection setting as a tuple of strings. A bare ``str`` is refused: ``("api")`` is the
    string "api", and ``aud in "api"`` would accept the audiences "a", "p" and "pi"."""
    _require(
        not isinstance(value, str | bytes) and isinstance(value, Iterable),
        setting,
        f"must be a collection of strings, not {type(value).__name__} {value!r:.60}"
        " (a one-element tuple needs a trailing comma)",
    )
    items: tuple[object, ...] = tuple(cast(Iterable[object], value))  # an Iterable: checked above
    _require(all(isinstance(item, str) for item in items), setting, "must contain strings only")
    return cast(tuple[str, ...], items)


def _set_names(instance: object, **fields: tuple[str, object]) -> None:
    """Normalise each collection field of a frozen ``instance`` with ``_names``: the field name
    maps to (the setting name used in messages, the value)."""
    for name, (setting, value) in fields.items():
        object.__setattr__(instance, name, _names(value, setting))


def check_method_name(name: object, setting: str) -> None:
    """``name`` is a gRPC full method name, ``/package.Service/Method``, or ``/package.Service/*``."""
    method_ok = isinstance(name, str) and _METHOD_PATTERN.fullmatch(name) is not None
    _require(method_ok, setting, f"not a /package.Service/Method name: {name!r}")


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, setting: str, *, allow_insecure_http: bool) -> None:
    """Validate a remote URL: https, or plain http on loopback (or when explicitly allowed)."""
    parts = urlsplit(url)
    _require(
        parts.scheme in ("https", "http") and bool(parts.hostname), setting, f"not an http(s) URL: {url!r}"
    )
    if parts.scheme == "http" and not allow_insecure_http:
        _require(
            _is_loopback_host(parts.hostname or ""),
            setting,
            f"plain http is only allowed on loopback (use https, or allow insecure http): {url!r}",
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuerConfig:
    """One trusted issuer: who it is, whom its tokens must be for, and where its keys live."""

    #: The exact ``iss`` value (RFC 7519 §4.1.1; compared as a case-sensitive string).
    issuer: str
    #: Accepted ``aud`` values; a token must name at least one (RFC 9068 §4).
    audiences: tuple[str, ...] = ()
    #: Skip the audience check. Must be chosen explicitly (RFC 8725 §3.9).
    allow_any_audience: bool = False

    # Key source: exactly one of discovery (the default), jwks_uri, jwks_file, jwks.
    #: Explicit JWKS URL; skips OIDC discovery.
    jwks_uri: str | None = None
    #: Local JWKS file, re-read when its modification time or size changes (checked every second).
    jwks_file: str | None = None
    #: An in-memory JWKS document (a dict with "keys"), e.g. for an embedded default issuer.
    jwks: Mapping[str, Any] | None = None
    #: Allow plain http for a non-loopback issuer or JWKS URL (loopback is always allowed).
    allow_insecure_http: bool = False

    #: Accepted signature algorithms (RFC 8725 §3.1).
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    #: Clock skew tolerated on exp/nbf/iat, seconds (30 s, as jwks-rsa/jose users commonly set).
    leeway_s: float = 30.0
    #: Require an ``exp`` claim (RFC 9068 §2.2 makes it mandatory for access tokens).
    require_exp: bool = True
    #: Further claims that must be present.
    required_claims: tuple[str, ...] = ()
    #: Require ``typ: at+jwt`` (RFC 9068 §2.1); otherwise JWT, at+jwt, application/at+jwt or none pass.
    require_access_token_type: bool = False
    #: Claim holding roles; a dotted path reaches nested objects (``realm_access.roles``).
    roles_claim: str = "roles"
    #: Accept only sender-constrained tokens from this issuer: bound to a DPoP key (``cnf.jkt``,
    #: RFC 9449) or a client certificate (``cnf["x5t#S256"]``, RFC 8705). Off: bound and unbound
    #: tokens are both accepted (a bound token always needs its proof or certificate).
    require_sender_constrained: bool = False

    #: HTTP timeout for discovery and JWKS fetches, seconds (jose's default is 5 s).
    fetch_timeout_s: float = 5.0
    #: Largest discovery/JWKS body accepted, bytes (a real JWKS is a few KiB).
    max_response_bytes: int = 256 * 1024
    #: Most keys kept from one JWKS document.
    max_keys: int = 64
    #: Refresh period when the response has no usable Cache-Control, seconds (10 min, jose's cacheMaxAge).
    refresh_interval_s: float = 600.0
    #: Bounds applied to a Cache-Control max-age, seconds.
    min_refresh_interval_s: float = 60.0
    max_refresh_interval_s: float = 86_400.0
    #: Least time between two on-demand (unknown kid) refreshes, seconds (30 s, jose's cooldownDuration).
    cooldown_s: float = 30.0
    #: Longest a request waits for an on-demand (unknown kid) refresh, seconds; the fetch goes on
    #: in the background. Well below the 5 s fetch timeout and any caller's deadline, so a slow
    #: issuer costs the caller a prompt 401 (or 503 before any key set loaded), never a timeout.
    refresh_wait_s: float = 1.0
    #: How long the last good key set keeps serving through an issuer outage, seconds (Microsoft's
    #: ConfigurationManager keeps the last good configuration; we bound it at 24 h by default).
    max_staleness_s: float = 86_400.0
    #: Backoff between failed fetches: exponential from the first to the cap, with full jitter.
    retry_initial_backoff_s: float = 1.0
    retry_max_backoff_s: float = 60.0

    def __post_init__(self) -> None:
        _require(
            isinstance(self.issuer, str) and bool(self.issuer) and self.issuer == self.issuer.strip(),
            "issuer",
            "must be a non-empty string",
        )
        _set_names(
            self,
            audiences=("audiences", self.audiences),
            algorithms=("algorithms", self.algorithms),
            required_claims=("required_claims", self.required_claims),
        )
        sources = [s for s in (self.jwks_uri, self.jwks_file, self.jwks) if s is not None]
        _require(len(sources) <= 1, "jwks", "choose one of jwks_uri, jwks_file and jwks")
        if not sources:
            # Discovery: the issuer itself must be a URL we may fetch.
            check_url(self.issuer, "issuer", allow_insecure_http=self.allow_insecure_http)
        if self.jwks_uri is not None:
            check_url(self.jwks_uri, "jwks_uri", allow_insecure_http=self.allow_insecure_http)
        if self.jwks is not None:
            _require(
                isinstance(self.jwks.get("keys"), list), "jwks", "must be a JSON object with a 'keys' list"
            )
        _require(
            bool(self.audiences) or self.allow_any_audience,
            "audiences",
            "at least one audience is required (or explicitly allow any audience)",
        )
        _require(
            all(isinstance(a, str) and a for a in self.audiences), "audiences", "must be non-empty strings"
        )
        _require(bool(self.algorithms), "algorithms", "at least one algorithm is required")
        unknown = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        _require(not unknown, "algorithms", f"unsupported or unsafe: {', '.join(unknown)}")
        _require(0 <= self.leeway_s <= 300, "leeway_s", "must be between 0 and 300 seconds")
        roles_claim_ok = _CLAIM_PATH.fullmatch(self.roles_claim) is not None
        _require(roles_claim_ok, "roles_claim", "must be a claim name or dotted path")
        for name in (
            "fetch_timeout_s",
            "refresh_interval_s",
            "min_refresh_interval_s",
            "max_refresh_interval_s",
            "cooldown_s",
            "refresh_wait_s",
            "max_staleness_s",
            "retry_initial_backoff_s",
            "retry_max_backoff_s",
        ):
            value = getattr(self, name)
            _require(type(value) in (int, float) and value > 0, name, "must be a positive number")
        _require(
            self.min_refresh_interval_s <= self.max_refresh_interval_s,
            "min_refresh_interval_s",
            "must not exceed max_refresh_interval_s",
        )
        _require(self.max_response_bytes >= 1024, "max_response_bytes", "must be at least 1024")
        _require(self.max_keys >= 1, "max_keys", "must be at least 1")

    @property
    def discovery_url(self) -> str:
        """``{issuer}/.well-known/openid-configuration`` (OIDC Discovery §4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True, kw_only=True, slots=True)
class Requirement:
    """What a token must carry to call a method: all of these scopes and all of these roles."""

    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("scopes", "roles"):
            object.__setattr__(self, name, frozenset(_names(getattr(self, name), name)))
        # A token's scopes are one space-separated string (RFC 6749 §3.3): "a b" as one required
        # scope could never be met, and a quote would break the challenge's scope="..." parameter.
        bad = sorted(scope for scope in self.scopes if _SCOPE_TOKEN.fullmatch(scope) is None)
        _require(
            not bad,
            "scopes",
            f"each scope is one scope-token (RFC 6749 §3.3: no spaces, quotes or backslashes),"
            f" list them one by one: {bad!r:.120}",
        )


class MethodAccess(NamedTuple):
    """What the policy says about one method."""

    public: bool
    #: None: a valid token is enough (or the method is public).
    requirement: Requirement | None
    #: Some entry names the method (exactly or by its service's wildcard), gRPC's infrastructure
    #: included; ``Policy(require_listed=True)`` refuses the methods for which this is False.
    listed: bool = True
    #: Callable without a token, but a token sent must be valid, and its principal is the
    #: handler's (``allow_missing_methods``, Envoy's ``allow_missing``). Never ``public`` too.
    optional: bool = False


#: Most methods whose decision a Policy remembers. A gRPC server only asks about its registered
#: methods; the bound is for embedders that pass arbitrary names (those beyond it are decided
#: afresh on every call, which is correct, only slower).
MAX_REMEMBERED_METHODS = 4096


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """Per-method policy. Deny by default: every method needs a valid token unless public.

    Method names are gRPC full names, ``/package.Service/Method``, or ``/package.Service/*``
    for every method of a service. The most specific entry wins: an exact method entry (public,
    or a requirement) decides over its service's wildcard entry, on either side.
    gRPC's health and reflection services are public as well, unless ``public_grpc_infra`` is
    turned off: probes and tools call them without credentials.

    ``require_listed=True`` fails closed on a method no entry names (PERMISSION_DENIED,
    ``method_not_listed``), so a misspelt entry cannot leave its method open to any valid token.

    ``allow_missing_methods`` are optional authentication (Envoy's ``allow_missing``): a call
    without an ``authorization`` value passes with no principal; a call with one is authenticated
    like any other (an invalid token is refused) and the handler sees its principal. Scopes and
    roles are not required there (an anonymous caller gets in anyway): the handler decides.
    """

    public_methods: tuple[str, ...] = ()
    requirements: Mapping[str, Requirement] = field(default_factory=lambda: MappingProxyType({}))
    #: Add ``PUBLIC_GRPC_INFRA_METHODS`` to the public methods. Off only by an explicit choice
    #: (e.g. a service whose health must not be probed anonymously).
    public_grpc_infra: bool = True
    #: Methods (or ``/pkg.Svc/*``) callable without a token that still authenticate one when sent.
    allow_missing_methods: tuple[str, ...] = ()
    #: Refuse every method that no entry names (deny unless named). Off by default, like Envoy's
    #: rules, but where an unmatched Envoy route needs no token, an unnamed method here still needs
    #: a valid one; on, it is refused outright.
    require_listed: bool = False
    # Each method's decision, made once: deciding builds a wildcard string and does three lookups,
    # which inside a busy server (whose other work keeps the CPU caches cold) is a visible share of
    # a protected call.
    _decided: dict[str, MethodAccess] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_names(
            self,
            public_methods=("public_methods", self.public_methods),
            allow_missing_methods=("allow_missing_methods", self.allow_missing_methods),
        )
        _require(
            isinstance(self.requirements, Mapping), "requirements", "must map method names to Requirement"
        )
        for name in self.public_methods:
            check_method_name(name, "public_methods")
        for name in self.allow_missing_methods:
            check_method_name(name, "allow_missing_methods")
        for name in self.requirements:
            check_method_name(name, "requirements")
        for requirement in self.requirements.values():
            _require(isinstance(requirement, Requirement), "requirements", "values must be Requirement")
        _require(isinstance(self.require_listed, bool), "require_listed", "must be True or False")
        both = set(self.public_names) & set(self.requirements)
        _require(not both, "requirements", f"a method cannot be public and have requirements: {sorted(both)}")
        optional_and_public = set(self.allow_missing_methods) & set(self.public_names)
        _require(
            not optional_and_public,
            "allow_missing_methods",
            f"a method cannot be public and allow a missing token: {sorted(optional_and_public)}",
        )
        optional_and_required = set(self.allow_missing_methods) & set(self.requirements)
        _require(
            not optional_and_required,
            "allow_missing_methods",
            f"a method that allows a missing token cannot have requirements: {sorted(optional_and_required)}",
        )
        object.__setattr__(self, "requirements", MappingProxyType(dict(self.requirements)))

    @property
    def public_names(self) -> tuple[str, ...]:
        """Every public method or service entry: ``public_methods`` and, unless turned off, gRPC's
        health and reflection."""
        infra = PUBLIC_GRPC_INFRA_METHODS if self.public_grpc_infra else ()
        return (*self.public_methods, *infra)

    def access(self, method: str) -> MethodAccess:
        """Whether ``method`` is public, and what its callers need if it is not."""
        decided = self._decided.get(method)
        if decided is None:
            wildcard = _service_wildcard(method)
            public_names = self.public_names
            exact_requirement = self.requirements.get(method)
            optional_names = self.allow_missing_methods
            # The most specific entry decides: an exact entry (public, allow-missing or a
            # requirement) wins over its service's wildcard, so "/pkg.Svc/*" public never opens a
            # method that names its own requirement. (An exact name on two sides is refused at
            # construction, and so is a wildcard.)
            optional = False
            if method in public_names:
                public = True
            elif method in optional_names:
                public, optional = False, True
            elif exact_requirement is not None:
                public = False
            else:
                public = wildcard in public_names
                optional = not public and wildcard in optional_names
            requirement = exact_requirement
            if requirement is None:
                requirement = self.requirements.get(wildcard)
            if optional:
                requirement = None  # the handler decides what an optional caller may see
            listed = public or optional or requirement is not None
            decided = MethodAccess(public, requirement, listed, optional)
            if len(self._decided) < MAX_REMEMBERED_METHODS:
                self._decided[method] = decided
        return decided

    def is_public(self, method: str) -> bool:
        return self.access(method).public

    def requirement_for(self, method: str) -> Requirement | None:
        return self.access(method).requirement


def _service_wildcard(method: str) -> str:
    return method.rsplit("/", 1)[0] + "/*"


def _network(value: str, setting: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{setting}: not an IP address or network: {value!r}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class DPoPConfig:
    """How DPoP proofs (RFC 9449) are checked. DPoP is accepted with the defaults: no setting is
    needed to receive a DPoP request.

    For gRPC the proof's ``htm`` is ``POST`` and its ``htu`` is
    ``<scheme>://<authority>/<package.Service>/<Method>`` (gRPC's HTTP/2 mapping). Python's grpc
    does not tell a server the ``:authority`` a call was sent to (grpc/grpc#38906), so unless
    ``public_base_urls`` names the URLs clients use, a gRPC proof's authority is not compared
    (its scheme and path are). See the README, "Sender-constrained tokens".
    """

    #: Accepted proof algorithms (RFC 9449 §4.3 check 5: asymmetric, from an allowlist).
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    #: Largest ``DPoP`` proof accepted before any parsing, bytes (a proof carrying an RSA-4096
    #: key is about 2.2 KiB; EC proofs are about 600 bytes).
    max_proof_bytes: int = 4096
    #: Oldest proof accepted, seconds: ``iat >= now - max_proof_age_s`` (RFC 9449 §11.1 asks for a
    #: short window; 60 s is Spring Security's default). Also how long a ``jti`` is remembered.
    max_proof_age_s: float = 60.0
    #: How far in the future a proof's ``iat`` may be, seconds (clock skew).
    proof_leeway_s: float = 5.0
    #: Require a server nonce in every proof (RFC 9449 §8): a proof without the current nonce
    #: gets ``use_dpop_nonce`` and a fresh ``DPoP-Nonce``. Off by default, as in the RFC.
    require_nonce: bool = False
    #: How often the nonce changes, seconds; the current and the previous one are accepted.
    nonce_rotation_s: float = 300.0
    #: The secret nonces are derived from (32 bytes or more). None: a random one per
    #: Authenticator, so replicas behind one load balancer need a shared secret here.
    nonce_secret: bytes | None = field(default=None, repr=False)
    #: The base URLs clients use to reach this server (``https://api.example.com``, optionally a
    #: path prefix): a proof's ``htu`` must be one of them followed by the request's path (the
    #: gRPC method). Empty: HTTP compares with the request's own URL; gRPC compares scheme and
    #: path only (its authority is not known to a Python server).
    public_base_urls: tuple[str, ...] = ()
    #: Peers (IP addresses or networks) allowed to forward a request's original method and URL
    #: in ``dpop-htm`` / ``dpop-htu`` metadata (the split deployment's facade). From any other
    #: peer such metadata is refused. Empty: nobody may forward.
    trusted_proxies: tuple[str, ...] = ()
    #: Most proof ids (``jti``) the in-memory replay store keeps, in total and per client key
    #: (100,000 entries is about 30 MB). When full it drops the oldest and refuses any proof as old
    #: (never a replay): see ``MemoryReplayStore``.
    replay_store_size: int = 100_000
    replay_store_size_per_key: int = 10_000

    def __post_init__(self) -> None:
        _set_names(
            self,
            algorithms=("dpop.algorithms", self.algorithms),
            public_base_urls=("dpop.public_base_urls", self.public_base_urls),
            trusted_proxies=("dpop.trusted_proxies", self.trusted_proxies),
        )
        _require(bool(self.algorithms), "dpop.algorithms", "at least one algorithm is required")
        unknown = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        _require(not unknown, "dpop.algorithms", f"unsupported or unsafe: {', '.join(unknown)}")
        _require(
            512 <= self.max_proof_bytes <= 64 * 1024, "dpop.max_proof_bytes", "must be between 512 and 65536"
        )
        _require(
            type(self.max_proof_age_s) in (int, float) and 1 <= self.max_proof_age_s <= 3600,
            "dpop.max_proof_age_s",
            "must be between 1 and 3600 seconds",
        )
        _require(
            type(self.proof_leeway_s) in (int, float) and 0 <= self.proof_leeway_s <= 300,
            "dpop.proof_leeway_s",
            "must be between 0 and 300 seconds",
        )
        _require(
            type(self.nonce_rotation_s) in (int, float) and 10 <= self.nonce_rotation_s <= 86_400,
            "dpop.nonce_rotation_s",
            "must be between 10 and 86400 seconds",
        )
        _require(
            self.nonce_secret is None
            or (isinstance(self.nonce_secret, bytes) and len(self.nonce_secret) >= 32),
            "dpop.nonce_secret",
            "must be at least 32 bytes",
        )
        for url in self.public_base_urls:
            parts = urlsplit(url)
            _require(
                parts.scheme in ("https", "http")
                and bool(parts.hostname)
                and not parts.query
                and not parts.fragment
                and not parts.username
                and not parts.password,
                "dpop.public_base_urls",
                f"not an http(s) base URL without query, fragment or user: {url!r}",
            )
        object.__setattr__(
            self,
            "trusted_proxies",
            tuple(str(_network(p, "dpop.trusted_proxies")) for p in self.trusted_proxies),
        )
        for name in ("replay_store_size", "replay_store_size_per_key"):
            value = getattr(self, name)
            _require(type(value) is int and value >= 1, f"dpop.{name}", "must be at least 1")
        _require(
            self.replay_store_size_per_key <= self.replay_store_size,
            "dpop.replay_store_size_per_key",
            "must not exceed dpop.replay_store_size",
        )

    @property
    def replay_window_s(self) -> float:
        """How long a proof stays acceptable, so how long its ``jti`` must be remembered."""
        return self.max_proof_age_s + self.proof_leeway_s


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthnConfig:
    """Everything the authenticator needs."""

    issuers: tuple[IssuerConfig, ...]
    policy: Policy = field(default_factory=Policy)
    #: Largest token accepted before any parsing, bytes (Envoy's header limits; 8 KiB fits real tokens).
    max_token_bytes: int = 8 * 1024
    #: Deepest nesting of objects and arrays in a token's claims (the payload object is level 1).
    #: Real access tokens nest 3 levels (``resource_access.client.roles``); 16 leaves room while
    #: keeping every claim set renderable as a protobuf ``Struct`` (its decoder stops at 100
    #: message levels, three per JSON level). Deeper tokens are refused as ``malformed_claims``.
    max_claims_depth: int = 16
    #: Verified-token cache entries (bounded LRU); 0 disables the cache.
    token_cache_size: int = 10_000
    #: Most keys tried for a token that names no ``kid``.
    max_keys_without_kid: int = 4
    #: Unknown kids remembered after a refresh, so a flood of them costs nothing.
    negative_kid_cache_size: int = 1024
    #: ``realm`` of the WWW-Authenticate challenge (RFC 6750 §3); "" leaves it out.
    realm: str = ""
    #: DPoP proof checking (RFC 9449); accepted with the defaults.
    dpop: DPoPConfig = field(default_factory=DPoPConfig)
    #: Wall clock, injectable for tests.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        _require(
            not isinstance(self.issuers, str | IssuerConfig) and isinstance(self.issuers, Iterable),
            "issuers",
            "must be a collection of IssuerConfig (a one-element tuple needs a trailing comma)",
        )
        object.__setattr__(self, "issuers", tuple(self.issuers))
        _require(
            all(isinstance(i, IssuerConfig) for i in self.issuers),
            "issuers",
            "must contain IssuerConfig only",
        )
        _require(isinstance(self.policy, Policy), "policy", "must be a Policy")
        _require(isinstance(self.dpop, DPoPConfig), "dpop", "must be a DPoPConfig")
        _require(bool(self.issuers), "issuers", "at least one issuer is required")
        names = [i.issuer for i in self.issuers]
        _require(len(set(names)) == len(names), "issuers", "each issuer may be configured once")
        _require(256 <= self.max_token_bytes <= 64 * 1024, "max_token_bytes", "must be between 256 and 65536")
        _require(1 <= self.max_claims_depth <= 32, "max_claims_depth", "must be between 1 and 32")
        _require(self.token_cache_size >= 0, "token_cache_size", "must not be negative")
        _require(self.max_keys_without_kid >= 1, "max_keys_without_kid", "must be at least 1")
        _require(self.negative_kid_cache_size >= 0, "negative_kid_cache_size", "must not be negative")
        _require(
            '"' not in self.realm and "\\" not in self.realm,
            "realm",
            "must not contain quotes or backslashes",
        )
