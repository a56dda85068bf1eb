"""Every setting of the three programs (the one program, service, facade) works from each source:
a flag, an environment variable, a TOML key.

The settings come from the models (``settings_of``), so a new setting is tested here without a
new line; only a value for it may be needed in ``_SAMPLES`` (the test says so when it is).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from http_facade.settings import FacadeSettings
from runtime.settings import ProgramSettings, Setting, SettingsError, known_variables, settings_of
from secureroute.settings import SecureRouteSettings
from service.settings import ServiceSettings

ISSUER = "https://idp.example.com/"
PROGRAMS: tuple[type[ProgramSettings], ...] = (SecureRouteSettings, ServiceSettings, FacadeSettings)
CASES = [
    pytest.param(cls, row, source, id=f"{cls.prog}-{row.name}-{source}")
    for cls in PROGRAMS
    for row in settings_of(cls)
    for source in ("flag", "env", "toml")
]
#: Values that differ from the default, by setting name; files are made in the test's directory.
_SAMPLES = {
    "issuer": "https://other.example.com/",
    "audiences": "a,b",
    "algorithms": "ES256,EdDSA",
    "jwks_uri": "https://keys.example.com/jwks",
    "roles_claim": "realm_access.roles",
    "realm": "api",
    "listen": "127.0.0.1:1234",
    "metrics_listen": "127.0.0.1:19464",
    "listen_unix": "/run/secureroute/grpc.sock",
    "log_level": "DEBUG",
    "log_format": "text",
    "event_loop": "asyncio",
    "backend": "dns:///svc:50051",
    "backend_server_name": "svc.example.com",
    "trusted_proxies": "127.0.0.7,127.1.0.0/16",
    "dpop_public_base_urls": "https://api.example.com",
    "dpop_public_base_url": "https://api.example.com",
    "dpop_replay_redis_url": "redis://127.0.0.1:6379/0",
}
_FILES = {"jwks_file", "tls_cert", "tls_key", "tls_client_ca", "backend_ca", "backend_client_cert"}
_FILES |= {"backend_client_key"}
#: Settings that only make sense with others (given as flags).
_COMPANIONS = {
    "tls_cert": ("tls_key",),
    "tls_key": ("tls_cert",),
    "tls_client_ca": ("tls_cert", "tls_key"),
    "backend_ca": ("backend_tls",),
    "backend_server_name": ("backend_tls",),
    "backend_client_cert": ("backend_client_key", "backend_tls"),
    "backend_client_key": ("backend_client_cert", "backend_tls"),
}


def _leaf(row: Setting) -> str:
    """The setting's name inside its group (``grpc_tls_cert`` is the one program's ``tls_cert``)."""
    return row.path[-1]


def _sample(row: Setting, tmp_path: Path) -> str:
    if _leaf(row) in _FILES:
        path = tmp_path / f"{row.name}.pem"
        path.write_text("x")
        return str(path)
    if _leaf(row) in _SAMPLES:
        return _SAMPLES[_leaf(row)]
    default = row.info.default
    if isinstance(default, bool):
        return str(not default).lower()
    if isinstance(default, int | float):
        upper = next((m.le for m in row.info.metadata if getattr(m, "le", None) is not None), None)
        return str(default - 1 if upper is not None and default + 1 > upper else default + 1)
    raise AssertionError(f"add a sample value for {row.name} to _SAMPLES")


def _toml_value(row: Setting, text: str) -> str:
    """The sample as TOML writes it natively: booleans, numbers and lists unquoted."""
    if row.switch or text.replace(".", "", 1).isdigit():
        return text
    if typing.get_origin(row.info.annotation) is tuple:
        return json.dumps(text.split(","))
    return json.dumps(text)


def _value(settings: BaseModel, row: Setting) -> object:
    value: object = settings
    for part in row.path:
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("cls", "row", "source"), CASES)
def test_each_setting_works_from_each_source(
    cls: type[ProgramSettings], row: Setting, source: str, tmp_path: Path
) -> None:
    rows = {r.name: r for r in settings_of(cls)}
    text = _sample(row, tmp_path)
    argv: list[str] = []
    group = row.name.removesuffix(_leaf(row))  # "grpc_" in the one program, else ""
    for name in _COMPANIONS.get(_leaf(row), ()):
        companion = rows[group + name]
        argv += [companion.flag] if companion.switch else [companion.flag, _sample(companion, tmp_path)]
    if "issuer" in rows and row.name != "issuer":
        argv += ["--issuer", ISSUER]
    flag = [f"--{'' if text == 'true' else 'no-'}{row.flag[2:]}"] if row.switch else [row.flag, text]
    environ: dict[str, str] = {}
    if source == "env":
        environ[row.env] = text
    elif source == "toml":
        config = tmp_path / "settings.toml"
        config.write_text(f"{row.name} = {_toml_value(row, text)}\n")
        environ["SECUREROUTE_CONFIG"] = str(config)
    loaded = _value(cls.load([*argv, *flag] if source == "flag" else argv, environ), row)
    # The same value whichever source gave it, and not the default (so the source was read).
    assert loaded == _value(cls.load([*argv, *flag], {}), row) != row.info.default


def test_the_old_audience_name_is_refused_with_the_new_one(tmp_path: Path) -> None:
    # One name per setting: "audience" took jwt_authn's "audiences", and the old name is not lost silently.
    with pytest.raises(SettingsError, match="unknown flag --audience; did you mean --audiences"):
        ServiceSettings.load(["--issuer", ISSUER, "--audience", "a"], {})
    with pytest.raises(
        SettingsError, match="unknown variable SECUREROUTE_AUDIENCE; did you mean SECUREROUTE_AUDIENCES"
    ):
        ServiceSettings.load(["--issuer", ISSUER], {"SECUREROUTE_AUDIENCE": "a"})
    (tmp_path / "s.toml").write_text('audience = ["a"]\n')
    with pytest.raises(SettingsError, match=r"unknown setting.*audience; did you mean audiences"):
        ServiceSettings.load(["--issuer", ISSUER, "--config", str(tmp_path / "s.toml")], {})


@pytest.mark.parametrize(
    ("argv", "environ", "toml", "line"),
    [
        (
            ["--leeway-s", "x"],
            {},
            "",
            "leeway_s: Input should be a valid number, unable to parse string as a number (from --leeway-s)",
        ),
        (
            [],
            {"SECUREROUTE_GRPC_MAX_CONCURRENT_RPCS": "0"},
            "",
            "max_concurrent_rpcs: Input should be greater "
            "than or equal to 1 (from SECUREROUTE_GRPC_MAX_CONCURRENT_RPCS)",
        ),
        ([], {}, "cooldown_s = -1", "cooldown_s: Input should be greater than 0 (from key cooldown_s of "),
        (
            ["--audiences", "a"],
            {},
            "workers = 2\nlisten_unix = '/run/x.sock'",
            "listen_unix: cannot be shared",
        ),
    ],
)
def test_a_bad_value_names_the_setting_and_its_source(
    argv: list[str], environ: dict[str, str], toml: str, line: str, tmp_path: Path
) -> None:
    config = tmp_path / "s.toml"
    config.write_text(toml + "\n")
    with pytest.raises(SettingsError) as caught:
        ServiceSettings.load(["--issuer", ISSUER, *argv], {**environ, "SECUREROUTE_CONFIG": str(config)})
    assert str(caught.value).startswith(line)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("cls", [SecureRouteSettings, ServiceSettings])
def test_trusted_proxies_is_a_repeatable_flag_of_addresses_and_networks(cls: type[ProgramSettings]) -> None:
    argv = ["--issuer", ISSUER, "--trusted-proxies", "127.0.0.7", "--trusted-proxies", "127.1.0.0/16,::1"]
    environ = {"SECUREROUTE_TRUSTED_PROXIES": "192.0.2.1"}
    # Every flag adds; together they replace the variable's value (flag > variable).
    assert cls.load(argv, environ).trusted_proxies == ("127.0.0.7", "127.1.0.0/16", "::1")
    assert cls.load(["--issuer", ISSUER], environ).trusted_proxies == ("192.0.2.1",)
    with pytest.raises(SettingsError, match=r"^trusted_proxies: not an IP address or network: 'facade'"):
        cls.load(["--issuer", ISSUER, "--trusted-proxies", "facade"], {})


@pytest.mark.parametrize(
    "row", [r for r in settings_of(ServiceSettings) if r.repeatable], ids=lambda r: r.name
)
def test_every_list_flag_may_repeat(row: Setting) -> None:
    values = {"trusted_proxies": ("127.0.0.7", "::1"), "algorithms": ("ES256", "EdDSA")}.get(
        row.name, ("https://a.example", "https://b.example")
    )
    audience = [] if row.name == "audiences" else ["--audiences", "x"]
    argv = ["--issuer", ISSUER, *audience, row.flag, values[0], row.flag, values[1]]
    assert getattr(ServiceSettings.load(argv, {}), row.name) == values


# Renamed settings (durations took the _s suffix) and unknown names are refused, never ignored ------

RENAMED = {
    "grace_period": "grace_period_s",
    "drain_delay": "drain_delay_s",
    "max_connection_idle": "max_connection_idle_s",
    "max_connection_age": "max_connection_age_s",
    "max_connection_age_grace": "max_connection_age_grace_s",
    "request_message_timeout": "request_message_timeout_s",
}


@pytest.mark.parametrize(("old", "new"), RENAMED.items())
def test_an_old_name_is_refused_with_the_new_one(old: str, new: str, tmp_path: Path) -> None:
    argv = ["--issuer", ISSUER, "--audiences", "a"]
    inline = old if old in ("grace_period", "drain_delay") else f"grpc_{old}"
    with pytest.raises(
        SettingsError,
        match=f"unknown variable SECUREROUTE_{inline.upper()}; did you mean SECUREROUTE_{inline.upper()}_S",
    ):
        ServiceSettings.load(argv, {f"SECUREROUTE_{inline.upper()}": "2"})
    with pytest.raises(
        SettingsError, match=f"unknown flag --{old.replace('_', '-')}; did you mean --{new.replace('_', '-')}"
    ):
        ServiceSettings.load([*argv, f"--{old.replace('_', '-')}", "2"], {})
    config = tmp_path / "old.toml"
    config.write_text(f"{old} = 2\n")
    with pytest.raises(SettingsError, match=f"unknown setting.*{old}; did you mean {new}"):
        ServiceSettings.load([*argv, "--config", str(config)], {})


def test_the_old_leeway_variable_is_refused() -> None:
    # SECUREROUTE_LEEWAY once silently left the 30 s default in force (an operator's 2 s lost).
    with pytest.raises(SettingsError, match="SECUREROUTE_LEEWAY; did you mean SECUREROUTE_LEEWAY_S"):
        ServiceSettings.load(["--issuer", ISSUER, "--audiences", "a"], {"SECUREROUTE_LEEWAY": "2"})


def test_each_program_accepts_the_others_variables() -> None:
    # The split deployment's ConfigMap reaches both programs (envFrom).
    environ = {
        "SECUREROUTE_BACKEND": "localhost:50051",
        "SECUREROUTE_HTTP_MAX_HEADERS": "20",
        "SECUREROUTE_GRPC_MAX_CONCURRENT_RPCS": "500",
        "SECUREROUTE_WORKERS": "1",
        "SECUREROUTE_TEST_LOAD_CLIENTS": "3",  # the test harness's own
    }
    assert (
        ServiceSettings.load(["--issuer", ISSUER, "--audiences", "a"], environ).grpc.max_concurrent_rpcs
        == 500
    )
    assert FacadeSettings.load([], environ).http.max_headers == 20
    with pytest.raises(SettingsError, match="unknown variable SECUREROUTE_BACKEND_TIMOUT_S"):
        FacadeSettings.load([], {**environ, "SECUREROUTE_BACKEND_TIMOUT_S": "2"})


def test_the_known_variables_are_every_programs() -> None:
    assert {row.env for cls in PROGRAMS for row in settings_of(cls)} <= known_variables()
