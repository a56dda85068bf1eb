"""A redis-server of the caller's own on 127.0.0.1 (Debian's): the shared DPoP replay store that the
tests and the benchmark run against, never a mock and never anyone else's Redis.

It keeps its port across ``stop`` and ``start``, so a test can take Redis away and bring it back
at the same URL (fail closed, then recover). It saves nothing to disk and never evicts a key
(``noeviction``: a replay store that forgets a live proof would let it replay).

Usage:
    async with RedisServer(shutil.which("redis-server")) as redis:
        store = RedisReplayStore.from_url(redis.url)
        await redis.stop()   # Redis down: the store fails closed
        await redis.start()  # back, on the same port
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from types import TracebackType

from dev_stack.config import free_loopback_port

__all__ = ["RedisServer"]

#: How long Redis may take to answer after it starts, or to exit after SIGTERM, seconds.
WAIT_S = 15.0


class RedisServer:
    """``binary`` (redis-server) on 127.0.0.1:``port`` (a free one when not given), not yet started."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        # Redis cannot bind port 0 and say which port it got, so the port is chosen first.
        self.port = free_loopback_port() if port is None else port
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start it and return once it accepts connections. Raises ``RuntimeError`` when it exits
        or does not answer within ``WAIT_S``."""
        self._process = process = await asyncio.create_subprocess_exec(
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``WAIT_S``; nothing when it is not running."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), WAIT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> RedisServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()
