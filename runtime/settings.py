"""Settings of our programs: pydantic models, read from flags, SECUREROUTE_* variables and a TOML file.

A program's ``ProgramSettings`` is composed of groups, mixed in (``issuer``, ``workers``) or as a field
(``grpc: GrpcServer``) whose name prefixes its variables (``SECUREROUTE_GRPC_LISTEN``) and, unless the
program lists it in ``inline``, its flags and TOML keys (``--grpc-listen``). ``Cls.load`` reads them
(flag > variable > TOML file named by ``--config`` / ``SECUREROUTE_CONFIG`` > default) and turns any
problem into one line: ``SettingsError("leeway_s: ... (from SECUREROUTE_LEEWAY_S)")``.

Usage:
    settings = ServiceSettings.load(sys.argv[1:])  # SettingsError; --help exits 0
    rows = settings_of(ServiceSettings)  # every flag, variable and TOML key: --help and the README
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn, Self, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic import ValidationError as _ValidationError
from pydantic.fields import FieldInfo

__all__ = [
    "CONFIG_ENV",
    "KNOWN_VARIABLES",
    "WORKER_ENV",
    "Count",
    "Csv",
    "ExistingFile",
    "Networks",
    "PositiveSeconds",
    "ProcessSettings",
    "ProgramSettings",
    "Seconds",
    "ServerTLSSettings",
    "Setting",
    "SettingsError",
    "SubSettings",
    "Text",
    "WorkerSettings",
    "check_pair",
    "known_variables",
    "settings_of",
    "show_default",
]

_PREFIX = "SECUREROUTE_"
#: The optional TOML settings file.
CONFIG_ENV = "SECUREROUTE_CONFIG"
#: What a supervisor tells its workers (runtime.workers): no setting, but ours.
WORKER_ENV = "SECUREROUTE_WORKER"
#: Variables the test and benchmark harness reads (SECUREROUTE_TEST_LOAD_CLIENTS): never a setting.
_HARNESS_PREFIX = "SECUREROUTE_TEST_"
#: Every program's variables, one a line (python -m tools.settings_doc --write).
KNOWN_VARIABLES = Path(__file__).with_name("known_variables.txt")


class SettingsError(ValueError):
    """A setting is missing or invalid. ``str(err)`` is ``"name: problem"``, one line."""


# Value types: validators raise ValueError with a short problem; ``load`` adds the setting's name.


def _split_csv(value: object) -> object:
    """Comma-separated text (flags, variables) or a TOML list, as a tuple of non-empty items."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, list | tuple) and all(isinstance(item, str) for item in items):
        return tuple(item.strip() for item in items if item.strip())
    return value


def _networks(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return values


def _existing_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path!r}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"not readable: {path!r}")
    return path


_Unit = BeforeValidator(lambda v: v.strip().removesuffix("s") if isinstance(v, str) else v)  # "2.5s"
#: A count of things at once (calls, connections): at least one, and a million is a typo.
Count = Annotated[int, Field(ge=1, le=1_000_000)]
Text = Annotated[str, Field(min_length=1), BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]
Csv = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]  # a list's flag may also be repeated
Networks = Annotated[Csv, AfterValidator(_networks)]  # 10.0.0.7, 10.0.0.0/8, ::1, as written
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False), _Unit]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False), _Unit]
ExistingFile = Annotated[Text, AfterValidator(_existing_file)]
_Upper = BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v)  # "info" is INFO
_Lower = BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)


class SubSettings(BaseModel):
    """A group of settings composed into programs (mixed in, or as a group field). A field's description
    is the string under it (its line breaks are spaces)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ProgramSettings(SubSettings):
    """A program's settings. ``Cls(issuer=...)`` reads nothing but its arguments; ``Cls.load`` reads
    the flags, variables and TOML keys."""

    prog: ClassVar[str]  # the program's name in --help and in error lines
    description: ClassVar[str]
    #: Groups whose flags and TOML keys drop the group's name (the service's ``--listen``).
    inline: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def load(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Self:
        """Read flags, variables and the TOML file. Raises ``SettingsError``; ``--help`` exits 0."""
        environ = os.environ if environ is None else environ
        rows = settings_of(cls)
        flags, config_path = _flags(cls, rows, sys.argv[1:] if argv is None else argv)
        found = {**_toml(rows, config_path or environ.get(CONFIG_ENV)), **_env(rows, environ), **flags}
        values: dict[str, Any] = {}
        for row, (value, _) in found.items():  # the flag wins, then the variable, then the TOML key
            group = values if len(row.path) == 1 else values.setdefault(row.path[0], {})
            group[row.path[-1]] = value
        try:
            return cls.model_validate(values)
        except _ValidationError as err:
            raise _one_line(cls, rows, found, err) from None


# Groups both programs share ----------------------------------------------------------------


class WorkerSettings(SubSettings):
    """Processes sharing one port: the split programs' (the one program runs as one process)."""

    # One process: in Kubernetes, scale with replicas; on a VM, set about one per core.
    workers: int = Field(1, ge=1, le=64)  # more on one host is a mistake: scale with hosts or pods
    """processes sharing the port (SO_REUSEPORT), each with its own key-set cache; crashed workers are
    restarted"""


