"""Real servers on 127.0.0.1:0 guarded by jwt_authn, for the DPoP and mTLS tests, all behind one
small interface: ``await server.call(authorization, proofs, extra)`` -> ``Answer``.

Four kinds: the aiohttp middleware, a grpc.aio server with ``async def`` handlers, a grpc.aio
server with plain ``def`` handlers (its migration_thread_pool) and a threaded grpc.server. The
servers answer with the subject of ``current_principal()``.

Usage:
    server = await start(kind, config)
    answer = await server.call(f"DPoP {token}", [proof])
    assert answer.outcome == "ok"
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
from aiohttp import web
from authn_helpers import ECHO_SERVICE, echo_methods, serve_on_loopback, subject_or_anonymous

from jwt_authn import (
    AsyncAuthInterceptor,
    Authenticator,
    AuthnConfig,
    SyncAuthenticator,
    SyncAuthInterceptor,
    authn_middleware,
    operation,
    recommended_server_options,
)
from jwt_authn.replay import ReplayStore

KINDS = ("http", "aio", "aio-def", "sync")
SERVICE = ECHO_SERVICE
METHOD = f"/{SERVICE}/Unary"
WAIT_S = 10.0


@dataclass
class Answer:
    #: "ok", or the rejection's gRPC code in lower case ("unauthenticated"); HTTP maps 401/403.
    outcome: str
    #: The reason (from the safe description) or the subject on success.
    reason: str
    challenges: list[str] = field(default_factory=list)
    nonce: str | None = None
    #: Everything the client received, to check that no token or proof is echoed.
    everything: str = ""


@dataclass
class TLS:
    """Server TLS with client certificates (``CERT_REQUIRED`` against ``client_ca``)."""

    server_cert: bytes
    server_key: bytes
    client_ca: bytes
    #: The client's credentials, for this server's callers.
    ca: bytes
    client_cert: bytes | None = None
    client_key: bytes | None = None


def _handlers(aio: bool) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, echo_methods(aio=aio))


class Server:
    def __init__(self, kind: str, port: int, tls: TLS | None) -> None:
        self.kind = kind
        self.port = port
        self.tls = tls
        scheme = "https" if tls else "http"
        host = "localhost" if tls else "127.0.0.1"
        self.htm = "GET" if kind == "http" else "POST"
        path = "/orders" if kind == "http" else METHOD
        self.htu = f"{scheme}://{host}:{port}{path}"
        self.authenticator: Authenticator | None = None
        self.sync_authenticator: SyncAuthenticator | None = None
        self._channel: grpc.aio.Channel | None = None
        self._http: aiohttp.ClientSession | None = None
        self.cleanups: list[Any] = []

    @property
    def core(self) -> Authenticator:
        """The Authenticator behind this server (the threaded kind's lives on its own loop)."""
        if self.sync_authenticator is not None:
            return self.sync_authenticator.authenticator
        assert self.authenticator is not None
        return self.authenticator

    def _grpc_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            target = f"localhost:{self.port}" if self.tls else f"127.0.0.1:{self.port}"
            if self.tls:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=self.tls.ca,
                    private_key=self.tls.client_key,
                    certificate_chain=self.tls.client_cert,
                )
                self._channel = grpc.aio.secure_channel(target, credentials)
            else:
                self._channel = grpc.aio.insecure_channel(target)
        return self._channel

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = None
            if self.tls:
                context = ssl.create_default_context(cadata=self.tls.ca.decode())
                if self.tls.client_cert is not None:
                    with (
                        tempfile.NamedTemporaryFile() as cert,
                        tempfile.NamedTemporaryFile() as key,
                    ):
                        cert.write(self.tls.client_cert)
                        key.write(self.tls.client_key or b"")
                        cert.flush()
                        key.flush()
                        context.load_cert_chain(cert.name, key.name)
                connector = aiohttp.TCPConnector(ssl=context, force_close=True)
            self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    async def call(
        self,
        authorization: str | None,
        proofs: Sequence[str] = (),
        extra: Sequence[tuple[str, str]] = (),
        *,
        method: str = "Unary",
    ) -> Answer:
        headers: list[tuple[str, str]] = []
        if authorization is not None:
            headers.append(("authorization", authorization))
        headers += [("dpop", proof) for proof in proofs]
        headers += list(extra)
        if self.kind == "http":
            return await self._http_call(headers)
        return await self._grpc_call(tuple(headers), method)

    async def _http_call(self, headers: list[tuple[str, str]]) -> Answer:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        async with self._session().get(f"{scheme}://{host}:{self.port}/orders", headers=headers) as response:
            text = await response.text()
            everything = text + repr(list(response.headers.items()))
            if response.status == 200:
                return Answer("ok", text, everything=everything)
            outcome = {401: "unauthenticated", 403: "permission_denied", 503: "unavailable"}.get(
                response.status, f"http {response.status}"
            )
            return Answer(
                outcome,
                text.replace(" ", "_"),
                response.headers.getall("WWW-Authenticate", []),
                response.headers.get("DPoP-Nonce"),
                everything,
            )

    async def _grpc_call(self, metadata: tuple[tuple[str, str], ...], method: str) -> Answer:
        channel = self._grpc_channel()
        try:
            if method == "Unary":
                reply = await channel.unary_unary(f"/{SERVICE}/Unary")(
                    b"hi", metadata=metadata, timeout=WAIT_S
                )
                replies = [reply]
            elif method == "ServerStream":
                call = channel.unary_stream(f"/{SERVICE}/ServerStream")(
                    b"hi", metadata=metadata, timeout=WAIT_S
                )
                replies = [r async for r in call]
            elif method == "BidiUnwritten":
                # Opened and never written to: a write racing the guard's answer would fail in the
                # client's core at random (INTERNAL), which is not what a rejection test is about.
                call = channel.stream_stream(f"/{SERVICE}/Bidi")(metadata=metadata, timeout=WAIT_S)
                replies = [r async for r in call]
            else:
                call = channel.stream_stream(f"/{SERVICE}/Bidi")(
                    iter([b"a", b"b"]), metadata=metadata, timeout=WAIT_S
                )
                replies = [r async for r in call]
        except grpc.aio.AioRpcError as error:
            trailers = list(error.trailing_metadata() or ())
            return Answer(
                error.code().name.lower(),
                (error.details() or "").replace(" ", "_"),
                [str(v) for k, v in trailers if k == "www-authenticate"],
                next((str(v) for k, v in trailers if k == "dpop-nonce"), None),
                f"{error.details()} {trailers!r} {error.initial_metadata()!r}",
            )
        assert len(set(replies)) == 1, replies
        return Answer("ok", replies[0].decode(), everything=repr(replies))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._http is not None:
            await self._http.close()
        for cleanup in reversed(self.cleanups):
            await cleanup()


