"""jwt_authn's LoopbackIssuer, run on a thread of the bench driver so its fetch counters can be read.

The service, and the Express peer, discover and fetch the keys from it over loopback HTTP
like from any OIDC issuer; the driver reads ``discovery_fetches`` and ``jwks_fetches``
directly (the JWKS storm counts them) and signs tokens with the issuer's private keys.

Usage:
    with IssuerThread(algorithms=("RS256", "ES256")) as issuer:
        print(issuer.url, issuer.fetches())
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from jwcrypto import jwk

from jwt_authn.testing import LoopbackIssuer

__all__ = ["IssuerThread"]


class IssuerThread:
    """A LoopbackIssuer serving from its own event loop on a daemon thread."""

    def __init__(self, *, algorithms: tuple[str, ...], audience: str) -> None:
        self._issuer = LoopbackIssuer(algorithms=algorithms, audience=audience)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-issuer", daemon=True)

    def __enter__(self) -> IssuerThread:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._issuer.start(), self._loop).result(timeout=120)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._issuer.stop(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    @property
    def url(self) -> str:
        return self._issuer.url

    @property
    def keys(self) -> dict[str, jwk.JWK]:
        """The current private signing key of each algorithm."""
        return dict(self._issuer.tokens.keys)

    def fetches(self) -> tuple[int, int]:
        """(discovery documents served, JWKS documents served) so far."""
        return self._issuer.discovery_fetches, self._issuer.jwks_fetches
