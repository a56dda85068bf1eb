# One entry point for every check. Each target creates and reuses .venv and node_modules by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
NODE_BIN := node_modules/.bin
PROTO := protos/secureroute/v1/secureroute.proto
EXAMPLE_PROTO := examples/greeter/greeter.proto
TYPED_PACKAGES := jwt_authn service http_facade runtime secureroute dev_issuer dev_stack examples bench tools

# The container image (make image, make image-test): see README "The container image".
IMAGE ?= localhost/secureroute:dev
BASE_IMAGE ?= localhost/secureroute-base:bookworm
WHEELHOUSE := build/wheelhouse
IMAGE_TOOLS := podman buildah mmdebstrap

.PHONY: help install run test lint proto proto-check buf pytest guard-dist bench fuzz-long soak clean
.PHONY: image image-test image-tools image-base

help:
	@echo "make run    - start the development issuer and secureroute (gRPC and HTTP in one process)"
	@echo "make test   - install what the tests need, run every check and the test suite"
	@echo "make lint   - ruff, mypy, import contracts, buf lint/format, generated-code check"
	@echo "make proto  - regenerate secureroute/v1/*_pb2* from protos/"
	@echo "make guard-dist - build the wheels, test the guard installed alone in a new venv"
	@echo "make bench  - run the side-by-side benchmark"
	@echo "make fuzz-long - hypothesis with 5,000 examples per property (~10 min)"
	@echo "make soak   - a 60,000-request mixed load on the live stack"
	@echo "make image  - build the container image with podman (base image and wheels made locally)"
	@echo "make image-test - build it, run the one program and the split programs from it, call them, stop them"

# Two stamps: what running needs (the runtime dependencies and grpcurl, the client the stack's
# banner prints commands for) and, on top, what the checks and tests need (the [dev] extra, npm).
# The guard (./jwt_authn) is a distribution of its own that the application depends on.
$(VENV)/.runtime-installed: pyproject.toml jwt_authn/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./jwt_authn -e '.[client]'
	touch $@

$(VENV)/.installed: $(VENV)/.runtime-installed examples/pyproject.toml
	$(PY) -m pip install --quiet -e ./examples -e '.[dev]'

	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# Only what running needs: no [dev] extra, no npm tools. Offline once installed.
run: $(VENV)/.runtime-installed
	$(PY) -m dev_stack

proto: $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO)
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. $(EXAMPLE_PROTO)

# CI fails when the committed generated code differs from a fresh generation.
proto-check: $(VENV)/.installed
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTO) && \
	$(PY) -m grpc_tools.protoc -I. --python_out=$$tmp --pyi_out=$$tmp $(EXAMPLE_PROTO) && \
	diff -r -x __init__.py -x __pycache__ $$tmp/secureroute/v1 secureroute/v1 && \
	for f in greeter_pb2.py greeter_pb2.pyi; do diff $$tmp/examples/greeter/$$f examples/greeter/$$f || exit 1; done && \
	echo "generated code is up to date"; \
	rc=$$?; rm -rf $$tmp; exit $$rc

buf: node_modules/.installed
	$(NODE_BIN)/buf lint
	$(NODE_BIN)/buf format --diff --exit-code

lint: install buf proto-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(addprefix -p ,$(TYPED_PACKAGES))
	$(BIN)/lint-imports
	$(BIN)/kubernetes-validate --strict --quiet deploy/*.yaml deploy/split/*.yaml
	$(BIN)/hadolint Dockerfile
	$(PY) -m tools.settings_doc --check README.md

pytest: install
	$(BIN)/pytest

# The guard's wheel installed alone in a new venv, its examples' tests run there (outside the checkout).
guard-dist: $(VENV)/.installed
	tools/check_guard_dist.sh $(PY)

test: lint pytest guard-dist

bench: install
	$(PY) -m bench
	{ echo "# DPoP in the guard: python -m bench.dpop_micro (make bench, $$(date -u +%F))"; echo; \
	  echo '```text'; $(PY) -m bench.dpop_micro; echo '```'; } > docs/benchmarks-dpop.md.new
	mv docs/benchmarks-dpop.md.new docs/benchmarks-dpop.md

fuzz-long: install
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/fuzz --timeout=0

soak: install
	SECUREROUTE_TEST_LOAD_REQUESTS=60000 SECUREROUTE_TEST_LOAD_CLIENTS=200 $(BIN)/pytest tests/load/test_load_mixed.py --timeout=0 -s

# podman, buildah and mmdebstrap from Debian's packages when missing (root and apt-get only).
image-tools:
	@missing=$$(for tool in $(IMAGE_TOOLS); do command -v $$tool >/dev/null || echo $$tool; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# A Debian bookworm base with Python, made locally (no image registry needed); built once.
image-base: image-tools
	set -o pipefail; podman image exists $(BASE_IMAGE) || { \
		mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python-is-python3,passwd \
			bookworm - | podman import --quiet \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - $(BASE_IMAGE); }

# Wheels of every dependency and of the build backend, made on the host: pip cannot reach the
# package index inside the build.
$(WHEELHOUSE)/.made: pyproject.toml jwt_authn/pyproject.toml $(VENV)/.runtime-installed
	rm -rf $(WHEELHOUSE)
	$(PY) -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) ./jwt_authn . 'setuptools>=77' wheel
	rm -f $(WHEELHOUSE)/secureroute-*.whl
	touch $@

image: image-base $(WHEELHOUSE)/.made
	podman build --quiet --isolation chroot --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		--build-arg WHEELHOUSE=$(WHEELHOUSE) --tag $(IMAGE) .

image-test: image install
	SECUREROUTE_TEST_IMAGE=$(IMAGE) $(BIN)/pytest tests/image -s -q

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache $(WHEELHOUSE)
