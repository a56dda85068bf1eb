"""Which Authorization values may travel as gRPC metadata: printable ASCII, the whole value."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from http_facade.request_id import REQUEST_ID_KEY
from http_facade.routes import _malformed_authorization


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
def test_only_printable_ascii_values_are_forwarded(value: str, refused: bool) -> None:
    request = make_mocked_request("GET", "/secure-route", headers={"Authorization": value})
    request[REQUEST_ID_KEY] = "test"
    refusal = _malformed_authorization(request)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert refusal.status == 400
