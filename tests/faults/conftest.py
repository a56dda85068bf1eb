"""A service with small fetch timeout, cooldown and backoff, its facade, and clients.

The service's settings have no knobs for jwt_authn's fetch timings (fetch timeout, cooldown,
backoff, refresh interval), so the service is built in-process with ``build_server(settings,
config)``: the config is the one ``authn_config(settings)`` derives, with those timings made
small. Everything else (interceptor, health, handlers, facade) is the real thing.

Usage:
    async def test_x(issuer: LoopbackIssuer, start_tuned_stack) -> None:
        stack = await start_tuned_stack(issuer.url, cooldown_s=0.5)
        assert await stack.grpc_call(token) == "OK"
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from faults_stack import FAST_TIMINGS, TunedStack

from service import SecureRouteServer, ServiceSettings, authn_config, build_server


@pytest.fixture
async def start_tuned_stack(
    make_service_settings: Callable[..., ServiceSettings], start_facade: Callable[..., Awaitable[str]]
) -> AsyncIterator[Callable[..., Awaitable[TunedStack]]]:
    """``await start_tuned_stack(issuer_url, facade_timeout_s=5, **issuer_config_changes)``."""
    apps: list[SecureRouteServer] = []
    channels: list[grpc.aio.Channel] = []

    async def start(issuer_url: str, *, facade_timeout_s: float = 5.0, **changes: Any) -> TunedStack:
        settings = make_service_settings(issuer_url)
        config = authn_config(settings)
        issuer_config = dataclasses.replace(config.issuers[0], **{**FAST_TIMINGS, **changes})
        app = build_server(settings, dataclasses.replace(config, issuers=(issuer_config,)))
        await app.start()
        apps.append(app)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
        channels.append(channel)
        facade_url = await start_facade(f"127.0.0.1:{app.port}", timeout_s=facade_timeout_s)
        return TunedStack(app=app, channel=channel, facade_url=facade_url, issuer_config=issuer_config)

    yield start
    for channel in channels:
        await channel.close()
    for app in apps:
        await app.stop(0)
