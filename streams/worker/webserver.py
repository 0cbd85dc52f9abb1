"""faust's aiohttp web server with bounded connections.

aiohttp limits neither the number of open connections nor how long one may
take to send its headers. A local flood of idle connections then used up the
worker's file descriptors, and chDB's next insert failed (the worker exited).
Here every TCP server the web driver starts takes connections through
:class:`ConnectionCap`: at most ``MAX_CONNECTIONS`` at a time (the next ones
are closed at once), and a connection older than ``CONNECTION_LIFETIME_S`` is
closed gracefully (after the request in flight, if any) when a new one
arrives, so a slow client cannot hold a slot for ever.

It is registered as the ``fleetpulse`` faust web driver (pyproject's
``faust.web.drivers`` entry point) and chosen with ``web="fleetpulse://"``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from aiohttp.web_runner import BaseSite, TCPSite
from faust.web.drivers import aiohttp as faust_aiohttp

MAX_CONNECTIONS = 256
CONNECTION_LIFETIME_S = 120.0


class ConnectionCap:
    """A protocol factory around aiohttp's: caps the live connections and ages them out."""

    def __init__(self, server, limit: int = MAX_CONNECTIONS, lifetime_s: float = CONNECTION_LIFETIME_S,
                 clock: Callable[[], float] = time.monotonic):
        self._server = server  # aiohttp's web.Server: the factory, and the live connections
        self._limit = limit
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._opened: dict[int, tuple[float, object]] = {}
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        now = self._clock()
        live = {id(handler) for handler in self._server.connections}
        for key, (opened, handler) in list(self._opened.items()):
            if key not in live and now - opened > 1.0:  # gone (a second's grace: made, not yet registered)
                del self._opened[key]
            elif now - opened > self._lifetime_s:
                handler.close()  # graceful: after the request in flight
                del self._opened[key]
        # Our own count, not aiohttp's: a burst of accepts creates many handlers
        # before any of them registers with the server.
        if len(self._opened) >= self._limit:
            self.refused += 1
            return _Refused()
        handler = self._server()
        self._opened[id(handler)] = (now, handler)
        return handler


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()


class _CappedSite(TCPSite):
    async def start(self) -> None:
        await BaseSite.start(self)  # as TCPSite.start, with our factory in front of aiohttp's
        self._server = await asyncio.get_running_loop().create_server(
            ConnectionCap(self._runner.server), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


class CappedWeb(faust_aiohttp.Web):
    """faust's aiohttp driver, serving TCP through :class:`_CappedSite`."""

    def _new_transport_tcp(self) -> BaseSite:
        return _CappedSite(self._runner, self.app.conf.web_bind, self.app.conf.web_port,
                           ssl_context=self.app.conf.web_ssl_context)
