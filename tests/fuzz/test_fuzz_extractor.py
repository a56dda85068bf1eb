"""extract_bearer on arbitrary authorization values: a token or Unauthenticated, nothing else."""

from __future__ import annotations

import re

from fuzz_strategies import DOCUMENTED_REASONS
from hypothesis import example, given
from hypothesis import strategies as st

from jwt_authn.errors import Unauthenticated
from jwt_authn.extractor import extract_bearer

_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_values = st.text(max_size=64) | st.builds(
    lambda scheme, rest: f"{scheme} {rest}",
    st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", ""]),
    st.text(max_size=48),
)


@given(values=st.lists(_values, max_size=3), cap=st.integers(min_value=1, max_value=128))
@example(values=["Bearer a b"], cap=64)
@example(values=["Bearer\x00abc"], cap=64)
@example(values=["Bearer " + "a" * 200], cap=64)
@example(values=["Bearer abc", "Bearer abc"], cap=64)
@example(values=["Bearer   abc"], cap=64)
def test_extract_bearer_returns_one_clean_token_or_refuses(values: list[str], cap: int) -> None:
    try:
        token = extract_bearer(values, max_token_bytes=cap)
    except Unauthenticated as err:
        assert err.reason in DOCUMENTED_REASONS
        return
    # Accepted: exactly one value, the Bearer scheme in any case, spaces (RFC 6750 §2.1: 1*SP),
    # one b64token, within the cap.
    assert len(values) == 1
    scheme, _, credential = values[0].partition(" ")
    assert scheme.lower() == "bearer" and credential.lstrip(" ") == token
    assert _B64TOKEN.fullmatch(token)
    assert len(token) <= cap
