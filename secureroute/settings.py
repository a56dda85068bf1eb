"""Settings for our programs: one declarative table, read from flags, env vars and a TOML file.

Each program declares a frozen dataclass and a table of ``Setting`` rows whose names are the
dataclass fields. ``load_settings`` resolves every row with the precedence
flag > environment variable > TOML file (``--config`` / ``SECUREROUTE_CONFIG``) > default,
parses it with the row's parser, and returns the dataclass. Any bad value raises
``SettingsError("name: problem")``; the program prints that one line and exits with code 2.

Usage:
    @dataclass(frozen=True, kw_only=True)
    class Settings:
        listen: ListenAddress

    TABLE = (Setting("listen", "DEMO_LISTEN", parse_listen, ListenAddress("::", 80), "where to listen"),)
    settings = load_settings(Settings, TABLE, prog="demo", description="A demo.", argv=sys.argv[1:])
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "CONFIG_ENV",
    "EXIT_BAD_SETTINGS",
    "LOG_LEVELS",
    "ListenAddress",
    "Setting",
    "SettingsError",
    "exit_bad_settings",
    "load_settings",
    "parse_bool",
    "parse_choice",
    "parse_csv",
    "parse_duration",
    "parse_duration_at_most",
    "parse_existing_file",
    "parse_int_between",
    "parse_listen",
    "parse_log_level",
    "parse_optional_listen",
    "parse_optional_str",
    "parse_positive_duration",
    "parse_str",
    "parse_target",
    "parse_url",
    "show_default",
]

#: The conventional exit status for a usage error (argparse and BSD sysexits' EX_USAGE spirit).
EXIT_BAD_SETTINGS = 2
#: Environment variable naming the optional TOML settings file.
CONFIG_ENV = "SECUREROUTE_CONFIG"
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or invalid. ``str(err)`` is ``"name: problem"``, one line."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A host and port to listen on. ``host`` is bare (no brackets), as sockets want it."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of a program's settings table.

    ``name`` is the dataclass field, the TOML key, and (with dashes) the ``--flag``.
    ``default`` is already parsed; ``None`` with ``required=True`` means "must be given".
    """

    name: str
    env: str
    parse: Callable[[object], Any]
    default: Any
    help: str
    required: bool = False
    #: Boolean settings become ``--name`` / ``--no-name`` switches instead of taking a value.
    switch: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


# Parsers ----------------------------------------------------------------------------------
# Each takes a raw value (a string from a flag or env var, or a native TOML value) and returns
# the typed value, raising ValueError with a short problem description (no setting name).


def parse_str(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def parse_csv(value: object) -> tuple[str, ...]:
    """Comma-separated text, or a TOML list of strings."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise ValueError("must be a comma-separated string or a list of strings")
    return tuple(item for item in items if item)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be true or false, not {value!r}")


def parse_duration(value: object) -> float:
    """Seconds, as a number or text (``"2.5"`` or ``"2.5s"``); never negative."""
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds")
    if isinstance(value, str):
        text = value.strip().removesuffix("s")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"not a number of seconds: {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a finite number of seconds")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return float(value)


def parse_positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


def parse_duration_at_most(limit_s: float) -> Callable[[object], float]:
    """A parser like ``parse_duration`` that also refuses more than ``limit_s`` seconds."""

    def parse(value: object) -> float:
        seconds = parse_duration(value)
        if seconds > limit_s:
            raise ValueError(f"must be at most {limit_s:g} seconds, got {seconds:g}")
        return seconds

    return parse


_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?"
)


def _split_host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"not a host:port address: {text!r}")
        try:
            ipaddress.IPv6Address(host)  # brackets are only for IPv6 literals
        except ValueError:
            raise ValueError(f"not an IPv6 address in brackets: {text!r}") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"not a host:port address (bracket IPv6 hosts, e.g. [::]:50051): {text!r}")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not _HOSTNAME.fullmatch(host):
                raise ValueError(f"not a valid host name: {host!r}") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535: {text!r}")
    return host, int(port_text)


def parse_listen(value: object) -> ListenAddress:
    """``host:port`` or ``[ipv6]:port``; port 0 picks a free port."""
    if not isinstance(value, str):
        raise ValueError("must be a host:port string")
    host, port = _split_host_port(value)
    return ListenAddress(host, port)


def parse_target(value: object) -> str:
    """A gRPC client target: ``host:port``, ``[ipv6]:port``, or a ``scheme:`` target (``dns:///h:p``)."""
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError("must be a gRPC target such as localhost:50051")
    text = value.strip()
    if re.match(r"^(dns|unix|unix-abstract|ipv4|ipv6|xds):", text):
        return text
    _, port = _split_host_port(text)
    if port == 0:
        raise ValueError(f"port 0 is not a reachable port: {text!r}")
    return text


def parse_log_level(value: object) -> str:
    if not isinstance(value, str) or value.strip().upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return value.strip().upper()


def parse_optional_str(value: object) -> str:
    """Any string, the empty string included (TOML ``realm = ""``)."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def parse_choice(*choices: str) -> Callable[[object], str]:
    """A parser accepting one of ``choices`` (case-insensitive), returned in lower case."""

    def parse(value: object) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value.strip().lower()

    return parse


def parse_int_between(low: int, high: int) -> Callable[[object], int]:
    """A parser accepting a whole number from ``low`` to ``high``."""

    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def parse_url(value: object) -> str:
    """An absolute ``https://`` or ``http://`` URL with a host (jwt_authn decides where http is allowed)."""
    text = parse_str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in text):
        raise ValueError(f"not an http(s) URL: {text!r}")
    return text


def parse_existing_file(value: object) -> str:
    """The path of a readable regular file (certificates, keys, a JWKS)."""
    path = parse_str(value)
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path!r}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"not readable: {path!r}")
    return path