class ProcessSettings(SubSettings):
    """What every program has: shutdown grace, logging, the event loop."""

    # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
    grace_period_s: Seconds = 10.0
    """on SIGTERM/SIGINT, how long in-flight RPCs may still run, seconds"""
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], _Upper] = "INFO"
    """DEBUG, INFO, WARNING or ERROR"""
    # JSON lines for log collectors, text for people: auto tells them apart by the terminal.
    log_format: Annotated[Literal["auto", "json", "text"], _Lower] = "auto"
    """auto (JSON lines unless stderr is a terminal), json or text"""
    # uvloop: measured faster for both transports (docs/benchmarks.md); asyncio to rule it out.
    event_loop: Annotated[Literal["uvloop", "asyncio"], _Lower] = "uvloop"
    """the event loop serving the program: uvloop (libuv) or asyncio's own"""


class ServerTLSSettings(SubSettings):
    """A listener's certificate and key: TLS when both are set, plaintext when neither is."""

    tls_cert: ExistingFile | None = None
    """PEM certificate chain; with tls_key, serve TLS instead of plaintext"""
    tls_key: ExistingFile | None = None
    """PEM private key of tls_cert"""

    @model_validator(mode="after")
    def _check_pair(self) -> Self:
        check_pair(self, "tls_cert", "tls_key")
        return self


def check_pair(settings: object, first: str, second: str) -> None:
    """Raise ``ValueError`` when exactly one of two settings that go in pairs is set."""
    one, other = getattr(settings, first), getattr(settings, second)
    if (one is None) != (other is None):
        missing, given = (second, first) if other is None else (first, second)
        raise ValueError(f"{missing}: required when {given} is set")


# The settings table, derived from a model --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of a program, as operators see it."""

    path: tuple[str, ...]  # where the value lives: ("issuer",) or ("grpc", "listen")
    name: str  # the TOML key, and (with dashes) the flag
    env: str
    info: FieldInfo

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def switch(self) -> bool:
        """Booleans are ``--name`` / ``--no-name`` switches."""
        return self.info.annotation is bool

    @property
    def repeatable(self) -> bool:
        """A list's flag may be given again: each adds its (comma-separated) values."""
        return get_origin(self.info.annotation) is tuple

    @property
    def help(self) -> str:
        text = " ".join((self.info.description or "").split())
        if self.repeatable:
            text = f"{text.rstrip('.')}. A list: comma-separated, or the flag repeated."
        return text


def settings_of(cls: type[ProgramSettings]) -> tuple[Setting, ...]:
    """Every setting of ``cls``: its groups' first (the listeners), then in field order."""
    rows = []
    for name, info in cls.model_fields.items():
        group = info.annotation if isinstance(info.annotation, type) else None
        if group is not None and issubclass(group, BaseModel):
            rows += [_row(cls, (name, leaf), sub) for leaf, sub in group.model_fields.items()]
        else:
            rows.append(_row(cls, (name,), info))
    return tuple(sorted(rows, key=lambda row: len(row.path) == 1))


def _row(cls: type[ProgramSettings], path: tuple[str, ...], info: FieldInfo) -> Setting:
    name = path[-1] if path[0] in cls.inline else "_".join(path)
    return Setting(path, name, (_PREFIX + "_".join(path)).upper(), info)


def show_default(value: object) -> str:
    """A default as people write it: lists comma-separated, None as "(none)", booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(none)"
    return "(none)" if value is None else str(value)


# Sources: each gives {setting: (value, where it came from)}; ``load`` merges them by precedence.

_Found = dict[Setting, tuple[object, str]]


def _closest(name: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the known name closest to ``name``, or nothing."""
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    known: tuple[str, ...] = ()

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            flag = message.removeprefix("unrecognized arguments: ").split()[0].split("=")[0]
            raise SettingsError(f"arguments: unknown flag {flag}{_closest(flag, self.known)}")
        raise SettingsError(f"arguments: {message}")


