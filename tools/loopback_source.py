"""A TCP forwarder whose outgoing connections leave from another loopback address (127.0.0.2, ...),
so one test or attack process can look like a client of its own to the server's per-peer view.

Only loopback: both the listening side and the target are 127.0.0.1, and the source must lie in
127.0.0.0/8 (every such address is the local host on Linux). Bytes are copied as they come, both
ways, until either side closes; ``close`` ends every forwarded connection.

Usage:
    async with SourceForwarder("127.0.0.2", target_port=50051) as forwarder:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{forwarder.port}")   # seen as 127.0.0.2
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

__all__ = ["SourceForwarder"]

_HOST = "127.0.0.1"


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class SourceForwarder:
    """Listens on 127.0.0.1 (port 0); forwards each connection to ``target_port`` from ``source``."""

    def __init__(self, source: str, target_port: int) -> None:
        if not ipaddress.ip_address(source).is_loopback:
            raise ValueError(f"source: {source} is not a loopback address")
        self._source = source
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> SourceForwarder:
        self._server = await asyncio.start_server(self._forward, _HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                _HOST, self._target_port, local_addr=(self._source, 0)
            )
        except OSError:
            writer.close()
            return
        for task in (
            asyncio.ensure_future(_copy(reader, up_writer)),
            asyncio.ensure_future(_copy(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
