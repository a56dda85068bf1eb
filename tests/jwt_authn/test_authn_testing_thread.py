"""``jwt_authn.testing.LoopbackIssuerThread`` in plain synchronous tests, as an embedder of a
threaded ``grpc.server`` uses it (issue 21, point 10): no event loop in the test at all."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from jwt_authn import AuthnConfig, IssuerConfig, SyncAuthenticator, SyncAuthInterceptor, current_principal
from jwt_authn.testing import Fault, LoopbackIssuerThread

WAIT_S = 10.0
METHOD = "/test.v1.Echo/Who"


def _who(request: bytes, context: Any) -> bytes:
    return current_principal().subject.encode()


def _refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(WAIT_S)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_threaded_server_is_tested_against_the_issuer_thread_from_a_plain_def_test() -> None:
    with LoopbackIssuerThread(algorithms=("ES256",), audience="echo") as running:
        assert running.url.startswith("http://127.0.0.1:")
        config = AuthnConfig(issuers=(IssuerConfig(issuer=running.url, audiences=("echo",)),))
        authenticator = SyncAuthenticator(config, timeout_s=5.0)
        server = grpc.server(
            ThreadPoolExecutor(max_workers=2), interceptors=[SyncAuthInterceptor(authenticator)]
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "test.v1.Echo", {"Who": grpc.unary_unary_rpc_method_handler(_who)}
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            assert authenticator.wait_ready(WAIT_S)
            assert running.issuer.jwks_fetches >= 1
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary(METHOD)
                token = running.tokens.issue(sub="alice")
                assert call(b"", metadata=(("authorization", f"Bearer {token}"),), timeout=WAIT_S) == b"alice"
                with pytest.raises(grpc.RpcError) as caught:
                    call(b"", timeout=WAIT_S)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            running.issuer.fault = Fault(status=500)  # attributes work from this thread
            issuer_port = running.issuer.port
            running.stop()
            assert _refuses_connections(issuer_port)
            running.start()
            assert not _refuses_connections(issuer_port)
        finally:
            server.stop(0).wait(WAIT_S)
            authenticator.close()
    assert _refuses_connections(issuer_port)  # the with block took the issuer down


def test_run_outside_the_with_block_is_refused() -> None:
    issuer_thread = LoopbackIssuerThread()

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="not entered"):
        issuer_thread.run(nothing())
