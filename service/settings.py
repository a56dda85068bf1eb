"""The gRPC service's settings: its listener group, the bearer-token and process groups, its own knobs.

The bearer-token settings (``AuthnSettings``) carry the names of jwt_authn's ``IssuerConfig`` and
``AuthnConfig`` fields (``DPoPConfig``'s as ``dpop_<field>``, but ``trusted_proxies``, the name
operators know) and take their defaults, bounds and descriptions from jwt_authn (``describe``), so
``authn_config`` builds the guard's config by name: exposing a new jwt_authn knob is one line here.

Usage:
    settings = ServiceSettings.load(["--issuer", "https://idp.example.com/", "--audiences", "secureroute"])
    config = authn_config(settings)  # raises ValueError("audiences: ...") on a bad combination
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, model_validator

from jwt_authn.config import AuthnConfig, DPoPConfig, IssuerConfig, Policy, describe
from runtime.listen import Listen, ListenAddress, OptionalListen
from runtime.settings import (
    Count,
    Csv,
    ExistingFile,
    Networks,
    PositiveSeconds,
    ProcessSettings,
    ProgramSettings,
    Seconds,
    ServerTLSSettings,
    SubSettings,
    Text,
    WorkerSettings,
)
from service.unix_socket import parse_unix_socket_path

__all__ = [
    "AuthnSettings",
    "GrpcServer",
    "ServiceRuntime",
    "ServiceSettings",
    "authn_config",
]

_DOCS = {
    **{doc.name: doc for doc in (*describe(IssuerConfig), *describe(AuthnConfig))},
    **{f"dpop_{doc.name}": doc for doc in describe(DPoPConfig)},
}
_DOCS["trusted_proxies"] = _DOCS.pop("dpop_trusted_proxies")


def _guard(name: str, **extra: Any) -> Any:
    """The pydantic field of the guard's setting ``name``: jwt_authn's default, bounds and description."""
    doc = _DOCS[name]
    bounds = {key: getattr(doc, key) for key in ("ge", "le", "gt") if getattr(doc, key) is not None}
    default = ... if doc.default is MISSING else doc.default
    return Field(default, description=doc.description, **{**bounds, **extra})


class AuthnSettings(SubSettings):
    """Who issues the accepted tokens, for whom, and how their keys are fetched and cached."""

    issuer: Text = _guard("issuer")
    audiences: Csv = _guard("audiences")
    allow_any_audience: bool = _guard("allow_any_audience")
    # None: discovered from the issuer's /.well-known/openid-configuration.
    jwks_uri: Text | None = _guard("jwks_uri")
    jwks_file: ExistingFile | None = _guard("jwks_file")
    allow_insecure_http: bool = _guard("allow_insecure_http")
    algorithms: Csv = _guard("algorithms")
    leeway_s: Seconds = _guard("leeway_s")
    require_access_token_type: bool = _guard("require_access_token_type")
    roles_claim: Text = _guard("roles_claim")
    fetch_timeout_s: PositiveSeconds = _guard("fetch_timeout_s")
    refresh_interval_s: PositiveSeconds = _guard("refresh_interval_s")
    refresh_wait_s: PositiveSeconds = _guard("refresh_wait_s")
    cooldown_s: PositiveSeconds = _guard("cooldown_s")
    max_staleness_s: PositiveSeconds = _guard("max_staleness_s")
    # Ours, above the guard's: ten million entries is a typo, not a cache.
    token_cache_size: int = _guard("token_cache_size", le=10_000_000)
    max_token_bytes: int = _guard("max_token_bytes")
    max_claims_depth: int = _guard("max_claims_depth")
    realm: str = _guard("realm")
    require_sender_constrained: bool = _guard("require_sender_constrained")
    trusted_proxies: Networks = _guard("trusted_proxies")
    dpop_public_base_urls: Csv = _guard("dpop_public_base_urls")
    dpop_max_proof_age_s: PositiveSeconds = _guard("dpop_max_proof_age_s")
    dpop_require_nonce: bool = _guard("dpop_require_nonce")


_MAX_CONCURRENT_RPCS = 5 * 200  # five times the calls the load tests (tests/load) keep in flight
_ANONYMOUS_ROOM = _MAX_CONCURRENT_RPCS // 10  # for calls without a token, each kind


class GrpcServer(ServerTLSSettings):
    """The gRPC listener (variables ``SECUREROUTE_GRPC_*``) and its limits."""

    # All interfaces, gRPC's conventional port.
    listen: Listen = ListenAddress("::", 50051)
    """address to serve gRPC on, host:port ([::]:port for IPv6, port 0 picks a free port)"""
    # Off: only co-located clients (a facade on the same host) have a use for it.
    listen_unix: Annotated[Text, AfterValidator(parse_unix_socket_path)] | None = None
    """also serve gRPC on this Unix socket (absolute path, its directory must exist), with the same TLS
    as listen; the socket gets the process umask, so the directory's permissions decide who may connect;
    needs workers = 1"""
    # Off: any client may connect.
    tls_client_ca: ExistingFile | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)"""
    # It only stops a pile-up (each waiting call costs memory), never a busy but healthy service.
    max_concurrent_rpcs: Count = _MAX_CONCURRENT_RPCS
    """calls served at once across all connections, anonymous ones included; more are answered
    RESOURCE_EXHAUSTED (HTTP 429 at the facade)"""
    # Probes answer in a millisecond: an anonymous flood leaves the rest of the cap to token holders.
    max_anonymous_rpcs: Count = _ANONYMOUS_ROOM
    """unary calls without a token at once (health Check, Health); more are answered RESOURCE_EXHAUSTED
    at once; health Watch streams cannot take this room"""
    # Apart from the unary room: long-lived streams anyone may open cannot starve the probes.
    max_anonymous_streams: Count = _ANONYMOUS_ROOM
    """streaming calls without a token at once (health Watch, reflection); more are answered
    RESOURCE_EXHAUSTED at once"""
    # Room for the benchmark's 32 connections through one split facade, yet one client leaves the rest.
    max_anonymous_per_connection: Count = 32
    """calls without a token (unary and streaming) at once on one connection; more are answered
    RESOURCE_EXHAUSTED at once ('too many anonymous calls from this client')"""
    # As much as one connection: opening more connections gains a client nothing.
    max_anonymous_per_address: Count = 32
    """calls without a token (unary and streaming) at once from one peer address, all its connections
    together; more are answered RESOURCE_EXHAUSTED at once (HTTP 429 at the facade)"""
    # Kubernetes' default probe timeout: only a caller that withholds its message waits this long.
    request_message_timeout_s: PositiveSeconds = 1.0
    """how long a call without a token may take to send its request message, seconds; slower ones are
    answered DEADLINE_EXCEEDED (calls with an invalid token are refused without waiting for it)"""
    # The power of two at or above half the call cap: a facade's one connection fits, yet cannot take
    # every slot. Not nginx's 128: grpc-core refuses a few streams at the limit (see the README).
    max_concurrent_streams: Count = 1 << (_MAX_CONCURRENT_RPCS // 2 - 1).bit_length()
    """calls at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); a client's further calls
    wait on its side, and a few may fail UNAVAILABLE while it runs at the limit"""
    # Steady clients never reconnect, abandoned connections do not pile up. At most a day (gRPC
    # takes milliseconds as a 32-bit int), here and below.
    max_connection_idle_s: Seconds = Field(300.0, le=86_400)
    """close a connection without calls for this long (GOAWAY), seconds; 0 keeps it open"""
    # Rebalances long-lived connections onto new pods after a scale-up; a health Watch ends at age + grace.
    max_connection_age_s: Seconds = Field(1800.0, le=86_400)
    """send a connection a GOAWAY after this long, seconds (clients reconnect by themselves); 0 keeps it
    open"""
    # Calls take at most the facade's 5 s deadline; this leaves room for slower clients.
    max_connection_age_grace_s: Seconds = Field(30.0, le=86_400)
    """after that GOAWAY, how long calls still open (health Watch streams) may run, seconds"""

    @model_validator(mode="after")
    def _mutual_tls_needs_tls(self) -> Self:
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_cert: required when tls_client_ca is set (mutual TLS needs TLS)")
        return self

    @model_validator(mode="after")
    def _authenticated_calls_keep_room(self) -> Self:
        if self.max_anonymous_rpcs + self.max_anonymous_streams >= self.max_concurrent_rpcs:
            raise ValueError(
                "max_anonymous_rpcs: with max_anonymous_streams it must stay below max_concurrent_rpcs "
                f"({self.max_anonymous_rpcs} + {self.max_anonymous_streams} >= {self.max_concurrent_rpcs})"
            )
        return self


def _redis_url(value: str) -> str:
    if value.split("://", 1)[0] not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


class ServiceRuntime(ProcessSettings):
    """The service's process: metrics listener and drain, beside workers, grace and logs."""

    # Loopback: the operator's, never the public side's; 9464 is OpenTelemetry's Prometheus exporter port.
    metrics_listen: OptionalListen = ListenAddress("127.0.0.1", 9464)
    """the admin listener: Prometheus /metrics and the probes /health and /ready over plain HTTP on
    host:port, apart from the public ports, or off; with N workers, worker k uses port+k"""
    # Watchers see NOT_SERVING, sent calls reach a handler (grpc/grpc#41785; tests/load/test_load_drain.py).
    drain_delay_s: Seconds = Field(1.0, le=300)  # more than five minutes is a typo
    """on SIGTERM/SIGINT, how long to keep serving after health turns NOT_SERVING, before the grace
    period starts, seconds; 0 stops at once"""
    # Off: each process remembers its own (jwt_authn's memory store), so a proof replays once per replica.
    dpop_replay_redis_url: Annotated[Text, AfterValidator(_redis_url)] | None = None
    """redis:// (rediss:// for TLS) URL of a Redis all replicas share to remember accepted DPoP proofs,
    so a proof passes once across them; down: DPoP calls are refused (fail closed)"""


class ServiceSettings(AuthnSettings, ServiceRuntime, WorkerSettings, ProgramSettings):
    """Everything ``python -m service`` can be told."""

    prog: ClassVar[str] = "secureroute-service"
    description: ClassVar[str] = (
        "The secureroute gRPC service: Health is public, SecureRoute needs a bearer token."
    )
    inline: ClassVar[frozenset[str]] = frozenset({"grpc"})

    grpc: GrpcServer = GrpcServer()

    @model_validator(mode="after")
    def _one_process_per_socket_path(self) -> Self:
        if self.grpc.listen_unix is not None and self.workers > 1:
            # Workers share a TCP port through SO_REUSEPORT; each bind of a path replaces the last's socket.
            raise ValueError("listen_unix: cannot be shared by several workers; set workers = 1")
        return self


def authn_config(settings: AuthnSettings) -> AuthnConfig:
    """The jwt_authn config for ``settings``. Raises ``ValueError("setting: problem")``."""

    def values(config: type[Any], prefix: str = "") -> dict[str, Any]:
        names = (field.name for field in fields(config))
        return {
            name: getattr(settings, prefix + name)
            for name in names
            if prefix + name in AuthnSettings.model_fields
        }

    return AuthnConfig(
        issuers=(IssuerConfig(**values(IssuerConfig)),),
        # Our Health RPC answers load balancers and the facade's /health without credentials (beside
        # gRPC's health and reflection services, jwt_authn's default).
        policy=Policy(public_methods=("/secureroute.v1.SecureRouteService/Health",)),
        dpop=DPoPConfig(**values(DPoPConfig, "dpop_"), trusted_proxies=settings.trusted_proxies),
        **values(AuthnConfig),
    )
