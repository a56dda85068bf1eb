"""The HTTP facade's settings: one table, one frozen dataclass, shared machinery in secureroute.settings.

Usage:
    settings = load_facade_settings(["--listen", "127.0.0.1:3000", "--backend", "localhost:50051"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from secureroute.settings import (
    ListenAddress,
    Setting,
    load_settings,
    parse_listen,
    parse_log_level,
    parse_positive_duration,
    parse_target,
)

__all__ = ["FACADE_SETTINGS", "PROG", "FacadeSettings", "load_facade_settings"]

PROG = "secureroute-facade"


@dataclass(frozen=True, kw_only=True, slots=True)
class FacadeSettings:
    """Everything ``python -m http_facade`` can be told. Field names are the setting names."""

    listen: ListenAddress
    backend: str
    backend_timeout: float
    log_level: str


FACADE_SETTINGS: tuple[Setting, ...] = (
    # The port the original Node.js facade served on.
    Setting(
        "listen",
        "SECUREROUTE_HTTP_LISTEN",
        parse_listen,
        # All interfaces, as the facade is the public front door (and runs in a container).
        ListenAddress("0.0.0.0", 3000),  # noqa: S104
        "HTTP address, host:port",
    ),
    # Where `python -m service` listens by default.
    Setting("backend", "SECUREROUTE_BACKEND", parse_target, "localhost:50051", "gRPC target of the service"),
    Setting(
        "backend_timeout",
        "SECUREROUTE_BACKEND_TIMEOUT",
        parse_positive_duration,
        # Long enough for a cold key-set fetch (jwt_authn's fetch timeout is 5 s), short enough for a user.
        5.0,
        "deadline of each backend call, seconds; a slower backend answers 504",
    ),
    Setting("log_level", "SECUREROUTE_LOG_LEVEL", parse_log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"),
)


def load_facade_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> FacadeSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load_settings(
        FacadeSettings,
        FACADE_SETTINGS,
        prog=PROG,
        description="The secureroute HTTP facade: GET /health and GET /secure-route, backed by gRPC.",
        argv=argv,
        environ=environ,
    )
