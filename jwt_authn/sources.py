"""Where an issuer's JWKS comes from: OIDC discovery, a JWKS URL, a file, or memory.

Remote fetches are strict: a timeout, a size cap, only a 200, no redirects, a JSON object.
A discovery document must name exactly the configured issuer (OIDC Discovery §4.3), else
an attacker who controls one document could speak for another issuer.

Usage:
    source = key_source_for(issuer_config, session_provider)
    fetched = await source.fetch()       # raises KeySourceError
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from jwt_authn.config import IssuerConfig, check_url
from jwt_authn.observer import TracingObserver
from jwt_authn.strict_json import StrictJSONError, loads_object

__all__ = [
    "DiscoveryKeySource",
    "Fetched",
    "FileKeySource",
    "KeySource",
    "KeySourceError",
    "RemoteJWKSSource",
    "StaticKeySource",
    "key_source_for",
]

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


class KeySourceError(Exception):
    """A fetch or load that gave no usable document; the message is safe to log."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """One JWKS document and how long its source says it stays fresh."""

    document: Mapping[str, Any]
    max_age_s: float | None = None


class KeySource(Protocol):
    #: A short label for logs and metrics.
    label: str
    #: Seconds between polls of a source that is cheap to check (files); None for remote sources.
    poll_interval_s: float | None

    async def fetch(self) -> Fetched | None:
        """The current document, or None when it has not changed since the last fetch."""
        ...


SessionProvider = Callable[[], aiohttp.ClientSession]


def _max_age(cache_control: str | None) -> float | None:
    if not cache_control or "no-store" in cache_control.lower():
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _cause(err: aiohttp.ClientError) -> str:
    """What went wrong, in words an operator can act on ("connection refused by 127.0.0.1:8080")."""
    if isinstance(err, aiohttp.ClientConnectorError):
        where = f"{err.host}:{err.port}"
        if err.os_error.errno == errno.ECONNREFUSED:
            return f"connection refused by {where}"
        return f"cannot connect to {where} ({err.os_error.strerror or type(err.os_error).__name__})"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before answering"
    # Other client errors carry a short message (a malformed answer, a payload error); no token is
    # ever part of a key-set fetch, so the text is safe to log.
    return f"{type(err).__name__}: {str(err)[:200]}" if str(err) else type(err).__name__


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    config: IssuerConfig,
    what: str,
    observer: TracingObserver | None = None,
) -> Fetched:
    """GET ``url`` and parse one strict JSON object, within every limit of ``config``; inside the
    observer's ``key_fetch(issuer, what, url)`` when there is one."""
    if observer is None:
        return await _get_json(session, url, config, what)
    with observer.key_fetch(config.issuer, what, url):
        return await _get_json(session, url, config, what)


async def _get_json(session: aiohttp.ClientSession, url: str, config: IssuerConfig, what: str) -> Fetched:
    try:
        async with asyncio.timeout(config.fetch_timeout_s):
            async with session.get(
                url, allow_redirects=False, headers={"Accept": "application/json"}
            ) as response:
                if response.status != 200:
                    raise KeySourceError(f"{what}: HTTP {response.status}")
                if (response.content_length or 0) > config.max_response_bytes:
                    raise KeySourceError(f"{what}: body of {response.content_length} bytes is over the cap")
                # Read to the end, in chunks, under the cap: one read() returns only what has
                # arrived so far, which cut chunked or slow bodies short (a truncated JWKS).
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > config.max_response_bytes:
                        raise KeySourceError(
                            f"{what}: body is over the cap of {config.max_response_bytes} bytes"
                        )
                max_age = _max_age(response.headers.get("Cache-Control"))
    except TimeoutError:
        raise KeySourceError(f"{what}: no answer within {config.fetch_timeout_s:g} s") from None
    except aiohttp.ClientError as err:
        raise KeySourceError(f"{what}: {_cause(err)}") from None
    try:
        return Fetched(loads_object(bytes(body), what=what), max_age)
    except StrictJSONError as err:
        raise KeySourceError(str(err)) from None


