"""Reading and checking request parameters: one value each, well-formed, within bounds.

Every failure is an ``OAuthError`` with the RFC 6749 code a client expects, so hostile input
ends as a 400, never as an exception further down.

Usage:
    grant_type = required(form, "grant_type")
    scopes = parse_scope(single(form, "scope"), config, default=client.default_scope)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiMapping

from dev_issuer.config import ROLE_PATTERN, SCOPE_TOKEN_PATTERN, SIGNING_ALGORITHMS, IssuerConfig
from dev_issuer.oauth_errors import OAuthError

__all__ = [
    "MAX_PARAM_CHARS",
    "SUBJECT_PATTERN",
    "parse_algorithm",
    "parse_audience",
    "parse_roles",
    "parse_scope",
    "parse_subject",
    "parse_ttl",
    "read_form",
    "required",
    "single",
]

#: Longest parameter value accepted; real values (URIs, challenges, codes) are far shorter.
MAX_PARAM_CHARS = 2048
#: Subjects: letters, digits and a few separators common in IdP subjects (``auth0|123``, ``a@b``).
SUBJECT_PATTERN = re.compile(r"[A-Za-z0-9._@+:|-]{1,128}")
_AUDIENCE = re.compile(r"[\x21-\x7e]{1,256}")
_MAX_ROLES = 32
_MAX_FIELDS = 64


async def read_form(request: web.Request) -> MultiDict[str]:
    """The urlencoded body (RFC 6749 §3.2 requires that media type), strictly decoded as UTF-8."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = await request.read()  # bounded by the app's client_max_size
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not valid UTF-8 form data") from None
    return MultiDict(pairs)


def single(params: MultiMapping[Any], name: str) -> str | None:
    """The parameter's one value; None when absent or empty (RFC 6749 §3.1 treats empty as omitted)."""
    values = params.getall(name, [])
    # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter {name!r} was sent more than once")
    value = values[0] if values else None
    if value is not None and not isinstance(value, str):
        raise OAuthError("invalid_request", f"parameter {name!r} must be a plain form value")
    if value is not None and (len(value) > MAX_PARAM_CHARS or not value.isprintable()):
        raise OAuthError("invalid_request", f"parameter {name!r} is too long or has control characters")
    return value or None


def required(params: MultiMapping[Any], name: str) -> str:
    """The parameter's one non-empty value, or ``invalid_request``."""
    value = single(params, name)
    if value is None:
        raise OAuthError("invalid_request", f"missing parameter {name!r}")
    return value


def parse_scope(value: str | None, config: IssuerConfig, *, default: str) -> tuple[str, ...]:
    """Space-separated scope tokens (RFC 6749 §3.3), each supported; order kept, duplicates dropped."""
    text = default if value is None else value
    scopes = tuple(dict.fromkeys(s for s in text.split(" ") if s))
    if value is not None and not scopes:
        raise OAuthError("invalid_scope", "scope is empty")
    for scope in scopes:
        if not SCOPE_TOKEN_PATTERN.fullmatch(scope) or scope not in config.scopes_supported:
            raise OAuthError(
                "invalid_scope", f"unsupported scope; supported: {' '.join(config.scopes_supported)}"
            )
    return scopes


def parse_roles(values: list[str]) -> tuple[str, ...]:
    """Role names from repeated and/or space-separated values; order kept, duplicates dropped."""
    roles = tuple(dict.fromkeys(r for v in values for r in v.split(" ") if r))
    if len(roles) > _MAX_ROLES or not all(ROLE_PATTERN.fullmatch(r) for r in roles):
        raise OAuthError("invalid_request", f"roles must be at most {_MAX_ROLES} names of [A-Za-z0-9_.:-]")
    return roles


def parse_subject(value: str) -> str:
    """A subject a client or the login page may choose."""
    if not SUBJECT_PATTERN.fullmatch(value):
        raise OAuthError("invalid_request", "sub must be 1-128 characters of [A-Za-z0-9._@+:|-]")
    return value


def parse_audience(value: str | None, config: IssuerConfig) -> str:
    """The requested audience (any printable value: the issuer is for development), or the default."""
    if value is None:
        return config.default_audience
    if not _AUDIENCE.fullmatch(value):
        raise OAuthError("invalid_request", "audience must be 1-256 printable characters without spaces")
    return value


def parse_ttl(value: str | None, config: IssuerConfig) -> int:
    """The requested lifetime in seconds, bounded by the server's maximum."""
    if value is None:
        return config.token_ttl_s
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= config.max_token_ttl_s:
        raise OAuthError(
            "invalid_request", f"ttl must be whole seconds between 1 and {config.max_token_ttl_s}"
        )
    return int(value)


def parse_algorithm(value: str | None, config: IssuerConfig) -> str:
    """The signing algorithm a client picked, or the default."""
    if value is None:
        return config.default_algorithm
    if value not in SIGNING_ALGORITHMS:
        raise OAuthError("invalid_request", f"alg must be one of {', '.join(SIGNING_ALGORITHMS)}")
    return value
