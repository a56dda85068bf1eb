"""Settings rows both programs share: logging, workers, shutdown grace, TLS listeners.

Each program's table is built from these rows plus its own, so a knob means the same thing
(and is spelled the same way) in the service and the facade.

Usage:
    TABLE = (Setting("listen", ...), *process_rows(grace_default=10.0, grace_help="..."),
             *server_tls_rows("SECUREROUTE_GRPC_", client_ca=True))
"""

from __future__ import annotations

from secureroute.logs import LOG_FORMATS
from secureroute.settings import (
    Setting,
    SettingsError,
    parse_choice,
    parse_duration,
    parse_existing_file,
    parse_int_between,
    parse_log_level,
)

__all__ = ["MAX_WORKERS", "check_together", "process_rows", "server_tls_rows"]

#: More processes than this on one host is a configuration mistake (scale with more hosts/pods).
MAX_WORKERS = 64


def process_rows(*, grace_default: float, grace_help: str) -> tuple[Setting, ...]:
    """workers, grace_period, log_level, log_format."""
    return (
        Setting(
            "workers",
            "SECUREROUTE_WORKERS",
            parse_int_between(1, MAX_WORKERS),
            # One process: in Kubernetes, scale with replicas; on a VM, set about one per core.
            1,
            "processes sharing the port (SO_REUSEPORT), each with its own key-set cache; "
            "crashed workers are restarted",
        ),
        Setting("grace_period", "SECUREROUTE_GRACE_PERIOD", parse_duration, grace_default, grace_help),
        Setting(
            "log_level", "SECUREROUTE_LOG_LEVEL", parse_log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"
        ),
        Setting(
            "log_format",
            "SECUREROUTE_LOG_FORMAT",
            parse_choice(*LOG_FORMATS),
            # JSON lines for log collectors, text for people: auto tells them apart by the terminal.
            "auto",
            "auto (JSON lines unless stderr is a terminal), json or text",
        ),
    )


def server_tls_rows(env_prefix: str, *, client_ca: bool) -> tuple[Setting, ...]:
    """tls_cert, tls_key[, tls_client_ca]: a TLS listener (plaintext when unset)."""
    rows = (
        Setting(
            "tls_cert",
            f"{env_prefix}TLS_CERT",
            parse_existing_file,
            None,
            "PEM certificate chain; with tls_key, serve TLS instead of plaintext",
        ),
        Setting("tls_key", f"{env_prefix}TLS_KEY", parse_existing_file, None, "PEM private key of tls_cert"),
    )
    if not client_ca:
        return rows
    return (
        *rows,
        Setting(
            "tls_client_ca",
            f"{env_prefix}TLS_CLIENT_CA",
            parse_existing_file,
            None,
            "PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)",
        ),
    )


def check_together(settings: object, first: str, second: str) -> None:
    """Raise ``SettingsError`` when exactly one of two settings that go in pairs is set."""
    one, other = getattr(settings, first), getattr(settings, second)
    if (one is None) != (other is None):
        missing = second if other is None else first
        given = first if other is None else second
        raise SettingsError(f"{missing}: required when {given} is set")
