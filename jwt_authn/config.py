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
from dataclasses import MISSING, dataclass, field, fields
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
    "DecisionMemo",
    "FieldDoc",
    "IssuerConfig",
    "MethodAccess",
    "Policy",
    "Requirement",
    "describe",
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


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """A config field as settings built on it show it (``describe(IssuerConfig)``): its default
    (``MISSING`` when required), meaning, and inclusive bounds (``gt``: exclusive lower bound)."""

    name: str
    default: Any
    description: str
    ge: float | None = None
    le: float | None = None
    gt: float | None = None

    @property
    def bounds(self) -> str:
        """What a value out of bounds is told: ``must be between 0 and 300 seconds``."""
        unit = " seconds" if self.name.endswith("_s") else ""
        if self.ge is not None and self.le is not None:
            return f"must be between {_number(self.ge)} and {_number(self.le)}{unit}"
        if self.gt == 0:
            return "must be a positive number"
        return "must not be negative" if self.ge == 0 else f"must be at least {_number(self.ge or 0)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_DOC = "jwt_authn.doc"


def _doc(
    description: str,
    default: Any = MISSING,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    **kwargs: Any,
) -> Any:
    """A dataclass field with its meaning and bounds: written once, read by ``describe``."""
    return field(default=default, metadata={_DOC: (description, ge, le, gt)}, **kwargs)


def describe(cls: type) -> tuple[FieldDoc, ...]:
    """The documented fields of a config class, in order: what an embedder's settings and tables derive."""
    docs = []
    for item in fields(cls):
        if _DOC in item.metadata:
            default = item.default if item.default_factory is MISSING else item.default_factory()
            docs.append(FieldDoc(item.name, default, *item.metadata[_DOC]))
    return tuple(docs)


def _check_bounds(instance: object, prefix: str = "") -> None:
    """Each bounded field of ``instance`` is a number within its bounds."""
    for doc in describe(type(instance)):
        if (doc.ge, doc.le, doc.gt) == (None, None, None):
            continue
        value = getattr(instance, doc.name)
        ok = type(value) in (int, float) and (
            (doc.ge is None or value >= doc.ge)
            and (doc.le is None or value <= doc.le)
            and (doc.gt is None or value > doc.gt)
        )
        _require(ok, prefix + doc.name, doc.bounds)


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

    # Each default's source is in its description (an RFC, jose's default, Envoy's).
    issuer: str = _doc(
        "The exact `iss` value (case-sensitive string match, RFC 7519 §4.1.1), written as the IdP writes "
        "it, trailing slash or not. Also the discovery base URL unless a key source below is given. A "
        "mismatch is logged at WARNING with both values."
    )
    audiences: tuple[str, ...] = _doc(
        "Accepted `aud` values; a token must name at least one (RFC 9068 §4). Required unless "
        "`allow_any_audience`.",
        (),
    )
    allow_any_audience: bool = _doc(
        "Skip the audience match (must be chosen explicitly, RFC 8725 §3.9).", False
    )
    # Key source: exactly one of discovery (the default), jwks_uri, jwks_file, jwks.
    jwks_uri: str | None = _doc("Explicit JWKS URL; skips OIDC discovery.", None)
    jwks_file: str | None = _doc(
        "Local JWKS file, re-read when its modification time or size changes (checked every second).", None
    )
    jwks: Mapping[str, Any] | None = _doc(
        'An in-memory JWKS document (`{"keys": [...]}`); loaded once.', None
    )
    allow_insecure_http: bool = _doc(
        "Allow plain `http` off loopback (loopback `http` is always allowed).", False
    )
    algorithms: tuple[str, ...] = _doc(
        "Accepted `alg` values (RFC 8725 §3.1). `HS*` and `none` are refused at construction.",
        DEFAULT_ALGORITHMS,
    )
    leeway_s: float = _doc(
        "Clock skew tolerated on `exp`/`nbf`/`iat`, seconds (30 s, as jwks-rsa/jose users commonly set).",
        30.0,
        ge=0,
        le=300,
    )
    require_exp: bool = _doc("Require an `exp` claim (RFC 9068 §2.2).", True)
    required_claims: tuple[str, ...] = _doc("Further claims that must be present.", ())
    require_access_token_type: bool = _doc(
        "Require `typ: at+jwt` (RFC 9068 §2.1); otherwise `JWT`, `at+jwt`, `application/at+jwt` or no "
        "`typ` pass (off: many issuers still send `JWT`).",
        False,
    )
    roles_claim: str = _doc(
        "Claim holding roles; a dotted path reaches nested objects (`realm_access.roles`).", "roles"
    )
    require_sender_constrained: bool = _doc(
        "Accept only tokens bound to a DPoP key (`cnf.jkt`, RFC 9449) or a client certificate "
        '(`cnf["x5t#S256"]`, RFC 8705); an unbound token is `sender_constraint_required`. '
        "Off: both kinds pass, and a bound "
        "token always needs its proof or certificate.",
        False,
    )
    fetch_timeout_s: float = _doc(
        "Timeout of each discovery/JWKS fetch, seconds (jose's default).", 5.0, gt=0
    )
    max_response_bytes: int = _doc(
        "Largest discovery/JWKS body accepted, bytes (a real JWKS is a few KiB).", 256 * 1024, ge=1024
    )
    max_keys: int = _doc("Most keys kept from one JWKS.", 64, ge=1)
    refresh_interval_s: float = _doc(
        "Refresh period when the response has no usable `Cache-Control: max-age`, seconds (jose's "
        "cacheMaxAge, 10 min).",
        600.0,
        gt=0,
    )
    min_refresh_interval_s: float = _doc("Least `max-age` applied, seconds.", 60.0, gt=0)
    max_refresh_interval_s: float = _doc("Largest `max-age` applied, seconds.", 86_400.0, gt=0)
    cooldown_s: float = _doc(
        "Least time between two on-demand (unknown `kid`) refreshes, seconds (jose's cooldownDuration).",
        30.0,
        gt=0,
    )
    refresh_wait_s: float = _doc(
        "Longest a request waits for an on-demand refresh, seconds; the fetch goes on in the background. "
        "Well below a caller's deadline, so a slow issuer costs a prompt 401 (503 before any key set "
        "loaded), never a timeout.",
        1.0,
        gt=0,
    )
    max_staleness_s: float = _doc(
        "How long the last good key set keeps serving through an issuer outage, seconds (Microsoft's "
        "ConfigurationManager keeps the last good one; bounded at 24 h).",
        86_400.0,
        gt=0,
    )
    retry_initial_backoff_s: float = _doc(
        "First backoff after a failed fetch, seconds (exponential, with full jitter).", 1.0, gt=0
    )
    retry_max_backoff_s: float = _doc("Longest backoff between failed fetches, seconds.", 60.0, gt=0)

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
        _check_bounds(self)
        roles_claim_ok = _CLAIM_PATH.fullmatch(self.roles_claim) is not None
        _require(roles_claim_ok, "roles_claim", "must be a claim name or dotted path")
        _require(
            self.min_refresh_interval_s <= self.max_refresh_interval_s,
            "min_refresh_interval_s",
            "must not exceed max_refresh_interval_s",
        )

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


