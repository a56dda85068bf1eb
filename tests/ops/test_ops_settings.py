"""Every operator knob: parsed, mapped into jwt_authn's config in one place, and rejected cleanly.

Bad values are tested through the real programs (subprocesses): exit code 2, one line on
stderr naming the setting, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

from http_facade.settings import FacadeSettings
from jwt_authn.config import AuthnConfig, DPoPConfig, IssuerConfig
from runtime.listen import ListenAddress
from runtime.settings import settings_of
from service.settings import AuthnSettings, ServiceSettings, authn_config

ISSUER = "https://idp.example.com/"
BASE = ("--issuer", ISSUER, "--audiences", "secureroute", "--listen", "127.0.0.1:0")

AssertBadSetting = Callable[..., None]


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        pytest.param(("--issuer", ISSUER, "--listen", "127.0.0.1:0"), {}, "audiences", id="audience-missing"),
        pytest.param((*BASE, "--jwks-uri", "not a url"), {}, "jwks_uri", id="bad-url"),
        pytest.param(
            (*BASE, "--jwks-uri", "http://keys.example.com/jwks"), {}, "jwks_uri", id="http-off-loopback"
        ),
        pytest.param(
            ("--issuer", "http://idp.example.com/", "--audiences", "a"), {}, "issuer", id="http-issuer"
        ),
        pytest.param((*BASE, "--refresh-interval-s", "-1"), {}, "refresh_interval_s", id="negative-refresh"),
        pytest.param((*BASE, "--cooldown-s", "0"), {}, "cooldown_s", id="zero-cooldown"),
        pytest.param((*BASE, "--max-staleness-s=-3s"), {}, "max_staleness_s", id="negative-staleness"),
        pytest.param((*BASE, "--fetch-timeout-s", "soon"), {}, "fetch_timeout_s", id="bad-fetch-timeout"),
        pytest.param((*BASE, "--leeway-s", "301"), {}, "leeway_s", id="leeway-too-large"),
        pytest.param((*BASE, "--algorithms", "RS256,XS999"), {}, "algorithms", id="unknown-algorithm"),
        pytest.param((*BASE, "--token-cache-size", "-1"), {}, "token_cache_size", id="negative-cache"),
        pytest.param((*BASE, "--max-token-bytes", "12"), {}, "max_token_bytes", id="tiny-token-cap"),
        pytest.param((*BASE, "--realm", 'a"b'), {}, "realm", id="quote-in-realm"),
        pytest.param((*BASE, "--roles-claim", "a..b"), {}, "roles_claim", id="bad-roles-claim"),
        pytest.param((*BASE, "--workers", "0"), {}, "workers", id="zero-workers"),
        pytest.param((*BASE, "--workers", "two"), {}, "workers", id="words-for-workers"),
        pytest.param((*BASE, "--log-format", "xml"), {}, "log_format", id="bad-log-format"),
        pytest.param((*BASE, "--metrics-listen", "9464"), {}, "metrics_listen", id="metrics-no-host"),
        pytest.param((*BASE, "--tls-cert", "/no/such/cert.pem"), {}, "tls_cert", id="missing-cert-file"),
        pytest.param(
            BASE,
            {"SECUREROUTE_REQUIRE_ACCESS_TOKEN_TYPE": "perhaps"},
            "require_access_token_type",
            id="bad-bool-env",
        ),
        pytest.param(BASE, {"SECUREROUTE_WORKERS": "-2"}, "workers", id="negative-workers-env"),
        pytest.param((*BASE, "--max-concurrent-rpcs", "0"), {}, "max_concurrent_rpcs", id="zero-rpcs"),
        pytest.param(
            (*BASE, "--max-concurrent-rpcs", "150"), {}, "max_anonymous_rpcs", id="anonymous-take-everything"
        ),
        pytest.param(
            (*BASE, "--request-message-timeout-s", "0"),
            {},
            "request_message_timeout_s",
            id="zero-message-wait",
        ),
        pytest.param(
            (*BASE, "--max-concurrent-streams", "lots"), {}, "max_concurrent_streams", id="word-streams"
        ),
        pytest.param((*BASE, "--max-connection-idle-s", "30d"), {}, "max_connection_idle_s", id="idle-days"),
        pytest.param(
            (*BASE, "--max-connection-idle-s", "90000"), {}, "max_connection_idle_s", id="idle-too-long"
        ),
        pytest.param(BASE, {"SECUREROUTE_DRAIN_DELAY_S": "-1"}, "drain_delay_s", id="negative-drain-env"),
        pytest.param((*BASE, "--drain-delay-s", "301"), {}, "drain_delay_s", id="drain-too-long"),
    ],
)
def test_service_bad_values_exit_2(
    args: tuple[str, ...], env: dict[str, str], setting: str, assert_bad_setting: AssertBadSetting
) -> None:
    assert_bad_setting("service", *args, setting=setting, env=env)


def test_service_tls_files_must_fit(
    tmp_path: Path, pki: object, assert_bad_setting: AssertBadSetting
) -> None:
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello\n")
    cert, key = pki.server_cert, pki.server_key  # type: ignore[attr-defined]
    other_key = pki.client_key  # type: ignore[attr-defined]
    cases = [
        (("--tls-cert", cert), "tls_key"),  # a pair: one without the other
        (("--tls-key", key), "tls_cert"),
        (("--tls-client-ca", cert), "tls_cert"),  # mTLS needs TLS
        (("--tls-cert", cert, "--tls-key", other_key), "tls_cert"),  # the key of another certificate
        (("--tls-cert", str(not_pem), "--tls-key", key), "tls_cert"),
        (("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", str(not_pem)), "tls_client_ca"),
    ]
    for extra, setting in cases:
        assert_bad_setting("service", *BASE, *extra, setting=setting)


def test_service_metrics_port_in_use_exits_2(busy_port: int, assert_bad_setting: AssertBadSetting) -> None:
    assert_bad_setting(
        "service", *BASE, "--metrics-listen", f"127.0.0.1:{busy_port}", setting="metrics_listen"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use_exits_2_with_any_number_of_workers(
    busy_port: int, workers: str, assert_bad_setting: AssertBadSetting
) -> None:
    args = (
        "--issuer",
        ISSUER,
        "--audiences",
        "a",
        "--listen",
        f"127.0.0.1:{busy_port}",
        "--workers",
        workers,
    )
    assert_bad_setting("service", *args, setting="listen")
    args = ("--listen", f"127.0.0.1:{busy_port}", "--workers", workers)
    assert_bad_setting("http_facade", *args, setting="listen")


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        pytest.param(("--backend-ca", "/etc/hostname"), "backend_ca", id="ca-without-tls"),
        pytest.param(("--backend-tls", "--backend-ca", "/no/such/ca.pem"), "backend_ca", id="missing-ca"),
        pytest.param(("--backend-tls", "--backend-ca", "/etc/hostname"), "backend_ca", id="ca-not-pem"),
        pytest.param(("--workers", "65"), "workers", id="too-many-workers"),
        pytest.param(("--log-format", "yaml"), "log_format", id="bad-log-format"),
        pytest.param(("--grace-period-s", "-1"), "grace_period_s", id="negative-grace"),
        pytest.param(("--keepalive-timeout-s", "0"), "keepalive_timeout_s", id="zero-keepalive"),
        pytest.param(("--metrics-listen", "off", "--tls-key", "/etc/hostname"), "tls_cert", id="key-alone"),
        pytest.param(("--max-header-bytes", "100"), "max_header_bytes", id="tiny-head"),
        pytest.param(("--max-headers", "0"), "max_headers", id="no-headers"),
        pytest.param(("--max-connections", "none"), "max_connections", id="word-connections"),
        pytest.param(("--header-timeout-s", "0"), "header_timeout_s", id="zero-header-timeout"),
        pytest.param(("--metrics-listen", "9465"), "metrics_listen", id="metrics-no-host"),
    ],
)
def test_facade_bad_values_exit_2(
    args: tuple[str, ...], setting: str, assert_bad_setting: AssertBadSetting
) -> None:
    assert_bad_setting("http_facade", "--listen", "127.0.0.1:0", *args, setting=setting)


def test_facade_client_cert_needs_its_key(pki: object, assert_bad_setting: AssertBadSetting) -> None:
    cert = pki.client_cert  # type: ignore[attr-defined]
    assert_bad_setting(
        "http_facade", "--backend-tls", "--backend-client-cert", cert, setting="backend_client_key"
    )


def test_every_authn_knob_reaches_jwt_authn(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    settings = ServiceSettings.load(
        [
            "--issuer",
            "https://idp.example.com/",
            "--audiences",
            "a,b",
            "--jwks-file",
            str(jwks),
            "--allow-insecure-http",
            "--algorithms",
            "ES256",
            "--leeway-s",
            "12",
            "--require-access-token-type",
            "--roles-claim",
            "realm_access.roles",
            "--fetch-timeout-s",
            "2",
            "--refresh-interval-s",
            "120",
            "--cooldown-s",
            "7",
            "--max-staleness-s",
            "3600",
            "--token-cache-size",
            "5",
            "--max-token-bytes",
            "4096",
            "--realm",
            "secureroute",
            "--require-sender-constrained",
            "--trusted-proxies",
            "127.0.0.7",
            "--trusted-proxies",
            "127.1.0.0/16",
            "--dpop-public-base-urls",
            "https://api.example.com",
            "--dpop-max-proof-age-s",
            "30",
            "--dpop-require-nonce",
        ],
        environ={},
    )
    config = authn_config(settings)
    issuer = config.issuers[0]
    assert issuer == IssuerConfig(
        issuer="https://idp.example.com/",
        audiences=("a", "b"),
        jwks_file=str(jwks),
        allow_insecure_http=True,
        algorithms=("ES256",),
        leeway_s=12.0,
        require_access_token_type=True,
        roles_claim="realm_access.roles",
        fetch_timeout_s=2.0,
        refresh_interval_s=120.0,
        cooldown_s=7.0,
        max_staleness_s=3600.0,
        require_sender_constrained=True,
    )
    assert (config.token_cache_size, config.max_token_bytes, config.realm) == (5, 4096, "secureroute")
    dpop = config.dpop
    assert dpop.trusted_proxies == ("127.0.0.7/32", "127.1.0.0/16")  # jwt_authn writes networks
    assert (dpop.public_base_urls, dpop.max_proof_age_s, dpop.require_nonce) == (
        ("https://api.example.com",),
        30.0,
        True,
    )
    # Every bearer-token setting is a field of jwt_authn's config, so none is silently dropped
    # (DPoPConfig's as dpop_<field>, and trusted_proxies).
    config_fields = {f.name for cls in (IssuerConfig, AuthnConfig) for f in fields(cls)}
    config_fields |= {f"dpop_{f.name}" for f in fields(DPoPConfig)} | {"trusted_proxies"}
    assert set(AuthnSettings.model_fields) <= config_fields
    assert not set(AuthnSettings.model_fields) & {row.name for row in settings_of(FacadeSettings)}


def test_defaults_come_from_jwt_authn() -> None:
    settings = ServiceSettings.load(["--issuer", ISSUER, "--audiences", "a"], environ={})
    default = IssuerConfig(issuer=ISSUER, audiences=("a",))
    assert authn_config(settings).issuers[0] == default
    # Metrics on loopback only, apart from the gRPC port.
    assert settings.metrics_listen == ListenAddress("127.0.0.1", 9464)
    assert settings.workers == 1 and settings.log_format == "auto"


def test_new_knobs_follow_the_precedence(tmp_path: Path) -> None:
    config = tmp_path / "facade.toml"
    config.write_text('workers = 3\nlog_format = "text"\nbackend_tls = true\nmetrics_listen = "off"\n')
    env = {"SECUREROUTE_CONFIG": str(config), "SECUREROUTE_WORKERS": "2", "SECUREROUTE_LOG_FORMAT": "JSON"}
    settings = FacadeSettings.load(["--workers", "4"], environ=env)
    assert settings.workers == 4  # flag
    assert settings.log_format == "json"  # env beats TOML
    assert settings.backend_tls is True and settings.http.metrics_listen is None  # TOML beats the defaults
    service = ServiceSettings.load(
        ["--issuer", ISSUER, "--audiences", "a"], environ={"SECUREROUTE_METRICS_LISTEN": "[::1]:9464"}
    )
    assert service.metrics_listen == ListenAddress("::1", 9464)
    service = ServiceSettings.load(
        ["--issuer", ISSUER, "--audiences", "a", "--metrics-listen", "off"], environ={}
    )
    assert service.metrics_listen is None


def test_limit_knobs_follow_the_precedence(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        "max_concurrent_rpcs = 50\nmax_connection_idle_s = 60\ndrain_delay_s = 2.5\nmax_anonymous_rpcs = 20\n"
        "request_message_timeout_s = 3\nmax_connection_age_s = 600\n"
    )
    env = {
        "SECUREROUTE_CONFIG": str(config),
        "SECUREROUTE_GRPC_MAX_CONCURRENT_RPCS": "70",
        "SECUREROUTE_GRPC_MAX_ANONYMOUS_STREAMS": "10",
        "SECUREROUTE_GRPC_MAX_CONNECTION_AGE_GRACE_S": "5",
    }
    service = ServiceSettings.load(
        [
            "--issuer",
            ISSUER,
            "--audiences",
            "a",
            "--max-concurrent-streams",
            "16",
            "--max-anonymous-rpcs",
            "30",
        ],
        environ=env,
    )
    assert service.grpc.max_concurrent_streams == 16 and service.grpc.max_anonymous_rpcs == 30  # flag
    assert (
        service.grpc.max_concurrent_rpcs == 70 and service.grpc.max_anonymous_streams == 10
    )  # env beats TOML
    assert service.grpc.max_connection_age_grace_s == 5.0
    assert service.grpc.max_connection_idle_s == 60.0 and service.drain_delay_s == 2.5  # TOML
    assert service.grpc.request_message_timeout_s == 3.0 and service.grpc.max_connection_age_s == 600.0
    assert (
        ServiceSettings.load(
            ["--issuer", ISSUER, "--audiences", "a", "--drain-delay-s", "0"], environ={}
        ).drain_delay_s
        == 0
    )
    facade = FacadeSettings.load([], environ={"SECUREROUTE_HTTP_KEEPALIVE_TIMEOUT_S": "30s"})
    assert facade.http.keepalive_timeout_s == 30.0
    config = tmp_path / "facade.toml"
    config.write_text("max_headers = 20\nheader_timeout_s = 4\n")
    env = {"SECUREROUTE_CONFIG": str(config), "SECUREROUTE_HTTP_MAX_HEADER_BYTES": "9000"}
    facade = FacadeSettings.load(["--max-connections", "10", "--header-timeout-s", "2"], environ=env)
    assert (facade.http.max_connections, facade.http.header_timeout_s) == (10, 2.0)  # flags
    assert (facade.http.max_header_bytes, facade.http.max_headers) == (9000, 20)  # env, TOML
    assert FacadeSettings.load([], environ={}).http.keepalive_timeout_s == 75.0
