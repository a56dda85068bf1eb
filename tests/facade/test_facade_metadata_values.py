"""Which Authorization values may travel as gRPC metadata: printable ASCII, the whole value."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from http_facade.request_id import REQUEST_ID_KEY
from http_facade.routes import malformed_authorization_middleware


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("Bearer abc.def.ghi", False),
        ("Bearer abc\n", True),  # "$" alone would let a trailing newline through
        ("Bearer abc\r", True),
        ("Bearer \x00abc", True),
        ("Bearer abc\x7f", True),
        ("Bearer abcé", True),
    ],
)
async def test_only_printable_ascii_values_are_forwarded(value: str, refused: bool) -> None:
    request = make_mocked_request("GET", "/secure-route", headers={"Authorization": value})
    request[REQUEST_ID_KEY] = "test"

    async def forwarded(request: web.Request) -> web.StreamResponse:
        return web.Response(status=299)

    response = await malformed_authorization_middleware(request, forwarded)
    assert response.status == (400 if refused else 299)
