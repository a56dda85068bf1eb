"""The facade reaching a co-located service over its Unix socket (``--backend unix:PATH``), end to end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer, ServiceSettings

WAIT_S = 15.0


async def test_facade_over_the_unix_socket(
    *,
    tmp_path: Path,
    issuer: LoopbackIssuer,
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    start_facade: Callable[..., Awaitable[str]],
    make_service_settings: Callable[..., ServiceSettings],
    http: aiohttp.ClientSession,
) -> None:
    path = tmp_path / "svc.sock"
    app = await start_service(make_service_settings(issuer.url, "--listen-unix", str(path)))
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    # The facade is told only the socket: every call below crosses it.
    url = await start_facade(f"unix:{path}")

    token = issuer.tokens.issue(sub="neighbour")
    async with http.get(f"{url}/secure-route", headers={"Authorization": f"Bearer {token}"}) as response:
        assert (response.status, await response.text()) == (200, "Super secret stuff")
    async with http.get(f"{url}/secure-route") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with http.get(f"{url}/health") as response:
        assert response.status == 200
