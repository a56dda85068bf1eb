"""The Postman collection, run by newman against the live stack (``python -m dev_stack``): the one
program (the facade's in-process backend) and the split stack (its remote backend, over gRPC).

Usage:
    .venv/bin/pytest tests/test_postman_newman.py
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dev_stack.testing import LiveStack

ROOT = Path(__file__).resolve().parents[1]
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "secureroute.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"


@pytest.fixture(scope="module", params=["one", "split"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with LiveStack(tmp_path_factory.mktemp("stack"), split=request.param == "split") as running:
        yield running


def test_the_environment_points_at_what_make_run_serves() -> None:
    values = {v["key"]: v["value"] for v in json.loads(ENVIRONMENT.read_text())["values"]}
    assert values["baseUrl"] == "http://localhost:3000"
    assert values["grpcUrl"] == "localhost:50051"
    assert values["issuerUrl"] == "http://127.0.0.1:8080"
    assert (values["clientId"], values["clientSecret"]) == ("secureroute-dev", "secureroute-dev-secret")


def test_the_collection_offers_postmans_pkce_flow_for_interactive_use() -> None:
    auth = json.loads(COLLECTION.read_text())["auth"]
    settings = {entry["key"]: entry["value"] for entry in auth["oauth2"]}
    assert auth["type"] == "oauth2"
    assert settings["grant_type"] == "authorization_code_with_pkce"
    assert settings["challengeAlgorithm"] == "S256"
    assert settings["authUrl"] == "{{issuerUrl}}/authorize"
    assert settings["accessTokenUrl"] == "{{issuerUrl}}/token"
    assert settings["clientId"] == "{{pkceClientId}}"
    assert settings["redirect_uri"] == "https://oauth.pstmn.io/v1/callback"


def test_newman_runs_the_collection_green(
    stack: LiveStack, tmp_path: Path, run_command: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assert NEWMAN.exists(), "newman missing: run `npm ci` (make install does)"
    report = tmp_path / "newman.json"
    argv = [
        str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT),
        "--env-var", f"baseUrl={stack.http_url}",
        "--env-var", f"issuerUrl={stack.issuer_url}",
        "--env-var", f"grpcUrl={stack.grpc_address}",
        "--reporters", "cli,json", "--reporter-json-export", str(report),
        "--timeout-request", "10000", "--disable-unicode", "--color", "off",
    ]  # fmt: skip
    completed = run_command(argv, timeout_s=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["requests"]["total"] == 8
    assert stats["requests"]["failed"] == 0
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 17, "the Postman tests did not run"
    # Every JWT starts with "eyJ" (base64url of '{"'): none may reach a log line.
    assert "eyJ" not in stack.log(), "a token reached the logs"
