"""Tracing's set-up: off by default (nothing added, no OpenTelemetry module imported), on from the
standard OTEL_* variables, and values it cannot use refused at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from runtime.settings import SettingsError
from runtime.tracing import configure_tracing, tracing_enabled

ROOT = Path(__file__).resolve().parents[2]


def _without_otel(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SECUREROUTE_"))}
    env.update(extra)
    return env


def _python(code: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_off_by_default_nothing_is_added_and_no_opentelemetry_module_is_imported() -> None:
    done = _python(
        """
        import sys
        from http_facade.app import create_app
        from http_facade.settings import FacadeSettings
        from http_facade.request_spans import channel_interceptors
        from runtime.tracing import configure_tracing
        from service.rpc_spans import server_interceptors
        from service.server import build_server
        from service.settings import ServiceSettings

        assert configure_tracing("test") is False
        app = build_server(ServiceSettings.load(
            ["--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1:9/", "--audiences", "a"], environ={}
        ))
        facade = create_app(FacadeSettings.load(["--backend", "127.0.0.1:9"], environ={}))
        assert app.authenticator.observer is app.metrics, "the observer is wrapped"
        assert [m.__name__ for m in facade.middlewares if "trace" in m.__name__] == []
        assert channel_interceptors() is None and server_interceptors() == []
        print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
        """,
        _without_otel(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_console_exporter_prints_a_span_with_the_programs_service_name() -> None:
    done = _python(
        """
        from runtime.tracing import configure_tracing, shutdown_tracing
        from service.guard_spans import traced_observer

        class Quiet:
            def on_outcome(self, reason):
                pass

        assert configure_tracing("secureroute-test") is True
        with traced_observer(Quiet()).key_fetch("https://idp.example/", "jwks", "https://idp.example/jwks"):
            pass
        shutdown_tracing()
        """,
        _without_otel(OTEL_TRACES_EXPORTER="console"),
    )
    assert done.returncode == 0, done.stderr
    span = json.loads(done.stdout)
    assert span["name"] == "jwt_authn jwks"
    assert span["kind"] == "SpanKind.CLIENT"
    assert span["attributes"]["url.full"] == "https://idp.example/jwks"
    assert span["resource"]["attributes"]["service.name"] == "secureroute-test"


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "x"},  # names, but asks for no exporter
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_these_variables_leave_tracing_off(environ: dict[str, str]) -> None:
    assert configure_tracing("test", environ) is False
    assert not tracing_enabled()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "console",
                "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ".*",
            },
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
        ),
    ],
)
def test_a_value_it_cannot_use_is_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=f"^{named}: "):
        configure_tracing("test", environ)
    assert not tracing_enabled()


def test_the_program_exits_2_naming_a_bad_otel_variable(
    run_main: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    done = run_main(
        "service",
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        "http://127.0.0.1:9/",
        "--audiences",
        "a",
        env={"OTEL_TRACES_EXPORTER": "zipkin"},
    )
    assert done.returncode == 2
    assert "OTEL_TRACES_EXPORTER" in done.stderr
