"""The web server's connection cap (streams/worker/webserver.py), with a stand-in for
aiohttp's Server that keeps the same two things: the factory and the live list."""

from fleetpulse.streams.worker.webserver import ConnectionCap, _Refused


class Handler:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class Server:
    def __init__(self):
        self.connections = []

    def __call__(self):
        handler = Handler()
        self.connections.append(handler)  # aiohttp registers it in connection_made
        return handler


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_connections_past_the_cap_are_refused_and_old_ones_age_out():
    server, clock = Server(), Clock()
    cap = ConnectionCap(server, limit=3, lifetime_s=100, clock=clock)
    first = [cap() for _ in range(3)]
    assert all(isinstance(h, Handler) for h in first)
    assert isinstance(cap(), _Refused) and cap.refused == 1
    server.connections.remove(first[0])  # one client hangs up
    clock.now = 2.0
    assert isinstance(cap(), Handler), "its slot is free again"
    clock.now = 101.0
    assert isinstance(cap(), Handler), "a new arrival closes what is older than the lifetime, gracefully"
    assert first[1].closed and first[2].closed
    assert not first[0].closed, "a connection that is gone is not touched"


def test_a_burst_is_capped_before_aiohttp_registers_any_of_it():
    server = Server()
    server.connections = _NeverRegisters()
    cap = ConnectionCap(server, limit=3, lifetime_s=100, clock=Clock())
    made = [cap() for _ in range(10)]
    assert sum(isinstance(h, Handler) for h in made) == 3 and cap.refused == 7


class _NeverRegisters(list):
    def append(self, item):
        pass