def _server_credentials(tls: TLS) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(tls.server_key, tls.server_cert)], root_certificates=tls.client_ca, require_client_auth=True
    )


async def start(
    kind: str,
    config: AuthnConfig,
    *,
    tls: TLS | None = None,
    replay_store: ReplayStore | None = None,
    observer: Any = None,
) -> Server:
    """One server of ``kind`` guarding ``METHOD`` (and ``/orders`` over HTTP) with ``config``."""
    if kind == "http":
        authenticator = Authenticator(config, replay_store=replay_store, observer=observer)

        @operation(METHOD)
        async def orders(request: web.Request) -> web.Response:
            return web.Response(text=subject_or_anonymous())

        app = web.Application(middlewares=[authn_middleware(authenticator)])
        app.router.add_get("/orders", orders)
        ssl_context = None if tls is None else _ssl_server_context(tls)
        runner, port = await serve_on_loopback(app, ssl_context=ssl_context)
        server = Server(kind, port, tls)
        server.authenticator = authenticator
        await authenticator.start()

        async def stop_http() -> None:
            await runner.cleanup()
            await authenticator.close()

        server.cleanups.append(stop_http)
        assert await authenticator.wait_ready(WAIT_S)
        return server
    if kind.startswith("aio"):
        authenticator = Authenticator(config, replay_store=replay_store, observer=observer)
        aio_server = grpc.aio.server(
            migration_thread_pool=ThreadPoolExecutor(max_workers=1),
            interceptors=[AsyncAuthInterceptor(authenticator)],
            options=recommended_server_options(config),
        )
        aio_server.add_generic_rpc_handlers((_handlers(aio=kind == "aio"),))
        address = "127.0.0.1:0"
        port = (
            aio_server.add_secure_port(address, _server_credentials(tls))
            if tls
            else aio_server.add_insecure_port(address)
        )
        await aio_server.start()
        await authenticator.start()
        server = Server(kind, port, tls)
        server.authenticator = authenticator

        async def stop_aio() -> None:
            await aio_server.stop(0)
            await authenticator.close()

        server.cleanups.append(stop_aio)
        assert await authenticator.wait_ready(WAIT_S)
        return server
    sync_authenticator = await asyncio.to_thread(
        lambda: SyncAuthenticator(config, timeout_s=5.0, replay_store=replay_store, observer=observer)
    )
    threaded = grpc.server(
        ThreadPoolExecutor(max_workers=2),
        interceptors=[SyncAuthInterceptor(sync_authenticator)],
        options=recommended_server_options(config),
    )
    threaded.add_generic_rpc_handlers((_handlers(aio=False),))
    port = (
        threaded.add_secure_port("127.0.0.1:0", _server_credentials(tls))
        if tls
        else threaded.add_insecure_port("127.0.0.1:0")
    )
    threaded.start()
    server = Server(kind, port, tls)
    server.sync_authenticator = sync_authenticator

    async def stop_sync() -> None:
        await asyncio.to_thread(lambda: threaded.stop(0).wait(WAIT_S))
        await asyncio.to_thread(sync_authenticator.close)

    server.cleanups.append(stop_sync)
    assert await asyncio.to_thread(sync_authenticator.wait_ready, WAIT_S)
    return server


def _ssl_server_context(tls: TLS) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=tls.client_ca.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
        cert.write(tls.server_cert)
        key.write(tls.server_key)
        cert.flush()
        key.flush()
        context.load_cert_chain(cert.name, key.name)
    return context
