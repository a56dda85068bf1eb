"""The issuer's signing keys: generated once, kept on disk owner-only, rotated on demand.

One current key per algorithm (RS256: RSA-2048, ES256: P-256) signs. ``rotate()`` works the way
real issuers do: it publishes a new key per algorithm at once, but the new key signs only after
``publish_delay_s`` (the JWKS max-age the issuer announces), so every verifier that follows the
max-age has it before the first token signed with it arrives (no ``unknown kid`` window). The
old keys keep signing until then and stay published for the grace period after that, for the
tokens they signed. Removal is applied whenever the store is read, against the injected clock.

The state file holds private keys: the directory is 0700 and the file 0600, written
atomically so a crash never leaves half a key set.

Usage:
    store = KeyStore.open(Path(".dev-state/issuer"), clock=time.time, grace_s=600)
    key = store.signing_key("RS256")
    store.rotate(publish_delay_s=60)  # published now, signing in 60 s
    document = store.jwks()          # public keys only
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jwcrypto.jwk import JWK

from dev_issuer.config import SIGNING_ALGORITHMS

__all__ = ["KeyStore", "KeyStoreError", "Rotation", "SigningKey", "generate_key"]

_log = logging.getLogger(__name__)
_STATE_FILE = "keys.json"
_STATE_VERSION = 1
_GENERATE: dict[str, dict[str, Any]] = {
    "RS256": {"kty": "RSA", "size": 2048},
    "ES256": {"kty": "EC", "crv": "P-256"},
}


class KeyStoreError(Exception):
    """The state directory or file cannot be used; the message says what to do."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private signing key and its place in the rotation."""

    kid: str
    alg: str
    jwk: Any  # jwcrypto.jwk.JWK (untyped library)
    created_at: float
    #: When the key leaves the JWKS; None while it is the current key for its algorithm.
    remove_at: float | None = None
    #: When the key starts signing (published before that); None: from ``created_at``.
    signs_from: float | None = None

    @property
    def signing_since(self) -> float:
        return self.created_at if self.signs_from is None else self.signs_from

    def public_jwk(self) -> dict[str, Any]:
        """The public half with ``kid``, ``alg`` and ``use=sig``: never a private parameter."""
        public: dict[str, Any] = self.jwk.export_public(as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: the new current keys and the keys now in their grace period."""

    added: tuple[SigningKey, ...]
    retiring: tuple[SigningKey, ...]


def generate_key(alg: str, *, now: float) -> SigningKey:
    """A fresh key; its ``kid`` is the RFC 7638 thumbprint, so it names the key material itself."""
    generated = JWK.generate(**_GENERATE[alg], alg=alg, use="sig")
    kid = str(generated.thumbprint())
    private = JWK(**{**generated.export_private(as_dict=True), "kid": kid})
    return SigningKey(kid=kid, alg=alg, jwk=private, created_at=now)


class KeyStore:
    """Keys on disk under ``state_dir``; see the module docstring."""

    def __init__(
        self, state_dir: Path, keys: list[SigningKey], *, clock: Callable[[], float], grace_s: float
    ):
        self._dir = state_dir
        self._keys = keys
        self._clock = clock
        self._grace_s = grace_s

    @classmethod
    def open(cls, state_dir: Path, *, clock: Callable[[], float], grace_s: float) -> KeyStore:
        """Load the keys, creating the directory and any missing algorithm's key on first start."""
        _ensure_private_dir(state_dir)
        store = cls(state_dir, _load(state_dir / _STATE_FILE), clock=clock, grace_s=grace_s)
        now = clock()
        missing = [alg for alg in SIGNING_ALGORITHMS if store._current(alg) is None]
        if missing:
            store._keys.extend(generate_key(alg, now=now) for alg in missing)
            _log.info("generated signing keys for %s in %s", ", ".join(missing), state_dir)
            store._save()
        return store

    @property
    def state_file(self) -> Path:
        return self._dir / _STATE_FILE

    def signing_key(self, alg: str) -> SigningKey:
        """The key for ``alg`` that signed last to start signing: every token is signed with it.

        After a rotation that is the old key until the new one's ``signs_from``."""
        self._purge()
        now = self._clock()
        started = [k for k in self._keys if k.alg == alg and k.signing_since <= now]
        # On a tie (an immediate rotation within the same clock tick) the new key, not yet retiring, wins.
        key = max(started, key=lambda k: (k.signing_since, k.remove_at is None, k.created_at), default=None)
        if key is None:  # open() guarantees one per algorithm; rotate() keeps the old one signing
            raise KeyStoreError(f"no {alg} key that may sign yet")
        return key

    def published(self) -> tuple[SigningKey, ...]:
        """Every key a verifier may meet: current ones and those in their grace period, newest first."""
        self._purge()
        return tuple(sorted(self._keys, key=lambda k: k.created_at, reverse=True))

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517 §5): public keys only."""
        return {"keys": [k.public_jwk() for k in self.published()]}

    def rotate(self, new_keys: list[SigningKey] | None = None, *, publish_delay_s: float) -> Rotation:
        """Publish a new current key per algorithm, signing from ``publish_delay_s`` on (0: at once);
        the old ones sign until then and leave the grace period after it.

        ``new_keys`` lets a caller generate the keys off the event loop (RSA generation blocks).
        """
        now = self._clock()
        generated = new_keys or [generate_key(a, now=now) for a in SIGNING_ALGORITHMS]
        added = tuple(replace(k, signs_from=now + publish_delay_s) for k in generated)
        retiring = []
        for i, key in enumerate(self._keys):
            if key.remove_at is None and any(a.alg == key.alg for a in added):
                self._keys[i] = replace(key, remove_at=now + publish_delay_s + self._grace_s)
                retiring.append(self._keys[i])
        self._keys.extend(added)
        self._save()
        self._purge()
        return Rotation(added=added, retiring=tuple(retiring))

    def _current(self, alg: str) -> SigningKey | None:
        current = [k for k in self._keys if k.alg == alg and k.remove_at is None]
        return max(current, key=lambda k: k.created_at, default=None)

    def _purge(self) -> None:
        now = self._clock()
        kept = [k for k in self._keys if k.remove_at is None or k.remove_at > now]
        if len(kept) != len(self._keys):
            removed = {k.kid for k in self._keys} - {k.kid for k in kept}
            _log.info("removed rotated-out keys after their grace period: %s", ", ".join(sorted(removed)))
            self._keys = kept
            self._save()

    def _save(self) -> None:
        document = {
            "version": _STATE_VERSION,
            "keys": [
                {
                    "kid": k.kid,
                    "alg": k.alg,
                    "created_at": k.created_at,
                    "remove_at": k.remove_at,
                    "signs_from": k.signs_from,
                    "jwk": k.jwk.export_private(as_dict=True),
                }
                for k in self._keys
            ],
        }
        _write_private(self.state_file, json.dumps(document, indent=2).encode())


def _ensure_private_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = stat.S_IMODE(state_dir.stat().st_mode)
    except OSError as exc:
        raise KeyStoreError(f"state_dir: cannot create {state_dir}: {exc.strerror}") from exc
    if mode & 0o077:
        # Refuse rather than chmod: the directory may be shared (think /tmp), and private keys
        # must not sit where others can read or swap them.
        raise KeyStoreError(
            f"state_dir: {state_dir} is accessible by other users (mode {mode:04o}); "
            f"use a private directory or run: chmod 700 {state_dir}"
        )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # O_EXCL + O_NOFOLLOW: never write key material through a planted file or symlink.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # the umask can only have removed bits; make the mode exact anyway
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _load(path: Path) -> list[SigningKey]:
    if not path.exists():
        return []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _log.warning("%s was readable by others (mode %04o); tightening to 0600", path, mode)
        os.chmod(path, 0o600)
    try:
        document = json.loads(path.read_bytes())
        if document.get("version") != _STATE_VERSION:
            raise ValueError(f"unknown version {document.get('version')!r}")
        keys = []
        for entry in document["keys"]:
            jwk = JWK(**entry["jwk"])
            if entry["alg"] not in SIGNING_ALGORITHMS or not jwk.has_private:
                raise ValueError(f"bad key entry {entry.get('kid')!r}")
            remove_at = entry["remove_at"]
            signs_from = entry.get("signs_from")  # absent in files written before delayed rotation
            keys.append(
                SigningKey(
                    kid=str(entry["kid"]),
                    alg=str(entry["alg"]),
                    jwk=jwk,
                    created_at=float(entry["created_at"]),
                    remove_at=None if remove_at is None else float(remove_at),
                    signs_from=None if signs_from is None else float(signs_from),
                )
            )
    except Exception as exc:  # any corruption: one clear message instead of a traceback
        raise KeyStoreError(
            f"state_dir: cannot read {path} ({type(exc).__name__}: {exc}); "
            "delete it to start with fresh keys (tokens issued before become invalid)"
        ) from exc
    return keys
