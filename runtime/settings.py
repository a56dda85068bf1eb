"""Settings of our programs: pydantic models, read from flags, SECUREROUTE_* variables and a TOML file.

A program's settings are one ``ProgramSettings`` model composed of sub-models. A sub-model is
either mixed in (its fields are the program's: ``issuer``, ``workers``) or a field whose name is a
group (``grpc: GrpcServer``): the group is part of its settings' variables
(``SECUREROUTE_GRPC_LISTEN``) and, unless the program lists it in ``inline``, of their flags and
TOML keys (``--grpc-listen``). Each field is declared once, with its type, default, bounds and
description; the flags, the variables, the TOML keys, ``--help`` and the README table all come
from it (``settings_of``).

``load`` reads the sources with the precedence flag > variable > TOML file (``--config`` /
``SECUREROUTE_CONFIG``) > default, and turns any problem into one line naming the setting and
where its value came from: ``SettingsError("leeway_s: must be ... (from SECUREROUTE_LEEWAY_S)")``.

Usage:
    class DemoSettings(ProgramSettings):
        prog: ClassVar[str] = "demo"
        description: ClassVar[str] = "A demo."
        listen: Listen = Field(ListenAddress("::", 80), description="where to listen")

    settings = load(DemoSettings, sys.argv[1:])   # SettingsError; --help exits 0
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, NoReturn, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator
from pydantic import ValidationError as _ValidationError
from pydantic.fields import FieldInfo

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "EXIT_BAD_SETTINGS",
    "HARNESS_PREFIX",
    "KNOWN_VARIABLES_FILE",
    "WORKER_ENV",
    "Count",
    "Csv",
    "ExistingFile",
    "GrpcTarget",
    "Listen",
    "ListenAddress",
    "Lower",
    "Networks",
    "OldName",
    "OptionalListen",
    "PositiveSeconds",
    "ProgramSettings",
    "Repeatable",
    "Seconds",
    "Setting",
    "SettingsError",
    "SubSettings",
    "Text",
    "Upper",
    "exit_bad_settings",
    "known_variables",
    "load",
    "parse_listen",
    "settings_of",
    "show_default",
]

#: The conventional exit status for a usage error (argparse and BSD sysexits' EX_USAGE spirit).
EXIT_BAD_SETTINGS = 2
ENV_PREFIX = "SECUREROUTE_"
#: Environment variable naming the optional TOML settings file.
CONFIG_ENV = "SECUREROUTE_CONFIG"
#: What a supervisor tells its workers (runtime.workers): no setting, but ours.
WORKER_ENV = "SECUREROUTE_WORKER"
#: Variables the test and benchmark harness reads (SECUREROUTE_TEST_LOAD_CLIENTS): never a setting.
HARNESS_PREFIX = "SECUREROUTE_TEST_"
#: Every program's variables, one a line, beside this module (python -m tools.settings_doc --write).
KNOWN_VARIABLES_FILE = "known_variables.txt"

M = TypeVar("M", bound="ProgramSettings")


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
class OldName:
    """Field metadata: an earlier name that still works as flag, variable and TOML key."""

    name: str


@dataclass(frozen=True, slots=True)
class Repeatable:
    """Field metadata: the flag may be given several times (``--trusted-proxies A --trusted-proxies B``),
    each value adding to the list (a value may itself be comma-separated, as in the variable)."""

    #: What one value is, in ``--help`` and the README (``--trusted-proxies ADDRESS``).
    metavar: str


# Value types -------------------------------------------------------------------------------
# Validators raise ValueError with a short problem (no setting name): ``load`` adds the name.

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
    if isinstance(value, ListenAddress):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a host:port string")
    return ListenAddress(*_split_host_port(value))


def _parse_optional_listen(value: object) -> ListenAddress | None:
    """``host:port`` like ``parse_listen``, or ``off`` for "do not listen"."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "false", "no", "0"):
        return None
    return parse_listen(value)


def _parse_target(value: object) -> str:
    """A gRPC client target: ``host:port``, ``[ipv6]:port``, or a ``scheme:`` target (``dns:///h:p``)."""
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError("must be a gRPC target such as localhost:50051")
    text = value.strip()
    if re.match(r"^(dns|unix|unix-abstract|ipv4|ipv6|xds):", text):
        return text
    if _split_host_port(text)[1] == 0:
        raise ValueError(f"port 0 is not a reachable port: {text!r}")
    return text


def _split_csv(value: object) -> object:
    """Comma-separated text (flags, variables) or a TOML list, as a tuple of non-empty items."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, list | tuple) and all(isinstance(item, str) for item in items):
        return tuple(item.strip() for item in items if item.strip())
    return value


def _networks(values: tuple[str, ...]) -> tuple[str, ...]:
    """IP addresses or networks (``10.0.0.7``, ``10.0.0.0/8``, ``::1``), as written."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return values


