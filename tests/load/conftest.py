"""Fixtures for the load, limit and shutdown tests: the stack as subprocesses.

Usage:
    async def test_x(load_issuer: LoopbackIssuer, start_processes) -> None:
        service, facade = await start_processes(load_issuer.url, grace_s=3)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from load_stack import LOAD_ALGORITHMS, start_facade_process, start_service_process, wait_serving

from dev_stack.children import Child
from jwt_authn.testing import LoopbackIssuer


@pytest.fixture
async def load_issuer() -> AsyncIterator[LoopbackIssuer]:
    async with LoopbackIssuer(algorithms=LOAD_ALGORITHMS, audience="secureroute") as running:
        yield running


@pytest.fixture
async def start_processes(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[Child, Child]]]]:
    """``await start_processes(issuer_url, *service_flags, grace_s=5, backend_timeout_s=5,
    wait_ready=True)``."""
    started: list[Child] = []

    async def start(
        issuer_url: str,
        *service_flags: str,
        grace_s: float = 5.0,
        backend_timeout_s: float = 5.0,
        wait_ready: bool = True,
    ) -> tuple[Child, Child]:
        service = await start_service_process(issuer_url, tmp_path, *service_flags, grace_s=grace_s)
        started.append(service)
        facade = await start_facade_process(service.port, tmp_path, backend_timeout_s=backend_timeout_s)
        started.append(facade)
        if wait_ready:
            await wait_serving(service)
        return service, facade

    yield start
    for program in reversed(started):
        await program.stop()
