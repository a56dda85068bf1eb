"""The container and Kubernetes files: schema-valid, lint-clean, and consistent with the programs:
``deploy/`` deploys the one program, ``deploy/split/`` the service and the facade apart.

kubernetes-validate checks the manifests against the Kubernetes OpenAPI schemas it ships
(offline); hadolint lints the Dockerfile. No container engine runs here: the image itself is
neither built nor run by these tests (see README "Operating it").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from http_facade.settings import FacadeSettings
from runtime.settings import settings_of
from secureroute.settings import SecureRouteSettings, split_settings
from service.settings import ServiceSettings, authn_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted(DEPLOY.glob("*.yaml")) + sorted(DEPLOY.glob("split/*.yaml"))


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: pip install -e '.[dev]'")
    return found


def _documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_manifests_match_the_kubernetes_schemas() -> None:
    assert {path.parent.name for path in MANIFESTS} == {"deploy", "split"}
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", *map(str, MANIFESTS)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_typo(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    manifest = (DEPLOY / "secureroute.yaml").read_text()
    broken.write_text(manifest.replace("readinessProbe:", "readinesProbe:", 1))
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", str(broken)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0


def test_dockerfile_is_lint_clean() -> None:
    result = subprocess.run(
        [_tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _container(deployment: str) -> dict[str, Any]:
    container: dict[str, Any] = _named("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return container


def test_dockerfile_runs_as_a_user_and_offers_every_program() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text
    assert 'CMD ["secureroute"]' in text
    assert "EXPOSE 50051 3000 9464\n" in text
    for program in ("secureroute", "secureroute-service", "secureroute-facade"):
        assert _container(program)["command"] == [program]


def test_the_image_build_context_carries_every_package_the_programs_import() -> None:
    # .dockerignore is an allowlist: a package the programs import but the context leaves out
    # builds an image whose programs die at start (ModuleNotFoundError).
    entry_points = ("secureroute.program", "service.__main__", "http_facade.__main__")
    listed = subprocess.run(
        [sys.executable, "-c", f"import sys; import {', '.join(entry_points)}; print(*sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    ours = {name.split(".")[0] for name in listed.stdout.split()}
    ours = {name for name in ours if (ROOT / name / "__init__.py").is_file()}
    assert {"secureroute", "service", "http_facade", "runtime", "jwt_authn"} <= ours
    allowed = {
        line.strip()[1:].removesuffix("/**") for line in (ROOT / ".dockerignore").read_text().splitlines()
    }
    assert ours <= allowed, f"missing from .dockerignore's allowlist: {sorted(ours - allowed)}"


def test_the_one_programs_configmap_holds_valid_settings_only() -> None:
    env = _named("ConfigMap", "secureroute")["data"]
    assert set(env) <= {row.env for row in settings_of(SecureRouteSettings)}
    settings = SecureRouteSettings.load([], environ=env)
    authn_config(split_settings(settings)[0])  # the whole chain accepts it
    assert (settings.grpc.listen.port, settings.http.listen.port) == (50051, 3000)
    assert settings.metrics_listen is not None and settings.metrics_listen.port == 9464
    assert "SECUREROUTE_WORKERS" not in env  # one process: the one program has no workers setting
    ports = {port["name"]: port["containerPort"] for port in _container("secureroute")["ports"]}
    assert ports == {"grpc": 50051, "http": 3000, "admin": 9464}


def test_configmaps_hold_valid_settings_only() -> None:
    service_env = _named("ConfigMap", "secureroute-service")["data"]
    assert set(service_env) <= {row.env for row in settings_of(ServiceSettings)}
    settings = ServiceSettings.load([], environ=service_env)
    authn_config(settings)  # the whole chain accepts it
    assert settings.metrics_listen is not None and settings.metrics_listen.port == 9464
    facade_env = _named("ConfigMap", "secureroute-facade")["data"]
    assert set(facade_env) <= {row.env for row in settings_of(FacadeSettings)}
    facade = FacadeSettings.load([], environ=facade_env)
    assert facade.http.listen.port == 3000
    assert facade.http.metrics_listen is not None and facade.http.metrics_listen.port == 9465


def _service_target_ports(name: str) -> set[Any]:
    return {port["targetPort"] for port in _named("Service", name)["spec"]["ports"]}


#: Each Deployment's admin listener: its container port and the setting that binds it there.
ADMIN_PORTS = {"secureroute": 9464, "secureroute-service": 9464, "secureroute-facade": 9465}


@pytest.mark.parametrize("name", sorted(ADMIN_PORTS))
def test_every_probe_goes_to_the_admin_listener_which_no_service_exposes(name: str) -> None:
    """Issue 24: probes on the public ports shared the anonymous pool, so a flood failed them."""
    container = _container(name)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["admin"] == ADMIN_PORTS[name]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    if name != "secureroute-facade":  # the facade has no keys to wait for
        assert container["startupProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "grpc" not in container.get(probe, {}) and "tcpSocket" not in container.get(probe, {})
    # No Service reaches it, by name or by number.
    for service in ("secureroute", "secureroute-service", "secureroute-facade"):
        assert not _service_target_ports(service) & {"admin", ADMIN_PORTS[name]}


def test_the_admin_listeners_bind_the_pod_address_in_deploy() -> None:
    one = SecureRouteSettings.load([], environ=_named("ConfigMap", "secureroute")["data"])
    service = ServiceSettings.load([], environ=_named("ConfigMap", "secureroute-service")["data"])
    facade = FacadeSettings.load([], environ=_named("ConfigMap", "secureroute-facade")["data"])
    for listen in (one.metrics_listen, service.metrics_listen, facade.http.metrics_listen):
        assert listen is not None and listen.host == "0.0.0.0"  # noqa: S104 (the kubelet dials the pod IP)
    # ... and each program's own default is loopback.
    issuer = {"SECUREROUTE_ISSUER": "https://idp.example.com/", "SECUREROUTE_AUDIENCES": "secureroute"}
    assert SecureRouteSettings.load([], environ=issuer).metrics_listen.host == "127.0.0.1"  # type: ignore[union-attr]
    assert ServiceSettings.load([], environ=issuer).metrics_listen.host == "127.0.0.1"  # type: ignore[union-attr]
    assert FacadeSettings.load([], environ={}).http.metrics_listen.host == "127.0.0.1"  # type: ignore[union-attr]


def test_deployments_keep_requests_limits_and_their_autoscaler() -> None:
    for name in ("secureroute", "secureroute-service", "secureroute-facade"):
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(_container(name)["resources"][kind])
        hpa = _named("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        assert _named("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": name
        }