def _seconds(value: object) -> object:
    """``"2.5s"`` is 2.5: a duration may carry its unit."""
    return value.strip().removesuffix("s") if isinstance(value, str) else value


def _existing_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path!r}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"not readable: {path!r}")
    return path


#: A count of things at once (calls, connections): at least one, and a million is a typo.
Count = Annotated[int, Field(ge=1, le=1_000_000)]
Text = Annotated[str, Field(min_length=1), BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]
Csv = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]
Networks = Annotated[Csv, AfterValidator(_networks)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(_seconds)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False), BeforeValidator(_seconds)]
ExistingFile = Annotated[Text, AfterValidator(_existing_file)]
Listen = Annotated[ListenAddress, PlainValidator(parse_listen)]
OptionalListen = Annotated[ListenAddress | None, PlainValidator(_parse_optional_listen)]
GrpcTarget = Annotated[str, PlainValidator(_parse_target)]
#: A word from a fixed list, whatever its case (``"json"``, ``"INFO"``).
Upper = BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v)
Lower = BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)


# Models ------------------------------------------------------------------------------------


class SubSettings(BaseModel):
    """A group of settings composed into programs (mixed in, or as a group field)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ProgramSettings(SubSettings):
    """A program's settings. Built directly (``Cls(issuer=...)``) it reads nothing but its arguments;
    ``load`` gathers the flags, variables and TOML keys and hands them to ``model_validate``."""

    #: The program's name in ``--help`` and in error lines.
    prog: ClassVar[str]
    description: ClassVar[str]
    #: Groups whose flags and TOML keys drop the group's name (the service's ``--listen``).
    inline: ClassVar[frozenset[str]] = frozenset()


# The settings table, derived from a model --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of a program, as operators see it."""

    #: Where the value lives in the model: ``("issuer",)`` or ``("grpc", "listen")``.
    path: tuple[str, ...]
    #: The TOML key, and (with dashes) the flag.
    name: str
    env: str
    info: FieldInfo
    old_name: str | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def repeatable(self) -> Repeatable | None:
        return next((m for m in self.info.metadata if isinstance(m, Repeatable)), None)

    @property
    def switch(self) -> bool:
        """Booleans are ``--name`` / ``--no-name`` switches."""
        return self.info.annotation is bool

    @property
    def required(self) -> bool:
        return self.info.is_required()

    @property
    def help(self) -> str:
        return self.info.description or ""

    def names(self) -> tuple[str, ...]:
        """The name, then the old one if any."""
        return (self.name,) if self.old_name is None else (self.name, self.old_name)

    def envs(self) -> tuple[str, ...]:
        return tuple(self.env.removesuffix(self.name.upper()) + n.upper() for n in self.names())


def _leaves(cls: type[BaseModel]) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    for name, info in cls.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from (((name, leaf), sub) for leaf, sub in info.annotation.model_fields.items())
        else:
            yield (name,), info


def settings_of(cls: type[ProgramSettings]) -> tuple[Setting, ...]:
    """Every setting of ``cls``: its groups' first (the listeners), then in field order."""
    rows = []
    for path, info in _leaves(cls):
        name = path[-1] if path[0] in cls.inline else "_".join(path)
        old = next((m.name for m in info.metadata if isinstance(m, OldName)), None)
        rows.append(Setting(path, name, (ENV_PREFIX + "_".join(path)).upper(), info, old))
    return tuple(sorted(rows, key=lambda row: len(row.path) == 1))


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


# Sources -----------------------------------------------------------------------------------
# Each source gives {setting: (value, where it came from)}; ``load`` merges them by precedence
# and hands the values to the model (pydantic validates; ``where`` names the source in errors).

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


def _cli(
    rows: Sequence[Setting], argv: Sequence[str], cls: type[ProgramSettings]
) -> tuple[_Found, str | None]:
    parser = _Parser(
        prog=cls.prog,
        # No prefix matching: "--aud" silently meaning "--audience" today breaks when a flag is added.
        allow_abbrev=False,
        description=cls.description,
        epilog="Precedence: flag > environment variable > --config TOML file (keys are the setting "
        "names with underscores) > default. Durations are seconds.",
    )
    parser.add_argument("--config", metavar="FILE", help=f"TOML file with settings (env {CONFIG_ENV})")
    for row in rows:
        default = "required" if row.required else f"default {show_default(row.info.default)}"
        text = f"{row.help} (env {row.env}; {default})".replace("%", "%%")  # argparse formats help
        flags = [f"--{n.replace('_', '-')}" for n in row.names()]
        if row.switch:
            parser.add_argument(*flags, dest=row.name, action=argparse.BooleanOptionalAction, help=text)
        elif row.repeatable is not None:
            parser.add_argument(
                *flags, dest=row.name, action="append", metavar=row.repeatable.metavar, help=text
            )
        else:
            parser.add_argument(*flags, dest=row.name, metavar=row.name.upper(), help=text)
    parser.known = ("--config", *(f"--{n.replace('_', '-')}" for row in rows for n in row.names()))
    args = vars(parser.parse_args(argv))
    found: _Found = {}
    for row in rows:
        if row.repeatable is not None and args[row.name] is not None:
            # Each flag adds its (comma-separated) values; the list replaces lower sources' value.
            args[row.name] = [part for value in args[row.name] for part in value.split(",")]
        if args[row.name] is not None:
            given = [f for f in (f"--{n.replace('_', '-')}" for n in row.names()) if _used(f, argv, row)]
            found[row] = (args[row.name], given[-1] if given else row.flag)
    return found, args["config"]