_OFF = frozenset({"off", "none", "false", "no", "0"})


def parse_optional_listen(value: object) -> ListenAddress | None:
    """``host:port`` like ``parse_listen``, or ``off`` for "do not listen"."""
    if isinstance(value, bool) and not value:
        return None
    if isinstance(value, str) and value.strip().lower() in _OFF:
        return None
    return parse_listen(value)


# Loading ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> NoReturn:
        raise SettingsError(f"arguments: {message}")


def _build_parser(table: Sequence[Setting], prog: str, description: str) -> _Parser:
    parser = _Parser(
        prog=prog,
        # No prefix matching: "--aud" silently meaning "--audience" today breaks when a flag is added.
        allow_abbrev=False,
        description=description,
        epilog="Precedence: flag > environment variable > --config TOML file (keys are the setting "
        "names with underscores) > default. Durations are seconds.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML file with settings (env {CONFIG_ENV})",
    )
    for row in table:
        default = "" if row.required else f"; default {show_default(row.default)}"
        text = f"{row.help} (env {row.env}{default})"
        if row.switch:
            parser.add_argument(row.flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(row.flag, metavar=row.name.upper(), default=None, help=text)
    return parser


def show_default(value: object) -> str:
    """A default as people write it: lists comma-separated, None as "(none)", booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(none)"
    if value is None:
        return "(none)"
    return str(value)


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as err:
        raise SettingsError(f"config: cannot read {path!r}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"config: {path!r} is not valid TOML: {err}") from None


def load_settings(
    cls: type[T],
    table: Sequence[Setting],
    *,
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Resolve every row of ``table`` and build ``cls``. Raises ``SettingsError``; ``--help`` exits 0."""
    if not is_dataclass(cls) or {f.name for f in fields(cls)} != {row.name for row in table}:
        raise TypeError(f"{cls.__name__} fields must match its settings table")  # a programming error
    environ = os.environ if environ is None else environ
    args = vars(_build_parser(table, prog, description).parse_args(sys.argv[1:] if argv is None else argv))

    config_path = args.pop("config") or environ.get(CONFIG_ENV) or None
    from_file = _read_toml(config_path) if config_path else {}
    unknown = sorted(set(from_file) - {row.name for row in table})
    if unknown:
        raise SettingsError(f"config: unknown setting(s) in {config_path!r}: {', '.join(unknown)}")

    values: dict[str, Any] = {}
    for row in table:
        raw: object
        if args[row.name] is not None:
            raw, source = args[row.name], row.flag
        elif environ.get(row.env, "") != "":
            # An empty env var counts as unset, as shells and compose files often export "".
            raw, source = environ[row.env], row.env
        elif row.name in from_file:
            raw, source = from_file[row.name], str(config_path)
        elif row.required:
            raise SettingsError(f"{row.name}: required (set {row.flag} or {row.env})")
        else:
            values[row.name] = row.default
            continue
        try:
            values[row.name] = row.parse(raw)
        except ValueError as err:
            raise SettingsError(f"{row.name}: {err} (from {source})") from None
    try:
        return cls(**values)
    except SettingsError:
        raise
    except ValueError as err:  # a check across settings, in the dataclass's __post_init__
        raise SettingsError(str(err)) from None


def exit_bad_settings(prog: str, error: Exception) -> NoReturn:
    """Print ``prog: error: name: problem`` as one line on stderr and exit with code 2."""
    message = " ".join(str(error).split())  # one line, whatever the message held
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_SETTINGS)
