#!/usr/bin/env bash
# Proves the guard is its own distribution: build the three wheels, install jwt-authn (and its
# examples) ALONE in a new virtual environment, check that nothing of the application came
# along, and run the examples' tests and the embedding smoke test there, outside the checkout.
# Then the guard's README (its PyPI description) must stand alone: its complete example is taken
# from the README and run as written in another new venv, with only the guard's wheel installed
# besides what the example's own pip line names.
# Usage: tools/check_guard_dist.sh [python]   (called by `make guard-dist`, part of `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
python=${1:-python3}
case $python in */*) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;; esac  # used after cd
work=$(mktemp -d)
trap 'rm -rf "$work" jwt_authn/build examples/build build/lib' EXIT

"$python" -m pip wheel --quiet --no-deps -w "$work/wheels" ./jwt_authn ./examples . 2>&1 | grep -v '^WARNING: Location' || true
ls "$work"/wheels/jwt_authn-*.whl "$work"/wheels/jwt_authn_examples-*.whl "$work"/wheels/secureroute-*.whl >/dev/null

# The guard's wheel holds the guard and nothing else.
"$python" - "$work"/wheels/jwt_authn-*.whl <<'PY'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
stray = [n for n in names if not n.startswith(("jwt_authn/", "jwt_authn-"))]
assert not stray, f"the guard's wheel holds more than the guard: {stray}"
assert "jwt_authn/py.typed" in names, "the guard's wheel lacks py.typed"
metadata = zipfile.ZipFile(sys.argv[1]).read(next(n for n in names if n.endswith("METADATA"))).decode()
requires = sorted(line.split(":", 1)[1].split(">")[0].split("<")[0].strip()
                  for line in metadata.splitlines()
                  if line.startswith("Requires-Dist:") and "extra ==" not in line)
assert requires == ["aiohttp", "grpcio", "jwcrypto"], f"runtime dependencies: {requires}"
extras = sorted(re.split(r"[<>=!~;\[ ]", line.split(":", 1)[1].strip())[0]
                for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" in line)
assert extras == ["redis"], f"optional dependencies: {extras}"
assert "entry_points.txt" not in " ".join(names), "the guard installs no console scripts"
license = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
assert license, "the guard's wheel lacks its LICENSE"
assert b"Apache License" in zipfile.ZipFile(sys.argv[1]).read(license[0]), "the LICENSE is not Apache-2.0"
# The README is the PyPI description: every link absolute (nothing of the repository ships).
description = metadata.split("\n\n", 1)[1]
relative = re.findall(r"\]\((?!https?://)([^)]*)\)", description)
assert not relative, f"the description links outside the package: {relative}"
checkout_only = [p for p in ("examples/", "dev_issuer", ".venv/", "main README", "pip install ./") if p in description]
assert not checkout_only, f"the description points into the repository: {checkout_only}"
print("guard wheel: jwt_authn only, depends on", ", ".join(requires))
PY

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
"$work/venv/bin/python" -m pip install --quiet "$work"/wheels/jwt_authn-*.whl "$work"/wheels/jwt_authn_examples-*.whl \
    "pytest>=8" "pytest-asyncio>=1.0" "pytest-timeout>=2.3" 2>&1 | grep -v '^WARNING: Location' || true

cp -r examples/tests "$work/tests"
cd "$work/tests"
# Run from outside the checkout: only the installed copies can be imported.
"$work/venv/bin/python" - <<'PY'
import importlib.util, jwt_authn, examples
absent = ["service", "http_facade", "secureroute", "dev_issuer", "dev_stack", "prometheus_client", "pydantic"]
present = [m for m in absent if importlib.util.find_spec(m) is not None]
assert not present, f"installing the guard brought in {present}"
assert "site-packages" in jwt_authn.__file__ and "site-packages" in examples.__file__
print("clean venv: jwt_authn", jwt_authn.__file__.rsplit("site-packages", 1)[0] + "site-packages")
PY
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider -o asyncio_mode=auto \
    -o asyncio_default_fixture_loop_scope=function --timeout=120 .

# The README's complete example, as written: its files, its commands, its printed output.
example="$work/readme-example"
mkdir "$example"
"$python" - "$repo/jwt_authn/README.md" "$example" <<'PY'
import pathlib, re, sys
text = pathlib.Path(sys.argv[1]).read_text()
blocks = re.findall(r"<!-- example: (\S+) -->\n```[a-z]*\n(.*?)```\n", text, re.S)
names = [name for name, _ in blocks]
assert names == ["inventory.proto", "server.py", "demo.py", "run.sh", "expected-output.txt"], names
for name, body in blocks:
    (pathlib.Path(sys.argv[2]) / name).write_text(body)
PY
"$python" -m venv "$work/example-venv"
cd "$example"
wheel=$(ls "$work"/wheels/jwt_authn-*.whl)
# `pip install jwt-authn` gets the wheel just built, not a release from the index.
grep -q '^pip install jwt-authn ' run.sh
sed -i "s#^pip install jwt-authn #pip install --quiet $wheel #" run.sh
PATH="$work/example-venv/bin:$PATH" bash -euo pipefail run.sh > output.txt 2> >(grep -v '^WARNING: Location' >&2)
diff -u expected-output.txt output.txt
echo "the README's example runs as written: $(wc -l < output.txt) lines as expected"
