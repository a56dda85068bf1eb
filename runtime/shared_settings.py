"""Settings groups both programs share: the process (grace, logs), workers and a TLS listener.

Usage:
    class Settings(ProcessSettings, ProgramSettings): ...
    class HttpServer(ServerTLSSettings): listen: Listen = ...
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from runtime.settings import ExistingFile, Lower, Seconds, SubSettings, Upper

__all__ = ["MAX_WORKERS", "ProcessSettings", "ServerTLSSettings", "WorkerSettings", "check_pair"]

#: More processes than this on one host is a configuration mistake (scale with more hosts/pods).
MAX_WORKERS = 64


class WorkerSettings(SubSettings):
    """Processes sharing one port: the split programs' (the one program runs as one process)."""

    workers: int = Field(
        # One process: in Kubernetes, scale with replicas; on a VM, set about one per core.
        1,
        ge=1,
        le=MAX_WORKERS,
        description="processes sharing the port (SO_REUSEPORT), each with its own key-set cache; "
        "crashed workers are restarted",
    )


class ProcessSettings(SubSettings):
    """What every program has: shutdown grace, logging, the event loop."""

    grace_period_s: Seconds = Field(
        # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
        10.0,
        description="on SIGTERM/SIGINT, how long in-flight RPCs may still run, seconds",
    )
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], Upper] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    # JSON lines for log collectors, text for people: auto tells them apart by the terminal.
    log_format: Annotated[Literal["auto", "json", "text"], Lower] = Field(
        "auto", description="auto (JSON lines unless stderr is a terminal), json or text"
    )
    # uvloop: measured faster for both transports (docs/benchmarks.md); asyncio to rule it out.
    event_loop: Annotated[Literal["uvloop", "asyncio"], Lower] = Field(
        "uvloop", description="the event loop serving the program: uvloop (libuv) or asyncio's own"
    )


class ServerTLSSettings(SubSettings):
    """A listener's certificate and key: TLS when both are set, plaintext when neither is."""

    tls_cert: ExistingFile | None = Field(
        None, description="PEM certificate chain; with tls_key, serve TLS instead of plaintext"
    )
    tls_key: ExistingFile | None = Field(None, description="PEM private key of tls_cert")

    @model_validator(mode="after")
    def _check_pair(self) -> Self:
        check_pair(self, "tls_cert", "tls_key")
        return self


def check_pair(settings: object, first: str, second: str) -> None:
    """Raise ``ValueError`` when exactly one of two settings that go in pairs is set."""
    one, other = getattr(settings, first), getattr(settings, second)
    if (one is None) != (other is None):
        missing = second if other is None else first
        given = first if other is None else second
        raise ValueError(f"{missing}: required when {given} is set")
