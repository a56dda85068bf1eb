"""A gRPC listener on a Unix domain socket: its path checked before the bind, its file removed at stop.

grpc-core, before it binds ``unix:PATH``, unlinks whatever *socket* is at PATH: a stale one left
by a crash (good), but also a live server's, silently stealing its path (bad). A regular file,
a directory or a missing directory make it fail with a vague "Failed to bind". So we check first
(``check_unix_bindable``, like ``runtime.listen.check_bindable`` for TCP): a missing directory,
anything but a socket at PATH, or a socket some server still accepts on is a one-line
``SettingsError``; a stale socket is left for grpc-core to replace. At stop ``BoundSocketFile``
removes the file only if it is still the socket we bound (grpc-core usually has already; a newer
server's socket at the same path is not ours to remove).

The socket file gets the process umask (grpc-core does not chmod it); who may connect is decided
by the permissions of the directory it lives in.

Usage:
    path = parse_unix_socket_path("/run/secureroute/grpc.sock")   # absolute, fits sockaddr_un
    check_unix_bindable(path, "listen_unix")                       # SettingsError("listen_unix: ...")
    server.add_insecure_port(f"unix:{path}")
    bound = BoundSocketFile.of(path)
    ...
    bound.remove()
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass

from runtime.settings import SettingsError

__all__ = ["BoundSocketFile", "check_unix_bindable", "parse_unix_socket_path"]

#: Linux's sockaddr_un.sun_path holds 108 bytes, the terminating NUL included (unix(7)).
MAX_PATH_BYTES = 107
#: How long a live server may take to accept the probe's connection before we call the path busy.
_PROBE_TIMEOUT_S = 1.0


def parse_unix_socket_path(value: object) -> str:
    """An absolute path that fits a ``sockaddr_un``; the file system is checked later, before the bind."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    path = value.strip()
    if not os.path.isabs(path):
        # A relative path would depend on the directory the process happens to start in.
        raise ValueError(f"must be an absolute path, not {path!r}")
    if path.endswith("/") or "\0" in path:
        raise ValueError(f"not a file path: {path!r}")
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ValueError(f"at most {MAX_PATH_BYTES} bytes (the limit of a Unix socket address): {path!r}")
    return path


def _refuse_live_socket(path: str, setting: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_PROBE_TIMEOUT_S)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return  # stale (nobody accepts on it) or just gone: grpc-core replaces it
        except OSError as err:
            raise SettingsError(f"{setting}: cannot tell whether {path!r} is in use: {err}") from None
    raise SettingsError(f"{setting}: a server already listens on {path!r}")


def check_unix_bindable(path: str, setting: str) -> None:
    """Raise ``SettingsError`` unless binding ``path`` now would create a socket and clobber nothing.

    A stale socket (a crashed run's) passes; a live one, a non-socket file, a symlink, a missing
    or unwritable directory do not.
    """
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise SettingsError(f"{setting}: no such directory: {directory!r}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SettingsError(f"{setting}: cannot create a socket in {directory!r}: permission denied")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SettingsError(f"{setting}: {path!r} exists and is not a socket; refusing to replace it")
    _refuse_live_socket(path, setting)


@dataclass(frozen=True, slots=True)
class BoundSocketFile:
    """The socket file a server bound, identified by device and inode."""

    path: str
    device: int
    inode: int

    @classmethod
    def of(cls, path: str) -> BoundSocketFile:
        """The socket now at ``path`` (call it right after the bind)."""
        info = os.lstat(path)
        return cls(path, info.st_dev, info.st_ino)

    def remove(self) -> None:
        """Unlink the path if it still is this socket; anything else there is left alone."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if stat.S_ISSOCK(info.st_mode) and (info.st_dev, info.st_ino) == (self.device, self.inode):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