def slash_hint(seen: str, configured: str) -> str:
    """A hint when two issuer values differ only by a trailing slash (the usual mistake)."""
    if seen != configured and seen.rstrip("/") == configured.rstrip("/"):
        return "; they differ only by a trailing slash: configure the issuer exactly as the IdP writes it"
    return ""


class RemoteJWKSSource:
    """A JWKS at a known URL."""

    poll_interval_s: float | None = None

    def __init__(
        self,
        config: IssuerConfig,
        jwks_uri: str,
        session: SessionProvider,
        observer: TracingObserver | None = None,
    ) -> None:
        self._config, self._jwks_uri, self._session, self._observer = config, jwks_uri, session, observer
        self.label = jwks_uri

    async def fetch(self) -> Fetched:
        return await get_json(self._session(), self._jwks_uri, self._config, "jwks", self._observer)


class DiscoveryKeySource:
    """OIDC discovery, then the ``jwks_uri`` it names (both fetched on each refresh)."""

    poll_interval_s: float | None = None

    def __init__(
        self, config: IssuerConfig, session: SessionProvider, observer: TracingObserver | None = None
    ) -> None:
        self._config, self._session, self._observer = config, session, observer
        self.label = config.discovery_url

    async def fetch(self) -> Fetched:
        discovery = (
            await get_json(
                self._session(), self._config.discovery_url, self._config, "discovery", self._observer
            )
        ).document
        named = discovery.get("issuer")
        if named != self._config.issuer:
            raise KeySourceError(
                f"discovery: the document names the issuer {str(named)[:200]!r}, not the configured"
                f" {self._config.issuer!r}{slash_hint(str(named), self._config.issuer)}"
                " (OIDC Discovery §4.3: they must be equal)"
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise KeySourceError("discovery: no jwks_uri")
        try:
            check_url(jwks_uri, "jwks_uri", allow_insecure_http=self._config.allow_insecure_http)
        except ValueError as err:
            raise KeySourceError(f"discovery: {err}") from None
        return await get_json(self._session(), jwks_uri, self._config, "jwks", self._observer)


class FileKeySource:
    """A JWKS file on disk, re-read when its modification time or size changes (checked every second)."""

    poll_interval_s: float | None = 1.0

    def __init__(self, config: IssuerConfig, path: str) -> None:
        self._config, self._path = config, path
        self._seen: tuple[int, int] | None = None
        self.label = path

    def _read_if_changed(self) -> Fetched | None:
        try:
            stat = os.stat(self._path)
            if (stat.st_mtime_ns, stat.st_size) == self._seen:
                return None
            if stat.st_size > self._config.max_response_bytes:
                raise KeySourceError(f"jwks file: {stat.st_size} bytes is over the cap")
            with open(self._path, "rb") as handle:
                body = handle.read(self._config.max_response_bytes + 1)
        except OSError as err:
            raise KeySourceError(f"jwks file: {err.strerror}") from None
        try:
            fetched = Fetched(loads_object(body, what="jwks file"))
        except StrictJSONError as err:
            raise KeySourceError(str(err)) from None
        self._seen = (stat.st_mtime_ns, stat.st_size)
        return fetched

    async def fetch(self) -> Fetched | None:
        return await asyncio.to_thread(self._read_if_changed)


class StaticKeySource:
    """A JWKS document given in memory: loaded once, never refreshed."""

    poll_interval_s: float | None = None
    label = "inline jwks"

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document: Mapping[str, Any] | None = document

    async def fetch(self) -> Fetched | None:
        document, self._document = self._document, None
        return Fetched(document) if document is not None else None


def key_source_for(
    config: IssuerConfig, session: SessionProvider, observer: TracingObserver | None = None
) -> KeySource:
    """The source ``config`` names: inline, file, JWKS URL, or discovery (the default); a remote
    source tells ``observer`` of each GET."""
    if config.jwks is not None:
        return StaticKeySource(config.jwks)
    if config.jwks_file is not None:
        return FileKeySource(config, config.jwks_file)
    if config.jwks_uri is not None:
        return RemoteJWKSSource(config, config.jwks_uri, session, observer)
    return DiscoveryKeySource(config, session, observer)