def _flags(
    cls: type[ProgramSettings], rows: Sequence[Setting], argv: Sequence[str]
) -> tuple[_Found, str | None]:
    parser = _Parser(
        prog=cls.prog,
        # No prefix matching: "--aud" silently meaning "--audiences" today breaks when a flag is added.
        allow_abbrev=False,
        description=cls.description,
        epilog="Precedence: flag > environment variable > --config TOML file (keys are the setting "
        "names with underscores) > default. Durations are seconds. A list's flag may be repeated.",
    )
    parser.add_argument("--config", metavar="FILE", help=f"TOML file with settings (env {CONFIG_ENV})")
    for row in rows:
        default = "required" if row.info.is_required() else f"default {show_default(row.info.default)}"
        text = f"{row.help} (env {row.env}; {default})".replace("%", "%%")  # argparse formats help
        if row.switch:
            parser.add_argument(row.flag, dest=row.name, action=argparse.BooleanOptionalAction, help=text)
        else:
            action = "append" if row.repeatable else "store"
            parser.add_argument(row.flag, dest=row.name, action=action, metavar=row.name.upper(), help=text)
    parser.known = ("--config", *(row.flag for row in rows))
    args = vars(parser.parse_args(argv))
    found: _Found = {}
    for row in (row for row in rows if args[row.name] is not None):
        value = args[row.name]
        if row.repeatable:  # every flag adds its values; together they replace a lower source's list
            value = [part for item in value for part in item.split(",")]
        found[row] = (value, row.flag)
    return found, args["config"]


def known_variables() -> frozenset[str]:
    """Every ``SECUREROUTE_*`` variable some secureroute program reads (generated by tools.settings_doc:
    the split deployment's ConfigMap reaches both programs, so each accepts the other's)."""
    text = KNOWN_VARIABLES.read_text(encoding="utf-8")
    return frozenset(line for line in text.split() if line.startswith(_PREFIX))


def _env(rows: Sequence[Setting], environ: Mapping[str, str]) -> _Found:
    ours = {row.env: row for row in rows}
    known = ours.keys() | known_variables() | {CONFIG_ENV, WORKER_ENV}
    for variable in sorted(environ):
        # An operator's typo (or an old name) must not silently leave a default in force.
        if (
            variable.startswith(_PREFIX)
            and not variable.startswith(_HARNESS_PREFIX)
            and variable not in known
        ):
            raise SettingsError(f"environment: unknown variable {variable}{_closest(variable, ours)}")
    # An empty variable counts as unset, as shells and compose files often export "".
    return {row: (environ[env], env) for env, row in ours.items() if environ.get(env, "") != ""}


def _toml(rows: Sequence[Setting], path: str | None) -> _Found:
    if not path:
        return {}
    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except OSError as err:
        raise SettingsError(f"config: cannot read {path!r}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"config: {path!r} is not valid TOML: {err}") from None
    by_name = {row.name: row for row in rows}
    unknown = sorted(set(table) - set(by_name))
    if unknown:
        hint = _closest(unknown[0], by_name)
        raise SettingsError(f"config: unknown setting(s) in {path!r}: {', '.join(unknown)}{hint}")
    return {by_name[key]: (value, f"key {key} of {path}") for key, value in table.items()}


def _one_line(
    cls: type[ProgramSettings], rows: Sequence[Setting], found: _Found, err: _ValidationError
) -> SettingsError:
    """The first problem, as ``name: problem (from where)``."""
    first = err.errors(include_url=False)[0]
    path = tuple(str(part) for part in first["loc"])
    problem = first["msg"].removeprefix("Value error, ")
    row = next((r for r in rows if r.path in (path[:2], path[:1])), None)
    if row is None:
        # A check across settings (a model validator) names its setting first; a group not inlined
        # prefixes it with its own name.
        group = path[0] if path and path[0] not in cls.inline else ""
        return SettingsError(f"{group}_{problem}" if group else problem)
    if first["type"] == "missing":
        return SettingsError(f"{row.name}: required (set {row.flag} or {row.env})")
    where = found[row][1] if row in found else "the default"
    return SettingsError(f"{row.name}: {problem} (from {where})")
