# secureroute: one image, two programs.
#   docker build -t secureroute .
#   docker run --rm -p 50051:50051 -e SECUREROUTE_ISSUER=https://idp.example.com/ \
#       -e SECUREROUTE_AUDIENCE=secureroute secureroute                     # the gRPC service (default)
#   docker run --rm -p 3000:3000 -e SECUREROUTE_BACKEND=service:50051 secureroute secureroute-facade
# Settings come from SECUREROUTE_* variables, flags, or a TOML file (--config); see README "Operating it".

# Build stage: install the package and its dependencies into a virtual environment.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/secureroute
COPY pyproject.toml README.md ./
COPY jwt_authn ./jwt_authn
COPY secureroute ./secureroute
COPY service ./service
COPY http_facade ./http_facade
# A regular (not editable) install: the runtime stage needs no sources.
RUN /opt/secureroute/bin/pip install --no-cache-dir .

# Runtime stage: the interpreter, the virtual environment, and a user without privileges.
FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 secureroute \
    && useradd --system --uid 10001 --gid secureroute --no-create-home --shell /usr/sbin/nologin secureroute
COPY --from=build /opt/secureroute /opt/secureroute
ENV PATH=/opt/secureroute/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SECUREROUTE_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
# gRPC, HTTP facade, metrics of the service and the facade (loopback unless set to a pod address).
EXPOSE 50051 3000 9464 9465
# Both programs handle SIGTERM themselves (drain, then exit 0), also as PID 1; with --workers they
# reap their own children, so no init shim is needed.
STOPSIGNAL SIGTERM
CMD ["secureroute-service"]
