"""Pull the bearer token out of request metadata (RFC 6750 §2.1, RFC 7235 §2.1).

Usage:
    token = extract_bearer(["Bearer eyJ..."], max_token_bytes=8192)
"""

from __future__ import annotations

from collections.abc import Sequence

from jwt_authn.errors import Unauthenticated

__all__ = ["extract_bearer", "extract_credentials", "max_authorization_length"]

# RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
_B64TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"


def _is_b64token(credential: str) -> bool:
    # bytes.translate(None, chars) deletes the allowed characters in C: anything left is foreign.
    # (Plain string operations rather than a regex: this runs on every request.)
    if not credential.isascii():
        return False
    body = credential.encode("ascii").rstrip(b"=")
    return bool(body) and not body.translate(None, _B64TOKEN_CHARS)


def max_authorization_length(max_token_bytes: int) -> int:
    """The longest ``authorization`` value ``extract_bearer`` looks into: the token cap plus "Bearer "."""
    return max_token_bytes + len("Bearer ")


def extract_credentials(authorization_values: Sequence[str], *, max_token_bytes: int) -> tuple[str, str]:
    """``("Bearer", token)`` or ``("DPoP", token)`` (RFC 9449 §7.1), or ``Unauthenticated``.

    The same rules as ``extract_bearer``, with the DPoP scheme accepted too: its credential is a
    token68 of the same alphabet. An error under the DPoP scheme names it (``error.scheme``), so
    its challenge carries the error."""
    if authorization_values and len(authorization_values) == 1:
        value = authorization_values[0]
        if value[:5].lower() == "dpop ":
            try:
                return "DPoP", extract_bearer([f"Bearer {value[5:]}"], max_token_bytes=max_token_bytes)
            except Unauthenticated as error:
                error.scheme = "DPoP"
                raise
    return "Bearer", extract_bearer(authorization_values, max_token_bytes=max_token_bytes)


def extract_bearer(authorization_values: Sequence[str], *, max_token_bytes: int) -> str:
    """Return the one bearer token in ``authorization_values`` or raise ``Unauthenticated``.

    The scheme is matched case-insensitively; exactly one ``authorization`` value with exactly
    one credential is accepted. The size cap is applied before any other parsing.
    """
    if not authorization_values:
        raise Unauthenticated("missing_token", "no authorization metadata", credentials_present=False)
    if len(authorization_values) > 1:
        raise Unauthenticated("malformed_authorization", "more than one authorization value")
    value = authorization_values[0]
    # The cap counts the scheme too, so a huge header is refused before we look into it.
    if len(value) > max_authorization_length(max_token_bytes):
        raise Unauthenticated("token_too_large", f"authorization value of {len(value)} bytes")
    scheme, separator, credential = value.partition(" ")
    if scheme.lower() != "bearer":
        # Another scheme (Basic, DPoP, ...) is not a bearer credential: ask for one. RFC 6750 §3.1
        # counts "an unsupported authentication method" as lacking credentials: no error code.
        if separator and scheme:
            raise Unauthenticated(
                "unsupported_scheme", "authorization scheme is not Bearer", credentials_present=False
            )
        raise Unauthenticated("malformed_authorization", "authorization value is not 'Bearer <token>'")
    # RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; several spaces are one separator (but
    # only spaces: a tab, or anything after the token, stays malformed).
    credential = credential.lstrip(" ")
    if not _is_b64token(credential):
        # Empty, several credentials, trailing spaces, control characters...
        raise Unauthenticated("malformed_authorization", "bearer credential is empty or malformed")
    return credential