class DecisionMemo:
    """A ``Policy``'s memo: the access already decided for each method, a pure function of the
    frozen policy, so remembering changes no answer. Holds at most ``MAX_REMEMBERED_METHODS``
    (methods beyond are decided afresh on each call: correct, only slower)."""

    __slots__ = ("_decided",)

    def __init__(self) -> None:
        self._decided: dict[str, MethodAccess] = {}

    def __len__(self) -> int:
        return len(self._decided)

    def get(self, method: str) -> MethodAccess | None:
        return self._decided.get(method)

    def remember(self, method: str, access: MethodAccess) -> None:
        if len(self._decided) < MAX_REMEMBERED_METHODS:
            self._decided[method] = access


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

    public_methods: tuple[str, ...] = _doc(
        "Methods callable without a token: full names `/pkg.Service/Method`, or `/pkg.Service/*` for a "
        "whole service.",
        (),
    )
    requirements: Mapping[str, Requirement] = _doc(
        "Method or `/pkg.Service/*` → `Requirement(scopes=..., roles=...)`; all listed scopes and roles "
        "are needed. The most specific entry wins: an exact method entry (public or a requirement) decides "
        "over its service's wildcard, so `/pkg.Svc/*` public never opens a method with its own "
        "requirement. Scopes come from `scope` (space-separated) and `scp` (array).",
        default_factory=lambda: MappingProxyType({}),
    )
    public_grpc_infra: bool = _doc(
        "Also make `PUBLIC_GRPC_INFRA_METHODS` (gRPC health and reflection) public. Off only by an "
        "explicit choice (a service whose health must not be probed anonymously).",
        True,
    )
    allow_missing_methods: tuple[str, ...] = _doc(
        "Optional authentication (Envoy's `allow_missing`): methods (or `/pkg.Service/*`) callable without "
        "a token, where a token that *is* sent is authenticated like anywhere else (an invalid or expired "
        "one is refused) and the handler sees its principal. No scopes or roles are required there (an "
        "anonymous caller gets in anyway): the handler decides what each caller sees.",
        (),
    )
    require_listed: bool = _doc(
        "Deny unless named: a method that no entry names (exactly or by its service's wildcard; gRPC's "
        "infrastructure counts as named while `public_grpc_infra`) is refused with `PERMISSION_DENIED` / "
        "403 `method_not_listed`, token or not, and logged once at ERROR. Off (like Envoy's rules, except "
        "that an unnamed method here still needs a valid token), such a method needs a valid token.",
        False,
    )
    # Each method's decision, made once: deciding builds a wildcard string and does three lookups,
    # which inside a busy server (whose other work keeps the CPU caches cold) is a visible share of
    # a protected call. The policy's only mutable part, outside its value (no init, eq or repr).
    decisions: DecisionMemo = field(default_factory=DecisionMemo, init=False, repr=False, compare=False)

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
        decided = self.decisions.get(method)
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
            self.decisions.remember(method, decided)
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

    algorithms: tuple[str, ...] = _doc(
        "Accepted proof algorithms (RFC 9449 §4.3 check 5: asymmetric, from an allowlist).",
        DEFAULT_ALGORITHMS,
    )
    max_proof_bytes: int = _doc(
        "Largest `DPoP` proof accepted before any parsing, bytes (a proof carrying an RSA-4096 key is "
        "about 2.2 KiB; EC proofs are about 600 bytes).",
        4096,
        ge=512,
        le=64 * 1024,
    )
    max_proof_age_s: float = _doc(
        "Oldest proof accepted (`iat >= now - max_proof_age_s`), and how long its `jti` is remembered, "
        "seconds (RFC 9449 §11.1 asks for a short window; 60 s is Spring Security's default).",
        60.0,
        ge=1,
        le=3600,
    )
    proof_leeway_s: float = _doc(
        "How far in the future a proof's `iat` may be, seconds (clock skew).", 5.0, ge=0, le=300
    )
    require_nonce: bool = _doc(
        "Require a server nonce in every proof (RFC 9449 §8): a proof without the current nonce gets "
        "`use_dpop_nonce` and a fresh `DPoP-Nonce`. Off by default, as in the RFC.",
        False,
    )
    nonce_rotation_s: float = _doc(
        "How often the nonce changes, seconds; the current and the previous one are accepted.",
        300.0,
        ge=10,
        le=86_400,
    )
    nonce_secret: bytes | None = _doc(
        "The secret nonces are derived from (32 bytes or more). None: a random one per Authenticator, "
        "so replicas behind one load balancer need a shared secret here.",
        None,
        repr=False,
    )
    public_base_urls: tuple[str, ...] = _doc(
        "The base URLs clients reach this server at (`https://api.example.com`, optionally a path "
        "prefix): a proof's `htu` must be one of them followed by the request's path (the gRPC method). "
        "Empty: HTTP compares with the request's own URL; gRPC compares scheme and path only (its "
        "authority is not known to a Python server).",
        (),
    )
    trusted_proxies: tuple[str, ...] = _doc(
        "Peers (IP addresses or networks) allowed to forward a request's original method and URL in "
        "`dpop-htm` / `dpop-htu` metadata (the split deployment's facade); from any other peer such "
        "metadata is refused. Empty: nobody may forward (a client must never choose the URL its proof "
        "is checked against).",
        (),
    )
    # 100,000 entries is about 30 MB.
    replay_store_size: int = _doc(
        "Most proof ids (`jti`) the in-memory replay store keeps. When full it drops the oldest and "
        "refuses any proof as old (never a replay): see `MemoryReplayStore`.",
        100_000,
        ge=1,
    )
    replay_store_size_per_key: int = _doc(
        "Most proof ids the in-memory replay store keeps per client key.", 10_000, ge=1
    )

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
        _check_bounds(self, "dpop.")
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

    issuers: tuple[IssuerConfig, ...] = _doc(
        "One or more `IssuerConfig`; the token's `iss` picks one (an unknown `iss` is refused without any "
        "fetch)."
    )
    policy: Policy = _doc("The method policy above.", default_factory=Policy)
    max_token_bytes: int = _doc(
        "Largest token accepted, checked before any parsing, bytes (Envoy-like header budgets; 8 KiB "
        "fits real tokens).",
        8 * 1024,
        ge=256,
        le=64 * 1024,
    )
    # Real access tokens nest 3 levels (resource_access.client.roles); 16 leaves room while keeping
    # every claim set renderable as a protobuf Struct (its decoder stops at 100 message levels,
    # three per JSON level).
    max_claims_depth: int = _doc(
        "Deepest nesting of objects and arrays in the claims (the payload is level 1). Real tokens nest "
        "3; deeper ones are `malformed_claims`, and every accepted claim set renders as a protobuf "
        "`Struct`.",
        16,
        ge=1,
        le=32,
    )
    token_cache_size: int = _doc(
        "Verified-token LRU entries (0 disables). A hit skips the signature check but not the time "
        "checks; entries die with their key, and with the key material behind their `kid` when the "
        "issuer replaces it.",
        10_000,
        ge=0,
    )
    max_keys_without_kid: int = _doc("Most keys tried for a token without `kid`.", 4, ge=1)
    negative_kid_cache_size: int = _doc(
        "Unknown kids remembered after a refresh, so a flood of them costs nothing.", 1024, ge=0
    )
    realm: str = _doc("`realm` of the `WWW-Authenticate` challenge (RFC 6750 §3); empty leaves it out.", "")
    dpop: DPoPConfig = _doc(
        "DPoP proof checking (RFC 9449), below. DPoP is accepted with the defaults.",
        default_factory=DPoPConfig,
    )
    clock: Callable[[], float] = _doc(
        "The wall clock for claim checks; give your tests a clock they move by hand.", time.time
    )

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
        _check_bounds(self)
        _require(
            '"' not in self.realm and "\\" not in self.realm,
            "realm",
            "must not contain quotes or backslashes",
        )
