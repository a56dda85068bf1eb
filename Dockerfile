# secureroute: one image; by default the one program (gRPC and HTTP from one process, one guard).
#   docker build -t secureroute .
#   docker run --rm -p 50051:50051 -p 3000:3000 -e SECUREROUTE_ISSUER=https://idp.example.com/ \
#       -e SECUREROUTE_AUDIENCES=secureroute secureroute                     # the one program (default)
# The split deployment, the same image: `secureroute-service` (gRPC), and
#   docker run --rm -p 3000:3000 -e SECUREROUTE_BACKEND=service:50051 secureroute secureroute-facade
# Settings come from SECUREROUTE_* variables, flags, or a TOML file (--config); see README "Operating it".
#
# Build arguments (`make image` uses both; see README "The container image"):
#   BASE_IMAGE  any image with python3.11+ and its venv module as `python` (default: the official one)
#   WHEELHOUSE  a directory inside the build context holding wheels of every dependency and of the
#               build backend (setuptools, wheel): no package index is used (builds without
#               network); empty: dependencies come from the index
ARG BASE_IMAGE=python:3.11.11-slim-bookworm

# Build stage: install the guard (its own distribution, ./jwt_authn), the application and their
# dependencies into a virtual environment.
FROM ${BASE_IMAGE} AS build
ARG WHEELHOUSE=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/secureroute
# .dockerignore keeps the context to the packaged sources (and build/wheelhouse, when made).
COPY . ./
# A regular (not editable) install: the runtime stage needs no sources.
RUN if [ -n "$WHEELHOUSE" ]; then \
        /opt/secureroute/bin/pip install --no-cache-dir --no-index --find-links "$WHEELHOUSE" ./jwt_authn .; \
    else \
        /opt/secureroute/bin/pip install --no-cache-dir ./jwt_authn .; \
    fi

# Runtime stage: the interpreter, the virtual environment, and a user without privileges.
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 secureroute \
    && useradd --system --uid 10001 --gid secureroute --no-create-home --shell /usr/sbin/nologin secureroute
COPY --from=build /opt/secureroute /opt/secureroute
# PATH spelled out: an image brought in with `podman import` may carry no PATH to extend.
ENV PATH=/opt/secureroute/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SECUREROUTE_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
# The one program's gRPC, HTTP and metrics (loopback unless set to a pod address); the split
# facade's metrics, 9465, are published by whoever runs it.
EXPOSE 50051 3000 9464
# Every program handles SIGTERM itself (drain, then exit 0), also as PID 1; with --workers the split
# programs reap their own children, so no init shim is needed.
STOPSIGNAL SIGTERM
# The default program: the one program. `secureroute-service` and `secureroute-facade` run the split
# deployment from the same image.
CMD ["secureroute"]
