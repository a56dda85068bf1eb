"""Who is calling the token endpoint: client authentication (RFC 6749 §2.3).

Confidential clients authenticate with HTTP Basic (``client_secret_basic``) or form fields
(``client_secret_post``); public clients send only ``client_id`` (``none``). Postman sends a
public client as Basic with an empty password, so an empty secret counts as no secret.

Usage:
    client = authenticate_client(request.headers.get("Authorization"), form, config)
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any
from urllib.parse import unquote_plus

from multidict import MultiMapping

from dev_issuer.config import ClientConfig, IssuerConfig
from dev_issuer.oauth_errors import OAuthError
from dev_issuer.params import single

__all__ = ["authenticate_client"]

_FAILED = "client authentication failed"


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise OAuthError("invalid_client", "only HTTP Basic client authentication is supported in the header")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_client", "malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    authorization: str | None, form: MultiMapping[Any], config: IssuerConfig
) -> ClientConfig:
    """The registered client making this request, or ``OAuthError(invalid_client|invalid_request)``."""
    form_id = single(form, "client_id")
    form_secret = single(form, "client_secret")
    if authorization is not None:
        client_id, secret = _basic_credentials(authorization)
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
        if form_secret is not None:
            raise OAuthError("invalid_request", "send the client secret in the header or the body, not both")
        if form_id is not None and form_id != client_id:
            raise OAuthError("invalid_request", "client_id in the body differs from the Basic credentials")
        presented: str | None = secret or None
    else:
        if form_id is None:
            raise OAuthError("invalid_client", "client_id is required")
        client_id, presented = form_id, form_secret

    client = config.client(client_id)
    if client is None:
        raise OAuthError("invalid_client", _FAILED)
    if client.client_secret is None:
        if presented is not None:
            raise OAuthError("invalid_client", f"{client_id} is a public client and has no secret")
        return client
    if presented is None or not hmac.compare_digest(presented.encode(), client.client_secret.encode()):
        raise OAuthError("invalid_client", _FAILED)
    return client
