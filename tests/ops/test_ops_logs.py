"""Structured logs: JSON lines or text, the request id on every line of a request, the token on none,
and each authentication failure logged once (by jwt_authn, with its reason)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import aiohttp
import pytest

from http_facade.app import PER_REQUEST_LOGGERS
from jwt_authn.testing import LoopbackIssuer
from runtime.logs import PER_REQUEST_LINES_PER_S, RateLimitFilter, configure_logging, resolve_log_format
from runtime.request_id import RequestIdFilter, request_id_var


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_auto_is_json_off_a_terminal_and_text_on_one() -> None:
    assert resolve_log_format("auto", io.StringIO()) == "json"
    assert resolve_log_format("auto", _Terminal()) == "text"
    assert resolve_log_format("text", io.StringIO()) == "text"
    assert resolve_log_format("json", _Terminal()) == "json"


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "auto", stream=stream)
    log = logging.getLogger("ops.test")
    log.info("outside")
    reset = request_id_var.set("rid-42")
    try:
        log.warning("inside %s", "a request\nwith a newline")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    finally:
        request_id_var.reset(reset)
    log.debug("not shown")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # the newline in a message stays inside its JSON line
    outside, inside, failed = (json.loads(line) for line in lines)
    assert outside["request_id"] == "-" and outside["level"] == "INFO" and outside["logger"] == "ops.test"
    assert inside["request_id"] == "rid-42" and inside["message"] == "inside a request\nwith a newline"
    assert inside["time"].endswith("Z") and isinstance(inside["pid"], int)
    assert failed["request_id"] == "rid-42" and "RuntimeError: boom" in failed["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_carry_the_request_id() -> None:
    stream = _Terminal()
    configure_logging("INFO", "auto", stream=stream)
    reset = request_id_var.set("rid-7")
    try:
        logging.getLogger("ops.test").info("hello")
    finally:
        request_id_var.reset(reset)
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("INFO ops.test [rid-7] hello")


def test_the_filter_never_drops_a_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert RequestIdFilter().filter(record) and record.request_id == "-"  # type: ignore[attr-defined]


async def test_a_rejected_request_is_logged_once_with_its_id_and_never_its_token(
    issuer: LoopbackIssuer, spawn: Any, http: aiohttp.ClientSession
) -> None:
    # DEBUG: the line per served call is a DEBUG line.
    service = await spawn(
        "service", "--listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute",
        "--log-level", "DEBUG",
    )  # fmt: skip
    service_port = (await service.listening()).port
    await service.wait_for("key set loaded")
    facade = await spawn(
        "http_facade", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{service_port}", "--access-log"
    )
    facade_port = (await facade.listening()).port

    expired = issuer.tokens.issue(ttl_s=-600)
    headers = {"Authorization": f"Bearer {expired}", "X-Request-Id": "trace-ops-1"}
    async with http.get(f"http://127.0.0.1:{facade_port}/secure-route", headers=headers) as response:
        assert response.status == 401
    good = issuer.tokens.issue(sub="erin")
    headers = {"Authorization": f"Bearer {good}", "X-Request-Id": "trace-ops-2"}
    async with http.get(f"http://127.0.0.1:{facade_port}/secure-route", headers=headers) as response:
        assert response.status == 200
    await service.wait_for(r"SecureRoute subject='erin'")
    await facade.wait_for(r"GET /secure-route")  # the access log line of the second request
    assert await service.stop() == 0
    assert await facade.stop() == 0

    rejected = [line for line in service.records if "token_expired" in line["message"]]
    assert len(rejected) == 1, service.records
    assert rejected[0]["level"] == "INFO" and rejected[0]["request_id"] == "trace-ops-1"
    served = [line for line in service.records if "subject='erin'" in line["message"]]
    assert served[0]["request_id"] == "trace-ops-2"
    # The facade does not log the failure again; its access log lines carry the request ids.
    assert not [line for line in facade.records if "UNAUTHENTICATED" in line["message"]]
    access = [line for line in facade.records if "/secure-route" in line["message"]]
    assert {line["request_id"] for line in access} == {"trace-ops-1", "trace-ops-2"}
    everything = "\n".join(service.lines + facade.lines)
    for token in (expired, good):
        assert token not in everything
        assert token.split(".")[2] not in everything  # not even the signature
    assert all(raw.startswith("{") for raw in service.lines + facade.lines)  # JSON lines only


@pytest.mark.parametrize("flags", [(), ("--access-log",)], ids=["default_off", "turned_on"])
async def test_access_lines_only_when_asked_for(
    flags: tuple[str, ...], spawn: Any, http: aiohttp.ClientSession, unused_port: Any
) -> None:
    facade = await spawn(
        "http_facade", "--listen", "127.0.0.1:0", "--backend", f"127.0.0.1:{unused_port()}", *flags
    )
    facade_port = (await facade.listening()).port
    for _ in range(3):
        async with http.get(f"http://127.0.0.1:{facade_port}/no-such-path") as response:
            assert response.status == 404
    assert await facade.stop() == 0
    access = [line for line in facade.records if "/no-such-path" in line["message"]]
    assert len(access) == (3 if flags else 0), facade.records


def test_per_request_lines_are_rate_limited_and_the_next_line_counts_the_rest() -> None:
    now = [100.0]
    limit = RateLimitFilter(3, clock=lambda: now[0])
    assert limit.filter(logging.LogRecord("ops.test", logging.INFO, __file__, 1, "m", None, None))
    records = [
        logging.LogRecord("jwt_authn.grpc_aio", logging.INFO, __file__, 1, "rejected %s: %s", ("/m", i), None)
        for i in range(10)
    ]
    assert [limit.filter(record) for record in records] == [True] * 3 + [False] * 7
    now[0] = 101.2  # the next second
    later = logging.LogRecord("jwt_authn.grpc_aio", logging.INFO, __file__, 1, "rejected %s", ("/m",), None)
    assert limit.filter(later)
    assert later.getMessage() == "rejected /m (7 similar lines left out before this one)"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("logger", ["jwt_authn.grpc_aio", *PER_REQUEST_LOGGERS])
def test_a_flood_of_rejections_writes_a_bounded_number_of_lines(logger: str) -> None:
    stream = io.StringIO()
    # The facade names its per-request loggers (as its main does); the guard's are always limited.
    configure_logging("INFO", "json", stream=stream, per_request_loggers=PER_REQUEST_LOGGERS)
    rejections = logging.getLogger(logger)
    for _ in range(5000):
        rejections.info("rejected %s: %s (%s)", "/secureroute.v1.SecureRouteService/SecureRoute", "x", "y")
    logging.getLogger("ops.test").info("other lines are never limited")
    lines = stream.getvalue().splitlines()
    # The loop takes well under 3 s: at most PER_REQUEST_LINES_PER_S per started second.
    assert len([line for line in lines if "rejected" in line]) <= 3 * PER_REQUEST_LINES_PER_S
    assert "other lines are never limited" in lines[-1]