def _used(flag: str, argv: Sequence[str], row: Setting) -> bool:
    spellings = (flag, f"--no-{flag[2:]}") if row.switch else (flag,)
    return any(arg in spellings or arg.startswith(f"{flag}=") for arg in argv)


def known_variables() -> frozenset[str]:
    """Every ``SECUREROUTE_*`` variable some secureroute program reads (generated by tools.settings_doc:
    the split deployment's ConfigMap reaches both programs, so each accepts the other's)."""
    text = (Path(__file__).parent / KNOWN_VARIABLES_FILE).read_text(encoding="utf-8")
    return frozenset(line for line in text.split() if line.startswith(ENV_PREFIX))


def _env(rows: Sequence[Setting], environ: Mapping[str, str]) -> _Found:
    ours = {env for row in rows for env in row.envs()}
    known = ours | known_variables() | {CONFIG_ENV, WORKER_ENV}
    for variable in sorted(environ):
        # An operator's typo (or an old name) must not silently leave a default in force.
        if (
            variable.startswith(ENV_PREFIX)
            and not variable.startswith(HARNESS_PREFIX)
            and variable not in known
        ):
            raise SettingsError(f"environment: unknown variable {variable}{_closest(variable, ours)}")
    found: _Found = {}
    for row in rows:
        # An empty variable counts as unset, as shells and compose files often export "".
        name = next((env for env in row.envs() if environ.get(env, "") != ""), None)
        if name is not None:
            found[row] = (environ[name], name)
    return found


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
    by_name = {name: row for row in rows for name in row.names()}
    unknown = sorted(set(table) - set(by_name))
    if unknown:
        hint = _closest(unknown[0], by_name)
        raise SettingsError(f"config: unknown setting(s) in {path!r}: {', '.join(unknown)}{hint}")
    return {by_name[key]: (value, f"key {key} of {path}") for key, value in table.items()}


def load(cls: type[M], argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> M:
    """Read ``cls`` from flags, variables and the TOML file. Raises ``SettingsError``; ``--help`` exits 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    rows = settings_of(cls)
    cli, config_path = _cli(rows, argv, cls)
    env = _env(rows, environ)
    found = {**_toml(rows, config_path or environ.get(CONFIG_ENV)), **env, **cli}  # the last wins
    values: dict[str, Any] = {}
    for row, (value, _) in found.items():
        if len(row.path) == 1:
            values[row.path[0]] = value
        else:
            values.setdefault(row.path[0], {})[row.path[1]] = value
    try:
        return cls.model_validate(values)
    except _ValidationError as err:
        raise _one_line(cls, rows, found, err) from None


def _one_line(
    cls: type[ProgramSettings], rows: Sequence[Setting], found: _Found, err: _ValidationError
) -> SettingsError:
    """The first problem, as ``name: problem (from where)``."""
    first = err.errors(include_url=False)[0]
    path = tuple(str(part) for part in first["loc"])
    problem = first["msg"].removeprefix("Value error, ")
    row = next((r for r in rows if r.path == path[:2] or r.path == path[:1]), None)
    if row is None:
        # A check across settings (a model validator): its message starts with the setting's name,
        # which a group not inlined prefixes with its own.
        group = path[0] if path and path[0] not in cls.inline else ""
        return SettingsError(f"{group}_{problem}" if group else problem)
    if first["type"] == "missing":
        return SettingsError(f"{row.name}: required (set {row.flag} or {row.env})")
    where = found[row][1] if row in found else "the default"
    return SettingsError(f"{row.name}: {problem} (from {where})")


def exit_bad_settings(prog: str, error: Exception) -> NoReturn:
    """Print ``prog: error: name: problem`` as one line on stderr and exit with code 2."""
    message = " ".join(str(error).split())  # one line, whatever the message held
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_SETTINGS)
